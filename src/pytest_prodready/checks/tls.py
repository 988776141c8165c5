"""tls.*: HTTPS reachability, the HTTP->HTTPS redirect, certificates and protocol versions.

Subjects are TLS endpoints as 'host:port': the base URL's when it is https, plus every
`tls.hosts` entry (port 5432 speaks PostgreSQL's SSLRequest first). One run does each
handshake once and every check judges from it: a modern, non-verifying handshake for the
certificate facts; a verifying one for tls.cert_valid; one per legacy version.
Every connection is charged to the run's budget and checked against the allowlist
(`Target.guard`) before it is opened.
"""

from __future__ import annotations

import ssl
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urljoin, urlsplit, urlunsplit

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import page_probe
from pytest_prodready.config import Settings
from pytest_prodready.exceptions import CannotJudge, CheckFailure, TargetError
from pytest_prodready.family import Family
from pytest_prodready.target import MAX_REDIRECTS, USER_AGENT, Probe

if TYPE_CHECKING:
    from pytest_prodready.tlsprobe import Endpoint, Handshake, Mode

DEFAULT_MIN_DAYS = 14
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
WEAK_SIGNATURE_HASHES = frozenset({"sha1", "md5", "md2", "md4"})
PERMANENT_REDIRECTS = frozenset({301, 308})
# Failures of the endpoint itself (not of the network) when nothing TLS answers there.
UNREACHABLE_KINDS = frozenset({"connect", "not_tls", "no_tls"})


# -- subjects -------------------------------------------------------------------------------
def tls_subjects(settings: Settings) -> list[str]:
    """The base URL's host:port when it is https, then each tls.hosts entry."""
    subjects: list[str] = []
    base = urlsplit(settings.base_url)
    if base.scheme == "https" and base.hostname:
        from pytest_prodready.tlsprobe import Endpoint

        subjects.append(Endpoint.from_url(settings.base_url).label)
    subjects += [str(entry).strip() for entry in settings.get("tls.hosts", []) or []]
    return list(dict.fromkeys(subjects))


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def https_subjects(settings: Settings) -> list[str]:
    """tls.https_reachable's subjects: the TLS subjects, and for a plain-HTTP base URL on a
    host that is not loopback, port 443 of that host: a site served over http:// must hear
    that it lacks HTTPS (tls.require_https = false for a deliberately HTTP-only service; true
    asks even on loopback)."""
    subjects = tls_subjects(settings)
    base = urlsplit(settings.base_url)
    wanted = settings.get("tls.require_https")  # None: yes, unless the host is loopback
    if base.scheme == "http" and base.hostname and (
            wanted is True or (wanted is None and not is_loopback(base.hostname))):
        host = f"[{base.hostname}]" if ":" in base.hostname else base.hostname
        subjects.insert(0, f"{host}:443")
    return list(dict.fromkeys(subjects))


def _endpoint(ctx: Context) -> Endpoint:
    """The subject's endpoint; with no subject, the first one (scripts call run_check bare)."""
    from pytest_prodready.tlsprobe import Endpoint

    subject = ctx.subject or next(iter(tls_subjects(ctx.settings)), "")
    if not subject:
        base = ctx.target.base_url or "(none)"
        ctx.skip(f"nothing speaks TLS here: base_url {base} is not https:// and no tls.hosts are "
                 "configured; use an https:// base_url or list endpoints in tls.hosts")
    try:
        return Endpoint.parse(subject)
    except ValueError as exc:
        raise CannotJudge(f"{subject!r}: {exc}; tls.hosts entries are 'host:port'") from None


def _listed(ctx: Context, endpoint: Endpoint) -> bool:
    return endpoint.label in (str(e).strip() for e in ctx.settings.get("tls.hosts", []) or [])


def _is_base(ctx: Context, endpoint: Endpoint) -> bool:
    from pytest_prodready.tlsprobe import Endpoint

    base = urlsplit(ctx.target.base_url)
    return base.scheme == "https" and Endpoint.from_url(ctx.target.base_url) == endpoint


# -- handshakes, once per run ----------------------------------------------------------------
def ca_bundle(settings: Settings) -> str | None:
    """tls.ca_bundle as an absolute path, relative paths resolved against the config file's
    directory (the working directory when there is no config file)."""
    value = settings.get("tls.ca_bundle")
    if not value:
        return None
    path = Path(str(value)).expanduser()
    base = settings.config_file.parent if settings.config_file else Path.cwd()
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise CannotJudge(f"tls.ca_bundle {value!r} is not a file (looked at {path}; a relative "
                          f"path is resolved against the config file's directory)")
    return str(path)


