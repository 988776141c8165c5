"""tls.*: each check fails on a real TLS server with the defect and passes on one without.

Certificates are minted in the tests (tests/tls_certs.py, cryptography; the SHA-1 one by
the openssl CLI because cryptography no longer signs SHA-1). They are served by Python
`ssl` HTTP servers on 127.0.0.1 and, for the realistic set-ups (HTTP->HTTPS redirects,
HSTS, nginx's own TLS defaults), by nginx from Debian's packages (tests/tls_servers.py).
Nothing mocks `ssl` or `requests`.

What this machine's OpenSSL (3.0, Debian, security level 2 compiled in) really does with
TLS 1.0/1.1, and what these tests therefore serve and expect:
- a client at the default level cannot even offer them ("no ciphers available", before
  anything is sent), so the check's legacy probe runs at @SECLEVEL=0;
- a server configured for TLS 1.0 but left at the default level refuses it anyway (an
  alert): the check must pass there, and does;
- with @SECLEVEL=0 on both ends, TLS 1.0 and 1.1 handshakes complete: the check must fail
  there, and does. Both directions are produced here, none is skipped.
"""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready import assertions, tlsprobe
from pytest_prodready.checking import Result, run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import BudgetExceeded, CannotJudge, CheckFailure
from pytest_prodready.target import Target
from tests.targets.webapp import Served as WebServed
from tests.tls_certs import CA, Leaf, ec_key, rsa_key, self_signed
from tests.tls_servers import (
    Nginx,
    Served,
    answer_plain_http,
    never_answer,
    postgres_ssl,
    reset_mid_handshake,
    run_nginx,
    serve_https,
    serve_raw,
    server_context,
)

CERT_CHECKS = ("tls.cert_valid", "tls.cert_expiry", "tls.cert_strength")
HANDSHAKE_CHECKS = ("tls.https_reachable", *CERT_CHECKS, "tls.legacy_protocols_refused",
                    "tls.tls13_offered")
LEGACY = "ALL:@SECLEVEL=0"  # what OpenSSL 3 needs, on each end, for TLS 1.0/1.1 (and weak certs)


# -- certificates and servers ------------------------------------------------------------------
@dataclass
class Pki:
    ca: CA
    intermediate: CA
    ca_pem: str
    directory: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CA()
    return Pki(ca, ca.intermediate(), ca.write(directory / "ca.pem"), directory)


# name -> (how to mint the leaf, server options)
def _scenarios(pki: Pki) -> dict[str, tuple[Callable[[], Leaf], dict[str, Any]]]:
    ca, inter = pki.ca, pki.intermediate
    return {
        "good": (lambda: ca.issue(), {}),
        "ec256": (lambda: ca.issue(key=ec_key("secp256r1")), {}),
        "expired": (lambda: ca.issue(days=-2, age_days=60), {}),
        "expiring_5_days": (lambda: ca.issue(days=5), {}),
        "wrong_host": (lambda: ca.issue(["wrong.example.test"]), {}),
        "cn_only": (lambda: ca.issue([], common_name="localhost"), {}),
        "self_signed": (lambda: self_signed(), {}),
        "incomplete_chain": (lambda: inter.issue(), {"send_chain": False}),
        "full_chain": (lambda: inter.issue(), {}),
        "wildcard": (lambda: ca.issue(["*.example.test"]), {}),
        # OpenSSL refuses to load these at its default security level 2 ("ee key too
        # small", "ca md too weak"): the server lowers its own level to serve them.
        "rsa_1024": (lambda: ca.issue(key=rsa_key(1024)), {"ciphers": "DEFAULT:@SECLEVEL=0"}),
        "sha1": (lambda: ca.issue_with_openssl(pki.directory / "sha1"), {"ciphers": "DEFAULT:@SECLEVEL=0"}),
        "md5": (lambda: ca.issue_with_openssl(pki.directory / "md5", digest="md5"),
                {"ciphers": "DEFAULT:@SECLEVEL=0"}),
        # Protocol versions.
        "legacy_seclevel0": (lambda: ca.issue(), {"minimum": ssl.TLSVersion.TLSv1, "ciphers": LEGACY}),
        "legacy_default_level": (lambda: ca.issue(), {"minimum": ssl.TLSVersion.TLSv1}),
        "tls12_only": (lambda: ca.issue(), {"maximum": ssl.TLSVersion.TLSv1_2}),
    }


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[Callable[[str], Served]]:
    """server(name): the scenario's HTTPS server, started on first use, once per module."""
    scenarios = _scenarios(pki)
    started: dict[str, Served] = {}
    with ExitStack() as stack:

        def get(name: str) -> Served:
            if name not in started:
                mint, options = scenarios[name]
                options = dict(options)
                certfile, keyfile = mint().write(pki.directory, name,
                                                 send_chain=options.pop("send_chain", True))
                started[name] = stack.enter_context(serve_https(server_context(certfile, keyfile, **options)))
            return started[name]

        yield get


