"""dns.*: the domain resolves, CAA restricts issuers, SPF and DMARC protect its mail, no
CNAME dangles; and, for information, whether the zone is DNSSEC-signed.

Queries go with dnspython to `dns.nameserver` ('host:port') when it is set, else to the
system's resolver. Each query is one connection: to a configured nameserver it goes
through `Target.guard` (allowlist, then the run's budget); to the system resolver it is
charged to the budget. Every query has a short lifetime: a nameserver that is down or
silent gives "cannot judge" within it, never a hang; NXDOMAIN and "no records" are
answers and are judged. Every query and its answer is evidence (`Lookup`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.exceptions import CannotJudge, CheckFailure
from pytest_prodready.family import Family

QUERY_LIFETIME_S = 5.0
SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
MAX_CNAME_HOPS = 8
# Services whose names are claimable by anyone once the customer's resource is gone: a CNAME
# into one of these whose target does not exist is a subdomain-takeover risk
# (after the public can-i-take-over-xyz list: the ones where NXDOMAIN is the signal).
TAKEOVER_SERVICES: dict[str, str] = {
    "azurewebsites.net": "Azure App Service", "cloudapp.net": "Azure Cloud Services",
    "cloudapp.azure.com": "Azure VM (cloudapp)", "trafficmanager.net": "Azure Traffic Manager",
    "blob.core.windows.net": "Azure Blob Storage", "azureedge.net": "Azure CDN",
    "azure-api.net": "Azure API Management", "azurecontainer.io": "Azure Container Instances",
    "azurefd.net": "Azure Front Door", "elasticbeanstalk.com": "AWS Elastic Beanstalk",
    "s3.amazonaws.com": "AWS S3", "herokudns.com": "Heroku", "herokuapp.com": "Heroku",
    "github.io": "GitHub Pages", "netlify.app": "Netlify", "surge.sh": "Surge",
    "bitbucket.io": "Bitbucket", "ghost.io": "Ghost", "myshopify.com": "Shopify",
    "readthedocs.io": "Read the Docs", "pantheonsite.io": "Pantheon", "fly.dev": "Fly.io",
    "agilecrm.com": "Agile CRM", "helpscoutdocs.com": "Help Scout", "wordpress.com": "WordPress.com",
}
SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
SPF_COUNTED = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
SPF_TERM = re.compile(r"^([+\-~?]?)([a-z0-9]+)(?:([:=/])(.*))?$", re.IGNORECASE)
MODIFIER = re.compile(r"^([a-z][a-z0-9_.\-]*)=(.*)$", re.IGNORECASE)
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


# -- evidence -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lookup:
    """One DNS query and what came back."""

    server: str
    name: str
    rdtype: str
    status: str  # NOERROR, NXDOMAIN, NODATA, or why there is no answer
    answers: tuple[str, ...] = ()
    canonical: str = ""  # where the CNAMEs led, when they did
    elapsed_ms: float = 0.0

    @property
    def exists(self) -> bool:
        return self.status in ("NOERROR", "NODATA")

    def to_dict(self) -> dict[str, Any]:
        return {"dns": {"server": self.server, "name": self.name, "type": self.rdtype,
                        "status": self.status, "answers": list(self.answers),
                        "canonical_name": self.canonical or None,
                        "elapsed_ms": round(self.elapsed_ms, 1)}}

    def render(self) -> str:
        via = f" (via CNAME to {self.canonical})" if self.canonical else ""
        answers = "; ".join(self.answers[:6]) + (f"; +{len(self.answers) - 6} more"
                                                 if len(self.answers) > 6 else "")
        shown = f" {answers}" if answers else ""
        return f"* DNS @{self.server} {self.name} {self.rdtype}: {self.status}{via}{shown}"


def fail(ctx: Context, message: str) -> NoReturn:
    """The failure, with every query made shown in the detail."""
    masker = ctx.target.masker
    lines = [f"[{ctx.spec.id}] {masker.text(message)}", f"Fix: {ctx.spec.remediation}", ""]
    lines += [masker.text(fact.render()) for fact in ctx.facts[:40]]
    if len(ctx.facts) > 40:
        lines.append(f"(+{len(ctx.facts) - 40} more queries in the report)")
    raise CheckFailure(message, (), remediation=ctx.spec.remediation, check_id=ctx.spec.id,
                       rendered="\n".join(lines))


# -- queries ------------------------------------------------------------------------------------
def _nameserver(settings: Settings) -> tuple[str, int] | None:
    configured = settings.get("dns.nameserver")
    if not configured:
        return None
    host, _, port = str(configured).strip().rpartition(":")
    return host.strip("[]").lower(), int(port)


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


class Resolver:
    """dnspython against the configured nameserver (or the system's), every query guarded,
    bounded and recorded as a fact."""

    def __init__(self, ctx: Context) -> None:
        import dns.resolver

        self.ctx = ctx
        lifetime = max(0.2, min(float(ctx.target.timeout), QUERY_LIFETIME_S))
        self.server_address = _nameserver(ctx.settings)
        if self.server_address:
            host, port = self.server_address
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [_ip_of(host, port)]
            self.resolver.port = port
            self.server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise CannotJudge("no system resolver is configured; set dns.nameserver") from None
            self.server = "system resolver"
        self.resolver.lifetime = self.resolver.timeout = lifetime
        self.lifetime = lifetime
        self.cache: dict[tuple[str, str], Lookup] = {}
        # The whole response of each answered query: dns.dnssec reads its flags and RRSIGs.
        self.responses: dict[tuple[str, str], Any] = {}

    def want_dnssec(self) -> None:
        """Ask with EDNS0 and the DO bit, so a signed zone's RRSIGs come back and a validating
        resolver can say (AD) that it validated them."""
        import dns.flags

        self.resolver.use_edns(0, dns.flags.DO, 1232)

    def query(self, name: str, rdtype: str) -> Lookup:
        """The answer; NXDOMAIN and NODATA are answers. Raises CannotJudge when the
        nameserver gives none (down, silent, SERVFAIL, REFUSED)."""
        import dns.exception
        import dns.resolver

        key = (_norm(name), rdtype)
        if key in self.cache:
            return self.cache[key]
        if self.server_address:
            self.ctx.target.guard(self.server_address[0])
        else:
            self.ctx.target.budget.charge()
        started = time.monotonic()
        status, canonical, problem = "NOERROR", "", ""
        answers: tuple[str, ...] = ()
        try:
            answer = self.resolver.resolve(key[0] + ".", rdtype, raise_on_no_answer=False,
                                           search=False)
            self.responses[key] = answer.response
            if answer.rrset is None:
                status = "NODATA"
            else:
                answers = tuple(_rdata_text(r) for r in answer.rrset)
            if _norm(str(answer.canonical_name)) != key[0]:
                canonical = _norm(str(answer.canonical_name))
        except dns.resolver.NXDOMAIN:
            status = "NXDOMAIN"
        except dns.resolver.LifetimeTimeout:
            status = "timeout"
            problem = (f"the nameserver ({self.server}) did not answer {key[0]} {rdtype} within "
                       f"{self.lifetime:g}s (is it running and reachable?)")
        except dns.resolver.NoNameservers as exc:
            status = "no answer"
            problem = f"the nameserver ({self.server}) gave no usable answer for {key[0]} {rdtype}: " \
                      f"{_no_nameservers(exc)}"
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            status = "error"
            problem = f"the query {key[0]} {rdtype} to {self.server} failed: {exc}"
        seen = Lookup(self.server, key[0], rdtype, status, answers, canonical,
                      (time.monotonic() - started) * 1000)
        self.ctx.add_fact(seen)
        if problem:
            raise CannotJudge(problem)
        self.cache[key] = seen
        return seen

    def txt(self, name: str) -> Lookup:
        return self.query(name, "TXT")


def _no_nameservers(exc: Exception) -> str:
    text = str(exc)
    for code in ("REFUSED", "SERVFAIL", "FORMERR", "NOTIMP"):
        if code in text:
            return f"it answered {code}"
    return text


def _rdata_text(rdata: Any) -> str:
    if rdata.rdtype == 16:  # TXT: the strings joined, as SPF and DMARC read them
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return _norm(rdata.to_text()) if rdata.rdtype == 5 else str(rdata.to_text())


def _ip_of(host: str, port: int) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])
    except OSError as exc:
        raise CannotJudge(f"the nameserver {host} does not resolve: {exc}") from None


def tree(name: str) -> list[str]:
    """name and its parents, stopping above the top-level domain (DMARCbis' tree walk, and
    CAA's climb to the closest ancestor with a record)."""
    labels = _norm(name).split(".")
    return [".".join(labels[i:]) for i in range(max(1, len(labels) - 1))]


# -- dns.resolves -------------------------------------------------------------------------------
def _resolves_subjects(settings: Settings) -> list[str]:
    names = [str(settings.get("dns.domain"))] + [str(n) for n in settings.get("dns.names") or []]
    return list(dict.fromkeys(_norm(n) for n in names if n))


@check("dns.resolves", title="the domain resolves (to the expected targets when configured)",
       severity="critical", needs=("dns.domain",), subjects=_resolves_subjects,
       remediation="Publish A/AAAA records (or a CNAME to a name that has them) for the domain and "
                   "each listed name, pointing at the production endpoints.")
def resolves(ctx: Context) -> None:
    resolver = Resolver(ctx)
    name = _norm(ctx.subject)
    a, aaaa = resolver.query(name, "A"), resolver.query(name, "AAAA")
    addresses = [*a.answers, *aaaa.answers]
    if a.status == "NXDOMAIN":
        fail(ctx, f"{name} does not exist (NXDOMAIN from {resolver.server})")
    if not addresses:
        fail(ctx, f"{name} exists but has no A or AAAA records")
    chain = [c for c in (a.canonical, aaaa.canonical) if c]
    via = f" via CNAME to {chain[0]}" if chain else ""
    expect = [str(e).strip() for e in ctx.settings.get("dns.expect") or []]
    if expect and name == _norm(str(ctx.settings.get("dns.domain"))):
        expected_ips = {str(ipaddress.ip_address(e)) for e in expect if _is_ip(e)}
        expected_names = {_norm(e) for e in expect if not _is_ip(e)}
        seen_ips = {str(ipaddress.ip_address(x)) for x in addresses}
        cname_names = _cname_chain(resolver, name)
        missing = sorted(expected_ips - seen_ips) + sorted(expected_names - set(cname_names))
        unexpected = sorted(seen_ips - expected_ips) if expected_ips else []
        if missing or unexpected:
            parts = ([f"expected {', '.join(missing)} is missing"] if missing else []) + \
                    ([f"{', '.join(unexpected)} is not expected"] if unexpected else [])
            fail(ctx, f"{name} resolves to {', '.join(addresses)}{via}: {'; '.join(parts)}")
        ctx.passed(f"{name} resolves to {', '.join(addresses)}{via}, as expected")
        return
    ctx.passed(f"{name} resolves to {', '.join(addresses)}{via}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _cname_chain(resolver: Resolver, name: str) -> list[str]:
    """The names a CNAME chain from `name` goes through (not `name` itself)."""
    chain: list[str] = []
    current = name
    for _ in range(MAX_CNAME_HOPS):
        seen = resolver.query(current, "CNAME")
        if not seen.answers:
            break
        current = _norm(seen.answers[0])
        if current in chain:
            break
        chain.append(current)
    return chain


# -- dns.caa ------------------------------------------------------------------------------------
@check("dns.caa", title="a CAA record restricts issuers", severity="low", needs=("dns.domain",),
       subjects=lambda s: [_norm(str(s.get("dns.domain")))],
       remediation='Publish CAA records naming the CAs you use, e.g. example.com. CAA 0 issue '
                   '"letsencrypt.org" (and issuewild; iodef alone restricts nothing).')
def caa(ctx: Context) -> None:
    if ctx.settings.get("dns.expect_caa") is False:
        ctx.skip("dns.expect_caa is false")
    resolver = Resolver(ctx)
    for name in tree(ctx.subject):
        seen = resolver.query(name, "CAA")
        if not seen.answers:
            continue
        where = name if name == _norm(ctx.subject) else f"{name} (the closest ancestor with CAA)"
        issuers = [_caa_value(r) for r in seen.answers if _caa_tag(r) in ("issue", "issuewild")]
        if not issuers:
            tags = ", ".join(sorted({_caa_tag(r) for r in seen.answers}))
            fail(ctx, f"the CAA records at {where} have no issue or issuewild tag (only {tags}): "
                      "they restrict no issuer, any CA may issue")
        allowed = sorted({i.split(";")[0].strip() or "no CA (';')" for i in issuers})
        ctx.passed(f"CAA at {where} allows only {', '.join(allowed)} to issue")
        return
    fail(ctx, f"no CAA record at {_norm(ctx.subject)} or its parents: any CA may issue "
              "certificates for it")


def _caa_tag(text: str) -> str:
    parts = text.split(None, 2)
    return parts[1].lower() if len(parts) > 1 else ""


def _caa_value(text: str) -> str:
    parts = text.split(None, 2)
    return parts[2].strip('"') if len(parts) > 2 else ""


# -- dns.spf ------------------------------------------------------------------------------------
def spf_records(resolver: Resolver, domain: str) -> tuple[Lookup, list[str]]:
    seen = resolver.txt(domain)
    return seen, [t for t in seen.answers if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass
class SpfWalk:
    """The recursive evaluation of one SPF record: DNS-querying terms counted through
    include and redirect, and every problem found."""

    resolver: Resolver
    lookups: int = 0
    counted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def record_of(self, domain: str, how: str) -> str | None:
        seen, records = spf_records(self.resolver, domain)
        if len(records) != 1:
            what = "does not exist" if seen.status == "NXDOMAIN" else \
                "has no SPF record" if not records else f"has {len(records)} SPF records"
            self.problem(f"{how} {domain} {what} (a permanent error)")
            return None
        return records[0]

    def walk(self, domain: str, record: str, depth: int, trail: tuple[str, ...]) -> str:
        """The effective 'all' qualifier of `record` ('' when it has none)."""
        terms = record.split()[1:]
        all_qualifier = ""
        redirect = ""
        for term in terms:
            parsed = parse_term(term)
            if isinstance(parsed, str):
                self.problem(f"{domain}: {parsed}")
                continue
            qualifier, name, value = parsed
            if name == "all":
                all_qualifier = all_qualifier or (qualifier or "+")
            if name == "redirect":
                redirect = value
            if name in SPF_COUNTED:
                self.lookups += 1
                self.counted.append(f"{domain}: {term}")
                if self.lookups > SPF_LOOKUP_LIMIT:
                    return all_qualifier
                if name == "include" and "%" not in value:
                    target = _norm(value)
                    if target in trail:
                        self.problem(f"{domain}: include:{target} loops back")
                        continue
                    included = self.record_of(target, f"{domain}: include:")
                    if included is not None:
                        self.walk(target, included, depth + 1, (*trail, target))
        if redirect and not all_qualifier and "%" not in redirect:
            # Counted above; redirect is ignored when the record has 'all'.
            target = _norm(redirect)
            if target in trail:
                self.problem(f"{domain}: redirect={target} loops back")
                return ""
            redirected = self.record_of(target, f"{domain}: redirect=")
            if redirected is not None and self.lookups <= SPF_LOOKUP_LIMIT:
                return self.walk(target, redirected, depth + 1, (*trail, target))
        return all_qualifier


def parse_term(term: str) -> tuple[str, str, str] | str:
    """(qualifier, mechanism or modifier name, value) or the reason the term is invalid."""
    modifier = MODIFIER.match(term)
    if modifier and modifier.group(1).lower() not in SPF_MECHANISMS:
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp") and not value:
            return f"{name}= has no domain"
        return "", name, value
    match = SPF_TERM.match(term)
    if not match or match.group(2).lower() not in SPF_MECHANISMS:
        return f"{term!r} is not an SPF mechanism or modifier"
    qualifier, name, sep, value = match.group(1), match.group(2).lower(), match.group(3) or "", \
        match.group(4) or ""
    if name == "all" and sep:
        return f"{term!r}: 'all' takes no argument"
    if name in ("include", "exists") and (sep != ":" or not value):
        return f"{term!r}: {name} needs ':domain'"
    if name in ("ip4", "ip6"):
        if sep != ":":
            return f"{term!r}: {name} needs ':address'"
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{term!r}: {value!r} is not an {name} address"
        if network.version != int(name[-1]):
            return f"{term!r}: {value!r} is not an {name} address"
    return qualifier, name, value


def _mail_checked(ctx: Context) -> None:
    if ctx.settings.get("dns.mail") is False:
        ctx.skip("dns.mail is false: the domain is not configured as sending mail")


@check("dns.spf", title="one valid SPF record, ending in -all or ~all, within 10 DNS lookups",
       severity="medium", needs=("dns.domain",), subjects=lambda s: [_norm(str(s.get("dns.domain")))],
       remediation="Publish exactly one TXT record 'v=spf1 ... -all' (or ~all) listing your senders; "
                   "keep it under 10 DNS-querying terms (include, a, mx, ptr, exists, redirect) in "
                   "total, flattening includes into ip4/ip6 where needed.")
def spf(ctx: Context) -> None:
    _mail_checked(ctx)
    resolver = Resolver(ctx)
    domain = _norm(ctx.subject)
    seen, records = spf_records(resolver, domain)
    if not records:
        what = "does not exist (NXDOMAIN)" if seen.status == "NXDOMAIN" else "has no SPF record"
        fail(ctx, f"{domain} {what}: anyone can send mail as @{domain}")
    if len(records) > 1:
        fail(ctx, f"{domain} has {len(records)} SPF records (receivers treat that as a permanent "
                  f"error, i.e. no SPF): {' | '.join(records)}")
    walk = SpfWalk(resolver)
    qualifier = walk.walk(domain, records[0], 0, (domain,))
    if walk.lookups > SPF_LOOKUP_LIMIT:
        fail(ctx, f"{domain}'s SPF record needs more than {SPF_LOOKUP_LIMIT} DNS lookups (counted "
                  f"through include/redirect: {', '.join(walk.counted[:SPF_LOOKUP_LIMIT + 1])}): "
                  "receivers give a permanent error")
    if walk.problems:
        fail(ctx, f"{domain}'s SPF record is invalid: {'; '.join(walk.problems)}")
    if qualifier not in ("-", "~"):
        how = f"ends in {qualifier}all ({QUALIFIERS[qualifier]})" if qualifier else \
            "has no 'all' (mail from anywhere else is neutral)"
        fail(ctx, f"{domain}'s SPF record {how}: it does not refuse other senders "
                  f"({records[0]})")
    ctx.passed(f"{domain} has one valid SPF record ending in {qualifier}all, "
               f"{walk.lookups} of {SPF_LOOKUP_LIMIT} DNS lookups: {records[0]}")


# -- dns.dmarc ----------------------------------------------------------------------------------
def dmarc_tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


@check("dns.dmarc", title="DMARC with p=quarantine or reject (at the organisational domain "
                          "when the subdomain has none)",
       severity="medium", needs=("dns.domain",), subjects=lambda s: [_norm(str(s.get("dns.domain")))],
       remediation="Publish _dmarc.<domain> TXT 'v=DMARC1; p=quarantine' (or p=reject) with a rua= "
                   "address for reports, once SPF and DKIM align.")
def dmarc(ctx: Context) -> None:
    _mail_checked(ctx)
    resolver = Resolver(ctx)
    domain = _norm(ctx.subject)
    for name in tree(domain):
        seen = resolver.txt(f"_dmarc.{name}")
        records = [t for t in seen.answers if t.replace(" ", "").lower().startswith("v=dmarc1")]
        if not records:
            continue
        where = f"_dmarc.{name}" + ("" if name == domain else f" (the organisational domain's; "
                                                                f"_dmarc.{domain} has none)")
        if len(records) > 1:
            fail(ctx, f"{where} has {len(records)} DMARC records: receivers apply none")
        tags = dmarc_tags(records[0])
        policy = tags.get("p", "").lower()
        if name != domain and tags.get("sp"):
            policy, which = tags["sp"].lower(), "sp"
        else:
            which = "p"
        if not policy:
            fail(ctx, f"{where} has no p= policy: {records[0]}")
        if policy not in ("quarantine", "reject"):
            fail(ctx, f"{where} has {which}={policy}: spoofed mail is still delivered "
                      f"({records[0]})")
        pct = tags.get("pct", "100")
        share = "" if pct == "100" else f" (pct={pct}: applied to part of the mail only)"
        ctx.passed(f"{where} has {which}={policy}{share}")
        return
    fail(ctx, f"no DMARC record at _dmarc.{domain} nor at its parents: receivers apply no policy "
              "to mail spoofing it")


# -- dns.dangling_cname -------------------------------------------------------------------------
def takeover_service(name: str) -> str:
    name = _norm(name)
    for suffix, service in TAKEOVER_SERVICES.items():
        if name == suffix or name.endswith("." + suffix):
            return service
    return ""


@check("dns.dangling_cname", title="no CNAME points at a name that does not resolve (takeover risk)",
       severity="high", needs=("dns.names",),
       subjects=lambda s: list(dict.fromkeys(_norm(str(n)) for n in s.get("dns.names") or [])),
       remediation="Delete the CNAME (or re-create the resource it points at) before anyone else "
                   "claims that name on the service; remove DNS records when you decommission "
                   "what they point at.")
def dangling_cname(ctx: Context) -> None:
    resolver = Resolver(ctx)
    name = _norm(ctx.subject)
    first = resolver.query(name, "CNAME")
    if first.status == "NXDOMAIN":
        ctx.passed(f"{name} does not exist (NXDOMAIN): no CNAME to dangle")
        return
    if not first.answers:
        ctx.passed(f"{name} is not a CNAME")
        return
    chain = _cname_chain(resolver, name)
    final = chain[-1]
    path = " -> ".join([name, *chain])
    a, aaaa = resolver.query(final, "A"), resolver.query(final, "AAAA")
    if a.answers or aaaa.answers:
        ctx.passed(f"{path} resolves to {', '.join([*a.answers, *aaaa.answers])}")
        return
    service = next((s for s in map(takeover_service, chain) if s), "")
    missing = "does not exist (NXDOMAIN)" if a.status == "NXDOMAIN" else "has no A or AAAA records"
    if service and a.status == "NXDOMAIN":
        fail(ctx, f"{path}: {final} {missing}; it is a name on {service}, so anyone who "
                  f"claims {final} there serves {name}: subdomain takeover risk")
    fail(ctx, f"{path}: {final} {missing}: the CNAME dangles")


# -- dns.dnssec -------------------------------------------------------------------------------
DNSSEC_ALGORITHMS = {5: "RSASHA1", 7: "RSASHA1-NSEC3", 8: "RSASHA256", 10: "RSASHA512",
                     13: "ECDSAP256SHA256", 14: "ECDSAP384SHA384", 15: "ED25519", 16: "ED448"}


def _dnskey_summary(answers: tuple[str, ...]) -> str:
    """'1 KSK, 1 ZSK (ECDSAP256SHA256)' from DNSKEY texts ('257 3 13 <key>')."""
    roles: dict[str, int] = {}
    algorithms: set[str] = set()
    for text in answers:
        parts = text.split()
        if len(parts) < 3 or not parts[0].isdigit() or not parts[2].isdigit():
            continue
        role = "KSK" if int(parts[0]) & 1 else "ZSK"  # the SEP bit marks key-signing keys
        roles[role] = roles.get(role, 0) + 1
        algorithms.add(DNSSEC_ALGORITHMS.get(int(parts[2]), f"algorithm {parts[2]}"))
    counted = ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
    return f"{counted} ({', '.join(sorted(algorithms))})" if counted else f"{len(answers)} keys"


def _signatures(response: Any) -> tuple[int, bool]:
    """(RRSIGs over DNSKEY in the answer section, the AD flag) of a DO-bit response."""
    import dns.flags
    import dns.rdatatype

    if response is None:
        return 0, False
    rrsigs = sum(len(rrset) for rrset in response.answer if rrset.rdtype == dns.rdatatype.RRSIG
                 and rrset.covers == dns.rdatatype.DNSKEY)
    return rrsigs, bool(response.flags & dns.flags.AD)


@check("dns.dnssec", title="the zone is DNSSEC-signed (informational)", severity="low",
       needs=("dns.domain",), subjects=lambda s: [_norm(str(s.get("dns.domain")))],
       remediation="Sign the zone at your DNS provider (most offer one-click DNSSEC) and publish "
                   "the DS record at the registrar; or set dns.expect_dnssec = false if you "
                   "decided against DNSSEC.")
def dnssec(ctx: Context) -> None:
    # Informational unless asked for: unset, an unsigned zone is reported as a skip with the
    # finding (it never gates a run); expect_dnssec = true makes it a failure; false skips.
    expected = ctx.settings.get("dns.expect_dnssec")
    if expected is False:
        ctx.skip("dns.expect_dnssec is false")
    resolver = Resolver(ctx)
    resolver.want_dnssec()
    for name in tree(ctx.subject):
        seen = resolver.query(name, "DNSKEY")
        keys = [a for a in seen.answers if a.split()[:1] and a.split()[0].isdigit()]
        if not keys:
            continue
        where = name if name == _norm(ctx.subject) else f"{name} (the closest signed ancestor)"
        rrsigs, validated = _signatures(resolver.responses.get((name, "DNSKEY")))
        signed = f"signed by {rrsigs} RRSIG{'s' if rrsigs != 1 else ''}" if rrsigs else \
            "no RRSIG came back with it"
        # Only a validating resolver sets AD; without it nothing says the chain of trust holds.
        trust = f"{resolver.server} validated it (AD)" if validated else \
            f"{resolver.server} did not set AD (it does not validate, or cannot build the chain)"
        ctx.passed(f"{where} publishes DNSKEY: {_dnskey_summary(tuple(keys))}; {signed}; {trust}")
        return
    finding = (f"no DNSKEY at {_norm(ctx.subject)} or its parents: the zone is not DNSSEC-signed "
               "(informational: answers for it can be spoofed by an on-path resolver attacker")
    if expected is None:
        ctx.skip(f"{finding}; set dns.expect_dnssec = true to require it)")
    fail(ctx, f"{finding}; dns.expect_dnssec is true)")


# -- the family ---------------------------------------------------------------------------------
def _dns_hosts(settings: Settings) -> Iterable[str]:
    """The configured nameserver: queried by the user's word."""
    server = _nameserver(settings)
    return [server[0]] if server else []


FAMILY = Family(
    name="dns",
    config={"dns": schema.Table({
        "domain": schema.hostname, "expect_caa": schema.boolean, "mail": schema.boolean,
        "expect_dnssec": schema.boolean,
        "nameserver": schema.host_port, "names": schema.list_of(schema.hostname),
        "expect": schema.list_of(schema.string),
    })},
    hosts=_dns_hosts,
)