def _handshake(ctx: Context, endpoint: Endpoint, mode: Mode, *,
               version: ssl.TLSVersion | None = None) -> Handshake:
    """A handshake of this kind with this endpoint: from the run's cache, or made now
    (allowlist and budget first)."""
    from pytest_prodready import tlsprobe

    target = ctx.target
    ca_file = ca_bundle(ctx.settings) if mode == "verify" else None
    key = (endpoint, mode, version, ca_file)

    def run() -> Handshake:
        target.guard(endpoint.host)
        return tlsprobe.handshake(endpoint, mode=mode, timeout=target.timeout, ca_file=ca_file,
                                  version=version)

    seen = tlsprobe.cache_for(target.budget).get(key, run)
    ctx.add_fact(seen)  # the handshake's facts go into the report's evidence
    return seen


def facts(ctx: Context, endpoint: Endpoint) -> Handshake:
    """The certificate and what a modern client negotiates. When no modern handshake is
    possible (a TLS 1.0-only server, a weak key), a permissive one still reads the certificate."""
    modern = _handshake(ctx, endpoint, "modern")
    if modern.ok or modern.kind not in ("alert", "closed", "local"):
        return modern
    loose = _handshake(ctx, endpoint, "permissive")
    if not loose.ok:
        return modern
    return replace(loose, note=f"a modern client (TLS >= 1.2, default security level) cannot "
                               f"connect: {modern.error}; these facts come from a permissive handshake")


def facts_or_cannot_judge(ctx: Context, endpoint: Endpoint) -> Handshake:
    seen = facts(ctx, endpoint)
    if not seen.ok or seen.cert is None:
        raise CannotJudge(f"no TLS handshake with {endpoint.label}: "
                          f"{seen.error or 'the server sent no certificate'}")
    return seen


def fail(ctx: Context, message: str, *evidence: Handshake, with_cert: bool = True) -> NoReturn:
    """The check's failure: the message carries the key TLS facts in one line; the detail
    adds the full TLS evidence (and any HTTP exchange the check saw)."""
    masker = ctx.target.masker
    text = masker.text(message)
    lines = [f"[{ctx.spec.id}] {text}", f"Fix: {ctx.spec.remediation}"]
    lines += ["\n" + masker.text(h.render(with_cert=with_cert)) for h in evidence]
    lines += ["\n" + ex.render() for ex in ctx.exchanges[:3]]
    raise CheckFailure(message, ctx.exchanges, remediation=ctx.spec.remediation,
                       check_id=ctx.spec.id, rendered="\n".join(lines))


def _cert_line(h: Handshake) -> str:
    """The certificate in one line, for messages."""
    cert = h.cert
    if cert is None:
        return "no certificate"
    return (f"subject {cert.subject}, issuer {cert.issuer}, SANs {', '.join(cert.sans) or 'none'}, "
            f"not after {cert.not_after:%Y-%m-%d} ({cert.days_left():.0f} days left), {cert.key}, "
            f"{cert.signature_algorithm}; {h.protocol} {h.cipher}")


# -- the checks -------------------------------------------------------------------------------
@check("tls.https_reachable", title="the base URL answers over HTTPS (tls.hosts: a TLS handshake completes)",
       severity="critical", subjects=https_subjects,
       remediation="Serve the site over HTTPS (TLS 1.2+) on its https:// URL; for tls.hosts "
                   "endpoints, enable TLS on the service.")