def settings_for(base_url: str, **values: Any) -> Settings:
    tls = values.pop("tls", {})
    config_file = values.pop("config_file", None)
    return Settings(values={**DEFAULTS, "base_url": base_url, "timeout_s": 2.0, "retries": 0,
                            "tls": tls, **values},
                    secrets={}, sources={}, config_file=config_file)


@pytest.fixture
def target_for(pki: Pki) -> Iterator[Callable[..., Target]]:
    """target_for(served_or_url, trust=True, **settings): a Target whose tls.ca_bundle is the
    test CA (trust=False: the system store only)."""
    made: list[Target] = []

    def factory(served: Served | str, *, trust: bool = True, **values: Any) -> Target:
        url = served if isinstance(served, str) else served.url
        tls = {"ca_bundle": pki.ca_pem} if trust else {}
        tls.update(values.pop("tls", {}))
        target = Target(settings_for(url, tls=tls, **values))
        made.append(target)
        return target

    yield factory
    for target in made:
        target.close()


def check(target: Target, check_id: str, subject: str = "") -> Result:
    return run_check(check_id, target, subject)


def assert_failed(result: Result, *fragments: str) -> None:
    """Failed, every fragment in the message, and the detail shows the fix and TLS evidence."""
    assert result.outcome == "failed", (result.outcome, result.message)
    for fragment in fragments:
        assert fragment in result.message, (fragment, result.message)
    assert f"[{result.check_id}]" in result.detail and "Fix:" in result.detail


def assert_tls_evidence(detail: str) -> None:
    """The evidence a failure shows: subject, issuer, SANs, validity, key, signature, protocol."""
    for label in ("* TLS localhost:", "subject   ", "issuer    ", "SANs      ", "validity  ",
                  "days", "key       ", "signature ", "sha256    "):
        assert label in detail, (label, detail)


# -- tls.cert_valid -------------------------------------------------------------------------------
def test_cert_valid_passes_with_the_configured_ca(server: Callable[[str], Served],
                                                  target_for: Callable[..., Target]) -> None:
    """Chain to tls.ca_bundle, name in the SANs (SNI sent): passes, naming what it saw."""
    result = check(target_for(server("good")), "tls.cert_valid")
    assert result.outcome == "passed", result.message
    assert "verifies against the system trust store and" in result.message
    assert "SANs DNS:localhost, IP:127.0.0.1" in result.message
    assert "RSA 2048 bits" in result.message and "TLSv1.3" in result.message


def test_cert_valid_fails_against_the_system_store_alone(server: Callable[[str], Served],
                                                         target_for: Callable[..., Target]) -> None:
    """The same certificate without tls.ca_bundle: its private CA is unknown to the system."""
    result = check(target_for(server("good"), trust=False), "tls.cert_valid")
    assert_failed(result, "does not verify against the system trust store:",
                  "unable to get local issuer certificate", "issuer: CN=prodready test root CA")
    assert_tls_evidence(result.detail)


@pytest.mark.parametrize(("scenario", "fragments"), [
    ("expired", ["certificate has expired"]),
    ("wrong_host", ["Hostname mismatch", "not among its SANs", "SANs: DNS:wrong.example.test",
                    "asked for localhost"]),
    ("cn_only", ["Hostname mismatch", "SANs: none"]),
    ("self_signed", ["self-signed certificate", "no CA vouches for it"]),
    ("incomplete_chain", ["unable to get local issuer certificate", "incomplete chain",
                          "issuer: CN=prodready test intermediate CA"]),
    ("rsa_1024", ["EE certificate key too weak"]),
    ("sha1", ["CA signature digest algorithm too weak", "SHA-1"]),
])
def test_cert_valid_fails_on_defect(server: Callable[[str], Served], target_for: Callable[..., Target],
                                    scenario: str, fragments: list[str]) -> None:
    """OpenSSL's own verification (the client a browser-like user has) names the defect;
    the message adds what it means. A CN without SANs is not a name match (as in browsers)."""
    result = check(target_for(server(scenario)), "tls.cert_valid")
    assert_failed(result, *fragments)
    assert_tls_evidence(result.detail)
    assert "* handshake failed: certificate verify failed" in result.detail


def test_cert_valid_passes_when_the_server_sends_the_intermediate(
        server: Callable[[str], Served], target_for: Callable[..., Target]) -> None:
    """Positive control for the incomplete chain: the same leaf with its intermediate sent."""
    result = check(target_for(server("full_chain")), "tls.cert_valid")
    assert result.outcome == "passed", result.message
    assert "issuer CN=prodready test intermediate CA" in result.message


def test_cert_valid_checks_ip_addresses_against_ip_sans(server: Callable[[str], Served],
                                                        target_for: Callable[..., Target]) -> None:
    """A target given by IP is matched against IP SANs (and no SNI is sent for it)."""
    good = check(target_for(f"https://127.0.0.1:{server('good').port}/"), "tls.cert_valid")
    assert good.outcome == "passed", good.message
    bad = check(target_for(f"https://127.0.0.1:{server('wrong_host').port}/"), "tls.cert_valid")
    assert_failed(bad, "IP address mismatch", "not among its SANs")
    assert "no SNI (IP address)" in bad.detail


def test_cert_valid_sends_sni(pki: Pki, target_for: Callable[..., Target]) -> None:
    """A server that picks its certificate by SNI: the right one only for 'localhost'.

    Passing proves the check sent SNI; the wrong default for a client without SNI (an IP
    subject) proves the server really depends on it."""
    right = pki.ca.issue().write(pki.directory, "sni-right")
    wrong = pki.ca.issue(["default.example.test", "127.0.0.1"]).write(pki.directory, "sni-wrong")
    by_name = server_context(*right)
    seen: list[str | None] = []

    def choose(name: str | None) -> ssl.SSLContext | None:
        seen.append(name)
        return by_name if name == "localhost" else None

    with serve_https(server_context(*wrong, sni=choose)) as served:
        result = check(target_for(served), "tls.cert_valid")
        assert result.outcome == "passed", result.message
        assert "DNS:localhost" in result.message
        assert "localhost" in seen
        by_ip = check(target_for(f"https://127.0.0.1:{served.port}/"), "tls.cert_valid")
        assert "DNS:default.example.test" in by_ip.message  # no SNI: the default certificate
        facts = tlsprobe.handshake(tlsprobe.Endpoint("127.0.0.1", served.port), mode="modern", timeout=2)
        assert facts.cert is not None and "DNS:default.example.test" in facts.cert.sans


@pytest.mark.parametrize(("server_name", "verifies"), [
    ("api.example.test", True),
    ("www.example.test", True),
    ("a.b.example.test", False),  # a wildcard covers one label only
    ("example.test", False),  # ...and not the bare domain
])
def test_wildcard_names_as_openssl_matches_them(server: Callable[[str], Served], pki: Pki,
                                                server_name: str, verifies: bool) -> None:
    """The verifying handshake the check uses (same function, same context) against a
    '*.example.test' certificate, with SNI and name check for names that need no DNS."""
    endpoint = tlsprobe.Endpoint("127.0.0.1", server("wildcard").port)
    seen = tlsprobe.handshake(endpoint, mode="verify", timeout=2, server_name=server_name,
                              ca_file=pki.ca_pem)
    assert seen.ok is verifies, seen.error
    if not verifies:
        assert seen.kind == "verify" and "Hostname mismatch" in seen.error


def test_ca_bundle_is_resolved_against_the_config_files_directory(
        server: Callable[[str], Served], pki: Pki, tmp_path: Path) -> None:
    """tls.ca_bundle = 'certs/ca.pem' means next to the config file, not the working dir."""
    (tmp_path / "certs").mkdir()
    shutil.copy(pki.ca_pem, tmp_path / "certs" / "ca.pem")
    served = server("good")
    settings = settings_for(served.url, tls={"ca_bundle": "certs/ca.pem"},
                            config_file=tmp_path / "prodready.toml")
    with Target(settings) as target:
        result = check(target, "tls.cert_valid")
    assert result.outcome == "passed", result.message
    assert str(tmp_path / "certs" / "ca.pem") in result.message
    missing = settings_for(served.url, tls={"ca_bundle": "certs/nope.pem"},
                           config_file=tmp_path / "prodready.toml")
    with Target(missing) as target:
        result = check(target, "tls.cert_valid")
    assert result.outcome == "error"
    assert (f"tls.ca_bundle 'certs/nope.pem' is not a file (looked at {tmp_path}/certs/nope.pem"
            in result.message)


# -- tls.cert_expiry -------------------------------------------------------------------------------
def test_cert_expiry_passes_with_months_left(server: Callable[[str], Served],
                                             target_for: Callable[..., Target]) -> None:
    result = check(target_for(server("good")), "tls.cert_expiry")
    assert result.outcome == "passed", result.message
    assert "valid for 90 more days" in result.message and "tls.min_days = 14" in result.message


def test_cert_expiry_fails_five_days_before(server: Callable[[str], Served],
                                            target_for: Callable[..., Target]) -> None:
    """5 days left is under the default 14; with tls.min_days = 3 it passes."""
    result = check(target_for(server("expiring_5_days")), "tls.cert_expiry")
    assert_failed(result, "expires in 5.0 days", "fewer than tls.min_days = 14")
    assert_tls_evidence(result.detail)
    assert "(5.0 days left)" in result.detail
    relaxed = check(target_for(server("expiring_5_days"), tls={"min_days": 3}), "tls.cert_expiry")
    assert relaxed.outcome == "passed", relaxed.message