def https_reachable(ctx: Context) -> None:
    if not ctx.subject and https_subjects(ctx.settings):
        ctx.subject = https_subjects(ctx.settings)[0]
    endpoint = _endpoint(ctx)
    modern = _handshake(ctx, endpoint, "modern")
    if not modern.ok:
        if modern.kind in UNREACHABLE_KINDS and urlsplit(ctx.target.base_url).scheme == "http" \
                and not _listed(ctx, endpoint):
            fail(ctx, f"the site is served over plain HTTP ({ctx.target.base_url}) and nothing "
                      f"answers HTTPS on {endpoint.label}: {modern.error}", modern, with_cert=False)
        if modern.kind in UNREACHABLE_KINDS:
            fail(ctx, f"no TLS on {endpoint.label}: {modern.error}", modern)
        if modern.kind in ("alert", "closed", "local"):
            loose = facts(ctx, endpoint)
            if loose.ok:
                fail(ctx, f"a modern client (TLS 1.2+) cannot connect to {endpoint.label}: "
                          f"{modern.error}; only a legacy handshake works ({loose.protocol}, "
                          f"{loose.cipher})", modern, loose)
        raise CannotJudge(f"TLS handshake with {endpoint.label}: {modern.error}")
    if not _is_base(ctx, endpoint):
        ctx.passed(f"TLS answers on {endpoint.label}: {modern.protocol}, {modern.cipher}")
        return
    page = page_probe(ctx.settings)
    exchange = ctx.target.fetch(page)
    ctx.exchanges.append(exchange)
    where = f"GET {ctx.target.masker.url(ctx.target.url_for(page.path))}"
    if exchange.status is not None:
        unverified = (" (read without certificate verification: the certificate does not verify, "
                      "see tls.cert_valid)" if "without certificate verification" in exchange.note else "")
        ctx.passed(f"HTTPS answers: {where} -> {exchange.status} over {modern.protocol}, "
                   f"{modern.cipher}{unverified}")
        return
    if not exchange.error.startswith("TLS handshake failed"):
        raise TargetError(f"{where}: TLS works ({modern.protocol}) but HTTP did not answer: {exchange.error}")
    # The HTTP client refused the certificate (tls.cert_valid judges that); whether HTTPS
    # answers at all is asked again over a connection that does not verify.
    from pytest_prodready import tlsprobe

    ctx.target.guard(endpoint.host)
    url = urlsplit(ctx.target.url_for(page.path))
    answer = tlsprobe.http_over_tls(endpoint, urlunsplit(("", "", url.path or "/", url.query, "")),
                                    timeout=ctx.target.timeout, user_agent=USER_AGENT)
    if answer.status is None:
        raise TargetError(f"{where}: TLS works ({modern.protocol}) but HTTP did not answer: {answer.error}")
    ctx.passed(f"HTTPS answers: {where} -> {answer.status} over {modern.protocol}, {modern.cipher} "
               f"(read without certificate verification: the certificate does not verify, see "
               f"tls.cert_valid)")


def http_url_for(settings: Settings) -> tuple[str, str]:
    """Where plain HTTP should answer: tls.http_url, else the https base URL on http:// when
    it uses the default port. Returns (url, '') or ('', why it cannot be known)."""
    configured = settings.get("tls.http_url")
    if configured:
        return str(configured), ""
    base = urlsplit(settings.base_url)
    if base.scheme != "https":
        return "", (f"base_url {settings.base_url or '(none)'} is not https:// and tls.http_url is "
                    "not set: nothing to redirect to; set an https:// base_url or tls.http_url")
    if base.port not in (None, 443):
        return "", (f"base_url uses port {base.port}, so where plain HTTP answers cannot be guessed; "
                    "set tls.http_url")
    host = base.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return urlunsplit(("http", netloc, base.path or "/", base.query, "")), ""


def _redirect_probes(settings: Settings, _subject: str) -> list[Probe]:
    """The first hop, fetched with the run's other probes (concurrently, before judging)."""
    url, _ = http_url_for(settings)
    return [Probe.get(url, follow_redirects=False)] if url else []


def _http_url(ctx: Context) -> str:
    url, why = http_url_for(ctx.settings)
    if not url:
        ctx.skip(why)
    return url


@check("tls.http_redirects_to_https", title="plain HTTP answers 301/308 to the HTTPS URL of the same host",
       severity="high", probes=_redirect_probes,
       remediation="Answer every plain-HTTP request with a 301 (or 308) to the same URL on "
                   "https:// of the same host, e.g. nginx 'return 301 https://$host$request_uri;'.")