def test_cert_expiry_says_expired(server: Callable[[str], Served], target_for: Callable[..., Target]) -> None:
    """An expired certificate fails with critical wording, whatever min_days says."""
    result = check(target_for(server("expired"), tls={"min_days": 0}), "tls.cert_expiry")
    assert_failed(result, "EXPIRED (critical)", "expired 2.0 days ago", "clients refuse it now")
    assert "EXPIRED 2.0 days ago" in result.detail


# -- tls.cert_strength -----------------------------------------------------------------------------
@pytest.mark.parametrize(("scenario", "fragment"), [
    ("good", "RSA 2048 bits, rsa-with-sha256"),
    ("ec256", "EC 256 bits (secp256r1), rsa-with-sha256"),  # an EC key, signed by the RSA CA
])
def test_cert_strength_passes(server: Callable[[str], Served], target_for: Callable[..., Target],
                              scenario: str, fragment: str) -> None:
    result = check(target_for(server(scenario)), "tls.cert_strength")
    assert result.outcome == "passed", result.message
    assert fragment in result.message


@pytest.mark.parametrize(("scenario", "fragment"), [
    ("rsa_1024", "RSA key of 1024 bits (at least 2048 needed)"),
    ("sha1", "signed with SHA1 (rsa-with-sha1)"),
    ("md5", "signed with MD5 (rsa-with-md5)"),
])
def test_cert_strength_fails_on_weak_certificates(server: Callable[[str], Served],
                                                  target_for: Callable[..., Target],
                                                  scenario: str, fragment: str) -> None:
    """The weak certificate is read even though a default client would refuse to verify it."""
    result = check(target_for(server(scenario)), "tls.cert_strength")
    assert_failed(result, fragment)
    assert_tls_evidence(result.detail)


# -- tls.legacy_protocols_refused / tls.tls13_offered ------------------------------------------------
def test_legacy_protocols_accepted_fail(server: Callable[[str], Served],
                                        target_for: Callable[..., Target]) -> None:
    """A server at @SECLEVEL=0 with minimum TLS 1.0: both legacy handshakes complete."""
    result = check(target_for(server("legacy_seclevel0")), "tls.legacy_protocols_refused")
    assert_failed(result, "still speaks legacy TLS", "TLSv1 accepted", "TLSv1.1 accepted")
    assert "* negotiated TLSv1, cipher" in result.detail
    assert "* negotiated TLSv1.1, cipher" in result.detail


@pytest.mark.parametrize("scenario", ["good", "legacy_default_level", "tls12_only"])
def test_legacy_protocols_refused_pass(server: Callable[[str], Served], target_for: Callable[..., Target],
                                       scenario: str) -> None:
    """Refused by a TLS 1.2+ server, and by a server configured for TLS 1.0 that OpenSSL's
    default security level stops anyway (an alert, not a local refusal of ours)."""
    result = check(target_for(server(scenario)), "tls.legacy_protocols_refused")
    assert result.outcome == "passed", result.message
    assert "refuses TLS 1.0 and TLS 1.1" in result.message
    assert "alert" in result.message and "refusal is the server's" in result.message


def test_tls13_offered(server: Callable[[str], Served], target_for: Callable[..., Target]) -> None:
    assert check(target_for(server("good")), "tls.tls13_offered").outcome == "passed"
    result = check(target_for(server("tls12_only")), "tls.tls13_offered")
    assert_failed(result, "does not offer TLS 1.3", "best version: TLSv1.2")


# -- tls.https_reachable -----------------------------------------------------------------------------
def test_https_reachable_passes_and_names_the_answer(server: Callable[[str], Served],
                                                     target_for: Callable[..., Target], pki: Pki) -> None:
    """The base URL answers over HTTPS. Without tls.ca_bundle the HTTP client does not trust
    the test CA, so the answer is read without verification and the message says so; with
    it, the answer is the shared (verified) page probe."""
    served = server("good")
    result = check(target_for(served, trust=False), "tls.https_reachable")
    assert result.outcome == "passed", result.message
    assert f"GET https://localhost:{served.port}/ -> 200 over TLSv1.3" in result.message
    assert "the certificate does not verify" in result.message
    result = check(target_for(served), "tls.https_reachable")
    assert result.outcome == "passed" and "verif" not in result.message, result.message


def test_https_reachable_fails_without_tls(target_for: Callable[..., Target]) -> None:
    """Plain HTTP on the HTTPS port, and nothing listening: both fail with what was seen."""
    with serve_raw(answer_plain_http) as plain:
        result = check(target_for(plain), "tls.https_reachable")
    assert_failed(result, f"no TLS on localhost:{plain.port}", "not with TLS", "plain HTTP on a TLS port?")
    result = check(target_for("https://localhost:9/"), "tls.https_reachable")
    assert_failed(result, "no TLS on localhost:9", "connection refused")


def test_https_reachable_fails_when_only_legacy_tls_works(pki: Pki,
                                                          target_for: Callable[..., Target]) -> None:
    """A TLS 1.0-only server: a modern client cannot connect at all."""
    certfile, keyfile = pki.ca.issue().write(pki.directory, "tls10-only")
    context = server_context(certfile, keyfile, minimum=ssl.TLSVersion.TLSv1,
                             maximum=ssl.TLSVersion.TLSv1, ciphers=LEGACY)
    with serve_https(context) as served:
        target = target_for(served)
        result = check(target, "tls.https_reachable")
        assert_failed(result, "a modern client (TLS 1.2+) cannot connect",
                      "only a legacy handshake works (TLSv1,")
        # The certificate is still read (permissive handshake), so the cert checks judge it.
        expiry = check(target, "tls.cert_expiry")
        assert expiry.outcome == "passed", expiry.message
        assert_failed(check(target, "tls.legacy_protocols_refused"), "TLSv1 accepted")


# -- bad input: never a hang, never a traceback ----------------------------------------------------
@pytest.mark.parametrize(("behaviour", "fragment"), [
    (answer_plain_http, "the port answered, but not with TLS"),
    (never_answer, "the TLS handshake did not finish within 1s (it stalled)"),
    (reset_mid_handshake, "the server closed the connection during the TLS handshake"),
])
def test_bad_endpoints_end_within_the_timeout(target_for: Callable[..., Target],
                                              behaviour: Callable[..., None], fragment: str) -> None:
    """Every check on a non-TLS port, a server that never answers the handshake, and a reset
    mid-handshake ends within the timeout (1s here) as 'cannot judge' with the reason, or
    (https_reachable, for a port that is not TLS) a failure; the run's handshake cache means
    the stall is waited for once, not once per check."""
    with serve_raw(behaviour) as served:
        target = target_for(served, timeout_s=1.0)
        start = time.monotonic()
        results = [check(target, c) for c in HANDSHAKE_CHECKS]
        elapsed = time.monotonic() - start
    assert elapsed < 5.0, elapsed  # once per check would be 7 s or more
    for result in results:
        assert fragment in result.message, (result.check_id, result.message)
        expected = "failed" if (result.check_id == "tls.https_reachable"
                                and behaviour is answer_plain_http) else "error"
        assert result.outcome == expected, (result.check_id, result.outcome, result.message)
        if expected == "error":
            assert result.message.startswith("cannot judge:")


def test_nothing_listening_is_cannot_judge_for_the_certificate_checks(
        target_for: Callable[..., Target]) -> None:
    target = target_for("https://localhost:9/")
    for check_id in (*CERT_CHECKS, "tls.legacy_protocols_refused", "tls.tls13_offered"):
        result = check(target, check_id)
        assert result.outcome == "error" and "connection refused" in result.message, result.message


# -- safety: allowlist, budget, once per run --------------------------------------------------------
def test_handshakes_are_shared_and_charged_to_the_budget(server: Callable[[str], Served],
                                                         target_for: Callable[..., Target]) -> None:
    """The three certificate checks cost two connections (facts, verification), each charged."""
    served = server("full_chain")
    before = served.accepted
    target = target_for(served)
    assert [check(target, c).outcome for c in CERT_CHECKS] == ["passed"] * 3
    assert served.accepted - before == 2
    assert target.budget.spent == 2


def test_budget_is_a_hard_cap_for_handshakes(server: Callable[[str], Served],
                                             target_for: Callable[..., Target]) -> None:
    served = server("good")
    target = target_for(served, request_budget=1)
    before = served.accepted
    with pytest.raises(BudgetExceeded, match="request budget of 1"):
        check(target, "tls.cert_valid")  # the facts handshake spends it; verifying would exceed
    assert served.accepted - before == 1


def test_endpoints_outside_the_allowlist_are_not_contacted(server: Callable[[str], Served],
                                                           target_for: Callable[..., Target]) -> None:
    """A subject whose host is neither the target's nor in tls.hosts is refused before any
    connection (127.0.0.2 reaches the same loopback server, so a leak would be counted)."""
    served = server("good")
    before = served.accepted
    outsider = check(target_for(served), "tls.cert_valid", f"127.0.0.2:{served.port}")
    assert outsider.outcome == "error", outsider.message
    assert "refused to connect to '127.0.0.2'" in outsider.message
    assert served.accepted == before