def http_redirects_to_https(ctx: Context) -> None:
    http_url = _http_url(ctx)
    first = ctx.target.fetch(Probe.get(http_url, follow_redirects=False))
    if first not in ctx.exchanges:
        ctx.exchanges.append(first)
    host = (urlsplit(http_url).hostname or "").lower()
    if first.status is None:
        configured = bool(ctx.settings.get("tls.http_url"))
        if first.error.startswith("connection refused") and not configured:
            ctx.passed(f"nothing serves plain HTTP at {http_url} (connection refused): there is "
                       "nothing to redirect")
            return
        raise TargetError(f"GET {http_url}: {first.error}")
    location = first.header("Location")
    if first.status not in (301, 302, 303, 307, 308) or not location:
        ctx.fail(f"plain HTTP serves the page instead of redirecting: GET {http_url} -> "
                 f"{first.status_line}; expected a 301/308 to https://{host}/", first)
    next_url = urljoin(http_url, location)
    parts = urlsplit(next_url)
    if parts.scheme != "https":
        ctx.fail(f"GET {http_url} redirects to {next_url}, which is not HTTPS; the first "
                 f"redirect must go to https://{host}/", first)
    if (parts.hostname or "").lower() != host:
        ctx.fail(f"GET {http_url} redirects to another host ({parts.hostname}); redirect to "
                 f"https://{host}/ first (HSTS only then covers the host the user asked for)", first)
    if first.status not in PERMANENT_REDIRECTS:
        ctx.fail(f"GET {http_url} -> {first.status} to {next_url}: a temporary redirect; use "
                 "301 or 308 so clients and crawlers remember the HTTPS URL", first)
    chain, note = _follow_https(ctx, next_url)
    downgrades = [url for url in chain if urlsplit(url).scheme != "https"]
    if downgrades:
        ctx.fail(f"the redirect chain from {http_url} goes back to plain HTTP on the way: "
                 + " -> ".join([http_url, *chain]))
    ctx.passed(f"GET {http_url} -> {first.status} {next_url}"
               + (f" -> {' -> '.join(chain[1:])}" if len(chain) > 1 else "") + note)


def _follow_https(ctx: Context, url: str) -> tuple[list[str], str]:
    """Follow the HTTPS side of the chain hop by hop; returns the URLs visited and a note
    when it could not be followed to the end."""
    chain = [url]
    for _ in range(MAX_REDIRECTS):
        if urlsplit(url).scheme != "https":
            return chain, ""
        exchange = ctx.target.fetch(Probe.get(url, follow_redirects=False))
        ctx.exchanges.append(exchange)
        if exchange.status is None:
            why = ("the HTTP client does not trust the certificate; tls.cert_valid judges it"
                   if "CERTIFICATE_VERIFY_FAILED" in exchange.error else exchange.error[:160])
            return chain, f" (the HTTPS side was not followed further: {why})"
        location = exchange.header("Location")
        if exchange.status not in (301, 302, 303, 307, 308) or not location:
            return chain, ""
        url = urljoin(url, location)
        if (urlsplit(url).hostname or "").lower() not in ctx.target.allowed_hosts:
            chain.append(url)
            return chain, f" (not followed to {urlsplit(url).hostname}: outside the allowlist)"
        chain.append(url)
    return chain, f" (stopped after {MAX_REDIRECTS} redirects)"


@check("tls.cert_valid", title="the certificate chain verifies and the name matches (SAN, SNI)",
       severity="critical", subjects=tls_subjects,
       remediation="Serve a certificate from a trusted CA whose SANs cover the host name, with the "
                   "full chain (leaf and intermediates); for a private CA set tls.ca_bundle.")
def cert_valid(ctx: Context) -> None:
    endpoint = _endpoint(ctx)
    seen = facts_or_cannot_judge(ctx, endpoint)
    verified = _handshake(ctx, endpoint, "verify")
    trust = "the system trust store" + (f" and {ca_bundle(ctx.settings)}"
                                        if ca_bundle(ctx.settings) else "")
    if verified.ok:
        ctx.passed(f"certificate for {endpoint.label} verifies against {trust} and matches "
                   f"{endpoint.host}: {_cert_line(seen)}")
        return
    if verified.kind != "verify":
        raise CannotJudge(f"a verifying TLS 1.2+ handshake with {endpoint.label} failed: "
                          f"{verified.error}")
    fail(ctx, f"certificate for {endpoint.label} does not verify against {trust}: "
              f"{_explain(verified, seen, endpoint)}", verified, seen)


# OpenSSL's X509_V_ERR_* codes that need more words than OpenSSL gives them.
_VERIFY_HINTS: dict[int, str] = {
    10: "it has expired",
    9: "it is not valid yet",
    18: "it is self-signed (no CA vouches for it)",
    19: "the chain ends in a self-signed root that is not trusted",
    20: "its issuer is neither sent by the server nor trusted: an incomplete chain (send the "
        "intermediates) or a CA missing from the trust store (tls.ca_bundle)",
    21: "the server sent only the leaf and its issuer is not trusted: an incomplete chain",
    62: "the host name is not among its SANs",
    64: "the IP address is not among its SANs",
    66: "its key is too weak for OpenSSL's default security level",
    67: "a CA key in the chain is too weak for OpenSSL's default security level",
    68: "it is signed with a digest too weak for OpenSSL's default security level (SHA-1/MD5)",
}