# -- subjects and skips --------------------------------------------------------------------------
def test_plain_http_base_without_tls_hosts_skips_naming_the_keys(target_for: Callable[..., Target]) -> None:
    target = target_for("http://localhost:9/", trust=False)
    for check_id in HANDSHAKE_CHECKS:
        result = check(target, check_id)
        assert result.outcome == "skipped", (check_id, result.message)
        assert "base_url http://localhost:9/ is not https://" in result.message
        assert "tls.hosts" in result.message
    redirect = check(target, "tls.http_redirects_to_https")
    assert redirect.outcome == "skipped" and "tls.http_url" in redirect.message


def test_tls_hosts_are_subjects_beside_an_https_base(server: Callable[[str], Served],
                                                     target_for: Callable[..., Target]) -> None:
    """Subjects: the base URL's host:port, then each tls.hosts entry; a plain-HTTP base
    with tls.hosts checks those endpoints only."""
    from pytest_prodready.checks.tls import tls_subjects

    extra = server("expiring_5_days").endpoint
    base = target_for(server("good"), tls={"hosts": [extra, "db.internal:5432"]})
    assert tls_subjects(base.settings) == [server("good").endpoint, extra, "db.internal:5432"]
    plain = target_for("http://localhost:9/", tls={"hosts": [extra]})
    assert tls_subjects(plain.settings) == [extra]
    assert check(plain, "tls.cert_expiry").outcome == "failed"  # the first subject by default
    assert check(plain, "tls.https_reachable", extra).message.startswith(f"TLS answers on {extra}: TLSv1.3")


def test_postgres_sslrequest(pki: Pki) -> None:
    """Port 5432 in tls.hosts speaks PostgreSQL's SSLRequest before TLS ('S'), and a server
    answering 'N' is told apart. (Probed through the library: 5432 itself is not bound here.)"""
    certfile, keyfile = pki.ca.issue().write(pki.directory, "postgres")
    context = server_context(certfile, keyfile)
    assert tlsprobe.Endpoint.parse("db.internal:5432").starttls == "postgres"
    with serve_raw(postgres_ssl(context)) as served:
        seen = tlsprobe.handshake(tlsprobe.Endpoint("localhost", served.port, "postgres"),
                                  mode="verify", timeout=2, ca_file=pki.ca_pem)
    assert seen.ok, seen.error
    assert seen.protocol == "TLSv1.3" and seen.cert is not None and "DNS:localhost" in seen.cert.sans
    with serve_raw(postgres_ssl(None)) as served:
        refused = tlsprobe.handshake(tlsprobe.Endpoint("localhost", served.port, "postgres"),
                                     mode="modern", timeout=2)
    assert refused.kind == "no_tls" and "answered 'N' to SSLRequest" in refused.error


# -- nginx: the realistic terminator -------------------------------------------------------------
@pytest.fixture(scope="module")
def nginx(pki: Pki) -> Iterator[Nginx]:
    certfile, keyfile = pki.ca.issue().write(pki.directory, "nginx")
    with run_nginx(pki.directory / "nginx", certfile, keyfile) as running:
        yield running


@pytest.mark.parametrize(("role", "outcome", "fragment"), [
    ("redirect", "passed", "-> 301 https://localhost:"),
    ("temporary", "failed", "-> 302 to https://localhost:"),
    ("plain", "failed", "plain HTTP serves the page instead of redirecting"),
    ("other_host", "failed", "redirects to another host (www.example.com)"),
    ("to_http", "failed", "which is not HTTPS"),
    ("downgrade", "failed", "goes back to plain HTTP on the way"),
])
def test_http_redirects_to_https_with_nginx(nginx: Nginx, pki: Pki, target_for: Callable[..., Target],
                                            role: str, outcome: str, fragment: str) -> None:
    """nginx's HTTP side: a 301 to the same host passes; 302, serving content, another host,
    a redirect to plain HTTP, and a downgrade after the first hop fail."""
    target = target_for(nginx.url("https", "https"), tls={"http_url": nginx.url(role)})
    result = check(target, "tls.http_redirects_to_https")
    assert result.outcome == outcome, result.message
    assert fragment in result.message
    if outcome == "failed":
        assert "> GET http://localhost:" in result.detail
        assert ("< Location:" in result.detail) is (role != "plain")


def test_http_redirect_without_trust_still_judges_the_first_hop(nginx: Nginx,
                                                               target_for: Callable[..., Target]) -> None:
    result = check(target_for(nginx.url("https", "https"), trust=False,
                              tls={"http_url": nginx.url("redirect")}),
                   "tls.http_redirects_to_https")
    # The HTTP client reads the HTTPS side without verification (tls.cert_valid judges the
    # certificate): the whole chain is judged.
    assert result.outcome == "passed", result.message
    assert "-> 301 https://localhost:" in result.message
    assert any("without certificate verification" in ex.note for ex in result.exchanges)


def test_http_url_is_derived_only_on_default_ports(target_for: Callable[..., Target]) -> None:
    result = check(target_for("https://localhost:8443/"), "tls.http_redirects_to_https")
    assert result.outcome == "skipped" and "set tls.http_url" in result.message


@pytest.mark.parametrize(("role", "legacy", "tls13"), [
    ("https", "passed", "passed"),  # ssl_protocols TLSv1.2 TLSv1.3
    ("legacy", "failed", "failed"),  # ssl_protocols TLSv1 TLSv1.1 TLSv1.2 + @SECLEVEL=0
    ("defaults", "passed", "failed"),  # nginx 1.22's defaults: TLSv1-1.2 listed, OpenSSL refuses 1.0/1.1
])
def test_nginx_protocol_set_ups(nginx: Nginx, target_for: Callable[..., Target], role: str,
                                legacy: str, tls13: str) -> None:
    """What real nginx configurations give: its 1.22 defaults list TLSv1 and TLSv1.1 but
    OpenSSL's security level refuses them, and do not include TLS 1.3."""
    target = target_for(nginx.url(role, "https"))
    assert check(target, "tls.legacy_protocols_refused").outcome == legacy
    assert check(target, "tls.tls13_offered").outcome == tls13
    assert check(target, "tls.cert_valid").outcome == "passed"


def test_hsts_on_nginx(nginx: Nginx, pki: Pki, target_for: Callable[..., Target]) -> None:
    """headers.hsts on the HTTPS site nginx terminates: set on the site, absent on another."""
    site = target_for(nginx.url("https", "https"))
    result = run_check("headers.hsts", site)
    assert result.outcome == "passed" and "31536000s" in result.message, result.message
    bare = target_for(nginx.url("defaults", "https"))
    assert run_check("headers.hsts", bare).outcome == "failed"


def test_http_client_honours_ca_bundle(nginx: Nginx, pki: Pki, target_for: Callable[..., Target]) -> None:
    """tls.ca_bundle is trusted by the HTTP client too, so headers.* can judge a private-CA target."""
    result = run_check("headers.hsts", target_for(nginx.url("https", "https"),
                                                  tls={"ca_bundle": str(pki.ca_pem)}))
    assert result.outcome == "passed", result.message


# -- assertion helpers ---------------------------------------------------------------------------
def test_assertion_helpers(server: Callable[[str], Served], nginx: Nginx, pki: Pki,
                           target_for: Callable[..., Target]) -> None:
    good = target_for(server("good"))
    assertions.assert_certificate_valid(good, min_days=30)
    assertions.assert_legacy_tls_refused(good)
    with pytest.raises(CheckFailure, match=r"expires in 5\.0 days"):
        assertions.assert_certificate_valid(target_for(server("expiring_5_days")))
    with pytest.raises(CheckFailure, match="Hostname mismatch"):
        assertions.assert_certificate_valid(target_for(server("wrong_host")))
    with pytest.raises(CheckFailure, match="TLSv1 accepted"):
        assertions.assert_legacy_tls_refused(target_for(server("legacy_seclevel0")))
    # An extra endpoint named in the call (the caller's own word, like tls.hosts).
    with pytest.raises(CheckFailure, match="TLSv1 accepted"):
        assertions.assert_legacy_tls_refused(good, server("legacy_seclevel0").endpoint)
    site = target_for(nginx.url("https", "https"))
    assertions.assert_redirects_to_https(site, nginx.url("redirect"))
    with pytest.raises(CheckFailure, match="temporary redirect"):
        assertions.assert_redirects_to_https(site, nginx.url("temporary"))
    with pytest.raises(CannotJudge, match="stalled"), serve_raw(never_answer) as stalled:
        assertions.assert_certificate_valid(target_for(stalled, timeout_s=0.5))


# -- the pytest layer ----------------------------------------------------------------------------
def test_suite_run_with_tls_hosts(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                  server: Callable[[str], Served], pki: Pki, good_app: Any) -> None:
    """`pytest --prodready --prodready-only tls` against a plain-HTTP base with two TLS
    endpoints in tls.hosts and a relative tls.ca_bundle: one item per check and endpoint;
    the expired endpoint fails with EXPIRED in the output."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:benchmark -p no:xdist")
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV"):
        monkeypatch.delenv(name, raising=False)
    (pytester.path / "certs").mkdir()
    shutil.copy(pki.ca_pem, pytester.path / "certs" / "ca.pem")
    good, expired = server("good").endpoint, server("expired").endpoint
    pytester.makefile(".toml", prodready=f"""
base_url = "{good_app.url}"
timeout_s = 2