def _explain(verified: Handshake, seen: Handshake, endpoint: Endpoint) -> str:
    hint = _VERIFY_HINTS.get(verified.verify_code or -1, "")
    cert = seen.cert
    names = f" (SANs: {', '.join(cert.sans) or 'none'}; asked for {endpoint.host})" \
        if cert is not None and verified.verify_code in (62, 64) else ""
    issuer = f" (issuer: {cert.issuer})" if cert is not None and verified.verify_code in (19, 20, 21) else ""
    text = verified.error.removeprefix("certificate verify failed: ").rstrip(".")
    return f"{text}" + (f": {hint}" if hint else "") + names + issuer


@check("tls.cert_expiry", title="the certificate is valid for at least tls.min_days (default 14) more days",
       severity="high", subjects=tls_subjects,
       remediation="Renew the certificate (automate it: ACME/certbot, cert-manager) well before "
                   "it expires; alert on fewer than tls.min_days days left.")
def cert_expiry(ctx: Context) -> None:
    endpoint = _endpoint(ctx)
    seen = facts_or_cannot_judge(ctx, endpoint)
    assert seen.cert is not None
    min_days = int(ctx.settings.get("tls.min_days", DEFAULT_MIN_DAYS) or 0)
    cert = seen.cert
    days = cert.days_left()
    when = f"{cert.not_after:%Y-%m-%d %H:%M}Z"
    if days < 0:
        fail(ctx, f"EXPIRED (critical): the certificate for {endpoint.label} expired {-days:.1f} days "
                  f"ago (not after {when}); clients refuse it now", seen)
    if days < min_days:
        fail(ctx, f"the certificate for {endpoint.label} expires in {days:.1f} days (not after "
                  f"{when}), fewer than tls.min_days = {min_days}", seen)
    ctx.passed(f"the certificate for {endpoint.label} is valid for {days:.0f} more days (not after {when}; "
               f"tls.min_days = {min_days})")


@check("tls.cert_strength", title="RSA >= 2048 or EC >= 256 bits, no SHA-1/MD5 signature",
       severity="medium", subjects=tls_subjects,
       remediation="Reissue the certificate with an RSA 2048+ or ECDSA P-256+ key, signed with "
                   "SHA-256 or better.")
def cert_strength(ctx: Context) -> None:
    endpoint = _endpoint(ctx)
    seen = facts_or_cannot_judge(ctx, endpoint)
    cert = seen.cert
    assert cert is not None
    problems = []
    if cert.key_type == "RSA" and cert.key_bits < MIN_RSA_BITS:
        problems.append(f"RSA key of {cert.key_bits} bits (at least {MIN_RSA_BITS} needed)")
    elif cert.key_type == "EC" and cert.key_bits < MIN_EC_BITS:
        problems.append(f"EC key of {cert.key_bits} bits on {cert.curve} (at least {MIN_EC_BITS} needed)")
    elif cert.key_type == "DSA":
        problems.append(f"DSA key ({cert.key_bits} bits): DSA is obsolete in TLS")
    elif cert.key_type not in ("RSA", "EC", "Ed25519", "Ed448"):
        problems.append(f"unknown key type {cert.key_type}")
    weak_hash = (cert.signature_hash or "").lower()
    if weak_hash in WEAK_SIGNATURE_HASHES and not cert.self_issued:
        problems.append(f"signed with {weak_hash.upper()} ({cert.signature_algorithm}), which is broken "
                        "for certificate signatures")
    if problems:
        fail(ctx, f"weak certificate on {endpoint.label}: {'; '.join(problems)}", seen)
    ctx.passed(f"certificate on {endpoint.label}: {cert.key}, {cert.signature_algorithm}")


@check("tls.legacy_protocols_refused", title="TLS 1.0 and TLS 1.1 handshakes are refused",
       severity="high", subjects=tls_subjects,
       remediation="Allow only TLS 1.2 and 1.3 (nginx 'ssl_protocols TLSv1.2 TLSv1.3;', Apache "
                   "'SSLProtocol -all +TLSv1.2 +TLSv1.3') and remove @SECLEVEL=0 from the ciphers.")
def legacy_protocols_refused(ctx: Context) -> None:
    endpoint = _endpoint(ctx)
    # Positive control: a refusal only means something when the server does speak TLS.
    control = facts(ctx, endpoint)
    if not control.ok:
        raise CannotJudge(f"no TLS handshake with {endpoint.label} at all ({control.error}); a "
                          "refused legacy handshake would prove nothing")
    accepted: list[Handshake] = []
    refused: list[Handshake] = []
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        name = _version_name(version)
        if not _can_offer(version):
            raise CannotJudge(f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer {name} "
                              "at all (built without it), so its refusal cannot be tested here")
        seen = _handshake(ctx, endpoint, "version", version=version)
        if seen.ok:
            accepted.append(seen)
        elif seen.kind == "local":
            raise CannotJudge(f"this machine's OpenSSL would not complete a {name} handshake even "
                              f"at @SECLEVEL=0 ({seen.error}); cannot tell whether the server refuses it")
        elif seen.kind in ("alert", "closed"):
            refused.append(seen)
        else:
            raise CannotJudge(f"{name} probe of {endpoint.label}: {seen.error}")
    if accepted:
        what = "; ".join(f"{h.protocol} accepted ({h.cipher})" for h in accepted)
        fail(ctx, f"{endpoint.label} still speaks legacy TLS: {what}", *accepted, *refused,
             with_cert=False)
    reasons = "; ".join(f"{h.offered.split(' only')[0]}: {h.error}" for h in refused)
    ctx.passed(f"{endpoint.label} refuses TLS 1.0 and TLS 1.1 ({reasons}); our client offered each "
               "at @SECLEVEL=0, so the refusal is the server's")


@check("tls.tls13_offered", title="TLS 1.3 is offered", severity="low", subjects=tls_subjects,
       remediation="Enable TLS 1.3 (nginx 'ssl_protocols TLSv1.2 TLSv1.3;' with OpenSSL 1.1.1+).")
def tls13_offered(ctx: Context) -> None:
    endpoint = _endpoint(ctx)
    control = facts(ctx, endpoint)
    if not control.ok:
        raise CannotJudge(f"no TLS handshake with {endpoint.label} at all ({control.error})")
    if not _can_offer(ssl.TLSVersion.TLSv1_3):
        raise CannotJudge(f"this machine's OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer TLS 1.3")
    seen = _handshake(ctx, endpoint, "version", version=ssl.TLSVersion.TLSv1_3)
    if seen.ok:
        ctx.passed(f"{endpoint.label} offers TLS 1.3 ({seen.cipher})")
        return
    if seen.kind in ("alert", "closed"):
        fail(ctx, f"{endpoint.label} does not offer TLS 1.3 ({seen.error}); best version: "
                  f"{control.protocol}", seen, control, with_cert=False)
    raise CannotJudge(f"TLS 1.3 probe of {endpoint.label}: {seen.error}")


def _version_name(version: ssl.TLSVersion) -> str:
    from pytest_prodready.tlsprobe import VERSION_NAMES

    return VERSION_NAMES[version]


def _can_offer(version: ssl.TLSVersion) -> bool:
    flags = {ssl.TLSVersion.TLSv1: "HAS_TLSv1", ssl.TLSVersion.TLSv1_1: "HAS_TLSv1_1",
             ssl.TLSVersion.TLSv1_3: "HAS_TLSv1_3"}
    return bool(getattr(ssl, flags.get(version, ""), True))


def _tls_hosts(settings: Settings) -> list[str]:
    """tls.http_url's host and the tls.hosts endpoints: part of the target by the user's word."""
    from pytest_prodready.urls import host_of

    hosts = [host_of(str(settings.get("tls.http_url")))] if settings.get("tls.http_url") else []
    hosts += [str(hp).rpartition(":")[0].strip("[]") for hp in settings.get("tls.hosts", []) or []]
    return [h for h in hosts if h]


FAMILY = Family(
    name="tls",
    config={"tls": schema.Table({
        "ca_bundle": schema.file_path, "http_url": schema.url,
        "min_days": schema.integer(0, 398, "no public certificate is valid longer than 398 days"),
        "hosts": schema.list_of(schema.host_port, max_items=1000),
        # false for a deliberately HTTP-only internal service: no https:// is tried;
        # true asks even on loopback
        "require_https": schema.boolean})},
    hosts=_tls_hosts,
)