[tls]
ca_bundle = "certs/ca.pem"
hosts = ["{good}", "{expired}"]
""")
    result = pytester.runpytest("--prodready", "--prodready-only", "tls", "-rA")
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 2, out  # cert_valid and cert_expiry on the expired one
    assert outcomes.get("passed") == 2 * 6 - 2, out
    assert outcomes.get("skipped") == 1, out  # the redirect check: the base is plain HTTP
    assert f"tls.cert_expiry[{expired}]" in out and "EXPIRED (critical)" in out
    assert "tls.http_url" in out


def test_certfacts_parse_what_the_checks_show(pki: Pki) -> None:
    """The parser (cryptography x509) behind the evidence, on a minted certificate."""
    leaf = pki.intermediate.issue(["api.example.test", "10.0.0.1"], days=30)
    from cryptography.hazmat.primitives import serialization

    facts = tlsprobe.CertFacts.from_der(leaf.cert.public_bytes(serialization.Encoding.DER))
    assert facts.sans == ("DNS:api.example.test", "IP:10.0.0.1")
    assert facts.issuer == "CN=prodready test intermediate CA,O=pytest-prodready tests"
    assert (facts.key_type, facts.key_bits, facts.signature_hash) == ("RSA", 2048, "sha256")
    assert 29.9 < facts.days_left() <= 30
    assert facts.embedded_scts == 0
    now = dt.datetime.now(dt.timezone.utc)
    assert facts.to_dict(now)["days_left"] == pytest.approx(30, abs=0.1)


def test_tls_facts_reach_the_report_evidence(server: Callable[[str], Served],
                                             target_for: Callable[..., Target]) -> None:
    """The handshake's facts (not only the message) are in the evidence the reports serialise,
    in the shape report.schema.json describes."""
    import json
    from importlib.resources import files

    import jsonschema

    result = check(target_for(server("expiring_5_days")), "tls.cert_expiry")
    assert result.outcome == "failed", result.message
    tls = [item["tls"] for item in result.evidence() if "tls" in item]
    assert tls and tls[0]["protocol"] and tls[0]["endpoint"].startswith("localhost:")
    schema = json.loads(files("pytest_prodready.report").joinpath("report.schema.json").read_text())
    item_schema = {"$defs": schema["$defs"],
                   **schema["properties"]["checks"]["items"]["properties"]["evidence"]["items"]}
    for item in result.evidence():
        jsonschema.validate(item, item_schema)


# -- a plain-HTTP site hears that it lacks HTTPS -----------------------------------------------
def test_https_subjects_for_a_plain_http_site() -> None:
    """Not loopback: port 443 of the same host is asked; loopback only when asked for; never
    when tls.require_https is false."""
    from pytest_prodready.checks.tls import https_subjects

    def subjects(url: str, **tls: object) -> list[str]:
        values = {**DEFAULTS, "base_url": url, **({"tls": tls} if tls else {})}
        return https_subjects(Settings(values=values, secrets={}, sources={}))

    assert subjects("http://staging.example.com") == ["staging.example.com:443"]
    assert subjects("http://staging.example.com", require_https=False) == []
    assert subjects("http://127.0.0.1:8080") == []
    assert subjects("http://localhost:8080") == []
    assert subjects("http://127.0.0.1:8080", require_https=True) == ["127.0.0.1:443"]
    assert subjects("https://staging.example.com") == ["staging.example.com:443"]


def test_a_plain_http_site_without_https_fails(good_app: WebServed,
                                                target_for: Callable[..., Target]) -> None:
    """A real plain-HTTP target (loopback, so asked for with require_https = true): nothing
    answers HTTPS on port 443 of its host, and tls.https_reachable fails saying so."""
    target = target_for(good_app, tls={"require_https": True})
    result = run_check("tls.https_reachable", target, "127.0.0.1:443")
    assert result.outcome == "failed", result.message
    assert "served over plain HTTP" in result.message
    assert "nothing answers HTTPS on 127.0.0.1:443" in result.message
    skipped = run_check("tls.https_reachable", target_for(good_app, tls={"require_https": False}))
    assert skipped.outcome == "skipped", skipped.message


@pytest.mark.parametrize("scenario", ["rsa_1024", "good"])
def test_an_untrusted_or_weak_certificate_does_not_stop_the_http_checks(
        server: Callable[[str], Served], target_for: Callable[..., Target], scenario: str) -> None:
    """Without tls.ca_bundle (a private CA), and for an RSA-1024 leaf below OpenSSL's default
    security level, the HTTP checks still judge the page, fetched without verification and
    saying so; tls.cert_valid / tls.cert_strength give the real reason."""
    target = target_for(server(scenario), trust=False)
    result = check(target, "headers.content_type_options")
    assert result.outcome in ("passed", "failed"), result.message
    assert any("without certificate verification" in ex.note for ex in result.exchanges)
    valid = check(target, "tls.cert_valid")
    assert valid.outcome == "failed", valid.message
    if scenario == "rsa_1024":
        strength = check(target, "tls.cert_strength")
        assert strength.outcome == "failed" and "1024" in strength.message, strength.message
