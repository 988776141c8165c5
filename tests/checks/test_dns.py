"""dns.*: every check fails on the bad zone and passes on the good one, served by a real
dnsmasq on loopback (tests/targets/dnsserver.py, its zone in `zones()`); dnspython asks it
through `dns.nameserver`. Nothing is mocked; no query leaves 127.0.0.1.

Bad input too: a nameserver that is not running (a closed loopback UDP port), NXDOMAIN,
REFUSED (a name outside the server's zones), a silent "nameserver" (a UDP socket that reads
and never answers): each a clear outcome within the query lifetime, never a hang.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_prodready import assertions
from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.dns import FAMILY, SPF_LOOKUP_LIMIT, parse_term, tree
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import CheckFailure, OffAllowlist
from pytest_prodready.target import Target
from tests.targets.dnsserver import SPF_CHAIN, DnsServer, run_dnsmasq

BASE_URL = "https://app.example.test"  # never contacted: these checks speak DNS only


@pytest.fixture(scope="module")
def server() -> Iterator[DnsServer]:
    with run_dnsmasq() as running:
        yield running


def target(nameserver: str, timeout_s: float = 2.0, **dns: Any) -> Target:
    values = {**DEFAULTS, "base_url": BASE_URL, "timeout_s": timeout_s,
              "dns": {"nameserver": nameserver, **dns}}
    return Target(Settings(values=values, secrets={}, sources={}))


def run(server: DnsServer, check_id: str, subject: str, **dns: Any) -> Result:
    dns.setdefault("domain", subject)
    return run_check(check_id, target(server.nameserver, **dns), subject)


def queried(result: Result) -> list[tuple[str, str, str]]:
    return [(f["dns"]["name"], f["dns"]["type"], f["dns"]["status"]) for f in result.evidence()]


# -- dns.resolves -------------------------------------------------------------------------------
def test_resolves_passes_with_addresses_and_expected_targets(server: DnsServer) -> None:
    plain = run(server, "dns.resolves", "good.test")
    assert plain.outcome == "passed", plain.detail
    assert plain.message == "good.test resolves to 127.0.0.10, 2001:db8::10"
    expected = run(server, "dns.resolves", "good.test", expect=["127.0.0.10", "2001:db8::10"])
    assert expected.message == "good.test resolves to 127.0.0.10, 2001:db8::10, as expected"
    via = run(server, "dns.resolves", "cdn.good.test", expect=["app.good.test"])
    assert via.outcome == "passed"
    assert via.message == "cdn.good.test resolves to 127.0.0.11 via CNAME to app.good.test, as expected"


def test_resolves_fails_on_nxdomain_no_address_and_unexpected_address(server: DnsServer) -> None:
    gone = run(server, "dns.resolves", "gone.bad.test")
    assert gone.outcome == "failed"
    assert gone.message == f"gone.bad.test does not exist (NXDOMAIN from {server.nameserver})"
    assert f"* DNS @{server.nameserver} gone.bad.test A: NXDOMAIN" in gone.detail
    empty = run(server, "dns.resolves", "noaddr.bad.test")
    assert empty.message == "noaddr.bad.test exists but has no A or AAAA records"
    wrong = run(server, "dns.resolves", "bad.test", expect=["127.0.0.99"])
    assert wrong.outcome == "failed"
    assert wrong.message == ("bad.test resolves to 127.0.0.20: expected 127.0.0.99 is missing; "
                             "127.0.0.20 is not expected")


def test_resolves_judges_every_listed_name(server: DnsServer) -> None:
    probe = target(server.nameserver, domain="good.test", names=["www.good.test", "gone.bad.test"])
    spec_subjects = [r.subject for r in (run_check("dns.resolves", probe, s)
                                         for s in ("good.test", "www.good.test", "gone.bad.test"))]
    assert spec_subjects == ["good.test", "www.good.test", "gone.bad.test"]
    from pytest_prodready.registry import get_check

    assert get_check("dns.resolves").subjects_for(probe.settings) == [
        "good.test", "www.good.test", "gone.bad.test"]


# -- dns.caa ------------------------------------------------------------------------------------
def test_caa_passes_when_an_issuer_is_named(server: DnsServer) -> None:
    result = run(server, "dns.caa", "good.test")
    assert result.outcome == "passed", result.detail
    assert result.message == "CAA at good.test allows only letsencrypt.org to issue"
    inherited = run(server, "dns.caa", "sub.good.test")
    assert inherited.outcome == "passed"
    assert inherited.message == ("CAA at good.test (the closest ancestor with CAA) allows only "
                                 "letsencrypt.org to issue")
    assert queried(inherited)[:2] == [("sub.good.test", "CAA", "NODATA"),
                                      ("good.test", "CAA", "NOERROR")]


def test_caa_with_only_iodef_fails_and_none_fails(server: DnsServer) -> None:
    iodef = run(server, "dns.caa", "bad.test")
    assert iodef.outcome == "failed"
    assert iodef.message == ("the CAA records at bad.test have no issue or issuewild tag (only "
                             "iodef): they restrict no issuer, any CA may issue")
    assert 'bad.test CAA: NOERROR 0 iodef "mailto:security@bad.test"' in iodef.detail
    none = run(server, "dns.caa", "plain.test")
    assert none.message == "no CAA record at plain.test or its parents: any CA may issue certificates for it"


def test_caa_skipped_when_not_expected(server: DnsServer) -> None:
    result = run(server, "dns.caa", "plain.test", expect_caa=False)
    assert (result.outcome, result.message) == ("skipped", "dns.expect_caa is false")


# -- dns.spf ------------------------------------------------------------------------------------
def test_spf_passes_on_one_valid_record_counting_includes(server: DnsServer) -> None:
    result = run(server, "dns.spf", "good.test")
    assert result.outcome == "passed", result.detail
    assert result.message == ("good.test has one valid SPF record ending in -all, 2 of 10 DNS "
                              "lookups: v=spf1 include:_spf.good.test mx -all")
    redirect = run(server, "dns.spf", "redirect.good.test")
    assert redirect.outcome == "passed"
    assert "ending in -all, 1 of 10 DNS lookups" in redirect.message
    assert run(server, "dns.spf", "soft.good.test").outcome == "passed"


def test_spf_over_ten_lookups_fails_counting_recursively(server: DnsServer) -> None:
    """bad.test includes s1, which includes s2, ... s11: the 11th include is over the limit,
    so s11 is never asked."""
    result = run(server, "dns.spf", "bad.test")
    assert result.outcome == "failed"
    assert result.message.startswith(f"bad.test's SPF record needs more than {SPF_LOOKUP_LIMIT} "
                                     "DNS lookups (counted through include/redirect: bad.test: "
                                     "include:s1.bad.test, s1.bad.test: include:s2.bad.test")
    assert "s10.bad.test: include:s11.bad.test" in result.message
    txt = [name for name, kind, _ in queried(result) if kind == "TXT"]
    assert txt == ["bad.test", *SPF_CHAIN[:10]]


@pytest.mark.parametrize(("domain", "message"), [
    ("two.bad.test", "two.bad.test has 2 SPF records (receivers treat that as a permanent error"),
    ("plus.bad.test", "plus.bad.test's SPF record ends in +all (pass): it does not refuse other "
                      "senders"),
    ("noall.bad.test", "noall.bad.test's SPF record has no 'all'"),
    ("syntax.bad.test", "syntax.bad.test's SPF record is invalid: syntax.bad.test: 'ip4:999.1.1.1': "
                        "'999.1.1.1' is not an ip4 address; syntax.bad.test: 'include': include "
                        "needs ':domain'"),
    ("brokeninc.bad.test", "brokeninc.bad.test's SPF record is invalid: brokeninc.bad.test: "
                           "include: nothere.bad.test does not exist"),
    ("plain.test", "plain.test has no SPF record: anyone can send mail as @plain.test"),
    ("gone.bad.test", "gone.bad.test does not exist (NXDOMAIN)"),
])
def test_spf_fails_on_each_defect(server: DnsServer, domain: str, message: str) -> None:
    result = run(server, "dns.spf", domain)
    assert result.outcome == "failed"
    assert result.message.startswith(message), result.message


def test_spf_terms() -> None:
    assert parse_term("-all") == ("-", "all", "")
    assert parse_term("ip6:2001:db8::/32") == ("", "ip6", "2001:db8::/32")
    assert parse_term("a:mail.example.com/24") == ("", "a", "mail.example.com/24")
    assert parse_term("redirect=_spf.example.com") == ("", "redirect", "_spf.example.com")
    assert parse_term("ip4:2001:db8::1") == "'ip4:2001:db8::1': '2001:db8::1' is not an ip4 address"
    assert parse_term("allow") == "'allow' is not an SPF mechanism or modifier"


# -- dns.dmarc ----------------------------------------------------------------------------------
def test_dmarc_passes_on_reject_and_at_the_organisational_domain(server: DnsServer) -> None:
    result = run(server, "dns.dmarc", "good.test")
    assert (result.outcome, result.message) == ("passed", "_dmarc.good.test has p=reject")
    sub = run(server, "dns.dmarc", "sub.good.test")
    assert sub.outcome == "passed"
    assert sub.message == ("_dmarc.good.test (the organisational domain's; _dmarc.sub.good.test "
                           "has none) has p=reject")


def test_dmarc_fails_on_p_none_and_on_none(server: DnsServer) -> None:
    none_policy = run(server, "dns.dmarc", "bad.test")
    assert none_policy.outcome == "failed"
    assert none_policy.message.startswith("_dmarc.bad.test has p=none: spoofed mail is still delivered")
    missing = run(server, "dns.dmarc", "plain.test")
    assert missing.message.startswith("no DMARC record at _dmarc.plain.test nor at its parents")


def test_mail_checks_skipped_when_the_domain_sends_no_mail(server: DnsServer) -> None:
    for check_id in ("dns.spf", "dns.dmarc"):
        result = run(server, check_id, "plain.test", mail=False)
        assert result.outcome == "skipped"
        assert "dns.mail is false" in result.message


# -- dns.dangling_cname -------------------------------------------------------------------------
def test_resolving_cnames_pass(server: DnsServer) -> None:
    result = run(server, "dns.dangling_cname", "cdn.good.test", names=["cdn.good.test"])
    assert result.outcome == "passed", result.detail
    assert result.message == "cdn.good.test -> www.good.test -> app.good.test resolves to 127.0.0.11"
    assert run(server, "dns.dangling_cname", "good.test", names=["good.test"]).message == \
        "good.test is not a CNAME"


def test_dangling_cname_into_a_takeover_prone_service_names_it(server: DnsServer) -> None:
    result = run(server, "dns.dangling_cname", "old.bad.test", names=["old.bad.test"])
    assert result.outcome == "failed"
    assert result.message == ("old.bad.test -> ghost-shop.azurewebsites.net: "
                              "ghost-shop.azurewebsites.net does not exist (NXDOMAIN); it is a name "
                              "on Azure App Service, so anyone who claims "
                              "ghost-shop.azurewebsites.net there serves old.bad.test: subdomain "
                              "takeover risk")


def test_dangling_cname_to_a_deleted_name_fails(server: DnsServer) -> None:
    result = run(server, "dns.dangling_cname", "stale.bad.test", names=["stale.bad.test"])
    assert result.outcome == "failed"
    assert result.message == ("stale.bad.test -> deleted.bad.test: deleted.bad.test does not exist "
                              "(NXDOMAIN): the CNAME dangles")


# -- bad input ----------------------------------------------------------------------------------
def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_nameserver() -> Iterator[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def garbage_nameserver() -> Iterator[str]:
    """A UDP server that answers every query with bytes that are not DNS."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                _, peer = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            sock.sendto(b"HTTP/1.1 400 Bad Request\r\n\r\n", peer)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    sock.close()


@pytest.mark.parametrize("which", ["not running", "silent", "garbage"])
def test_unreachable_silent_or_garbage_nameserver_cannot_judge_within_the_lifetime(
        which: str, request: pytest.FixtureRequest) -> None:
    nameserver = (f"127.0.0.1:{_closed_udp_port()}" if which == "not running"
                  else request.getfixturevalue(f"{which}_nameserver"))
    started = time.monotonic()
    result = run_check("dns.resolves", target(nameserver, timeout_s=1.0, domain="good.test"),
                       "good.test")
    assert time.monotonic() - started < 6  # one 1 s lifetime (A), never a hang; slack for a busy machine
    assert result.outcome == "error"
    assert result.message == (f"cannot judge: the nameserver ({nameserver}) did not answer good.test "
                              "A within 1s (is it running and reachable?)")


def test_refused_is_cannot_judge(server: DnsServer) -> None:
    result = run(server, "dns.resolves", "example.com")
    assert result.outcome == "error"
    assert result.message == (f"cannot judge: the nameserver ({server.nameserver}) gave no usable "
                              "answer for example.com A: it answered REFUSED")


# -- allowlist, budget, helpers -----------------------------------------------------------------
def test_the_nameserver_is_allowlisted_and_every_query_charged(server: DnsServer) -> None:
    probe = target(server.nameserver, domain="good.test")
    assert list(FAMILY.hosts(probe.settings)) == ["127.0.0.1"]
    assert "127.0.0.1" in probe.allowed_hosts
    run_check("dns.resolves", probe, "good.test")
    assert probe.budget.spent == 2  # A and AAAA


def test_a_nameserver_off_the_allowlist_is_refused(server: DnsServer) -> None:
    """The hosts hook is what lets the nameserver in: without it, guard refuses the query."""
    probe = target(server.nameserver, domain="good.test")
    probe._hosts = (probe.settings, frozenset({"app.example.test"}))
    result = run_check("dns.resolves", probe, "good.test")
    assert result.outcome == "error"
    assert "refused to connect to '127.0.0.1'" in result.message
    with pytest.raises(OffAllowlist):
        probe.guard("127.0.0.1")


def test_tree_walk_stops_above_the_tld() -> None:
    assert tree("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com"]
    assert tree("example.com.") == ["example.com"]


def test_assertion_helpers(server: DnsServer) -> None:
    good = target(server.nameserver)
    assertions.assert_dns_records(good, "good.test")
    assertions.assert_no_dangling_cnames(good, "www.good.test", "cdn.good.test")
    with pytest.raises(CheckFailure, match="restrict no issuer"):
        assertions.assert_dns_records(good, "bad.test")
    with pytest.raises(CheckFailure, match="subdomain takeover risk"):
        assertions.assert_no_dangling_cnames(good, "www.good.test", "old.bad.test")


# -- dns.dnssec (a second dnsmasq serving a real DNSKEY: tests/targets/dnssecserver.py) --------
@pytest.fixture(scope="module")
def signed_server() -> Iterator[DnsServer]:
    from tests.targets.dnssecserver import run_dnssec_dnsmasq

    with run_dnssec_dnsmasq() as running:
        yield running


def test_dnssec_passes_when_the_zone_publishes_dnskey(signed_server: DnsServer) -> None:
    result = run(signed_server, "dns.dnssec", "signed.test")
    assert result.outcome == "passed", result.detail
    # dnsmasq serves local data without attaching RRSIGs and validates nothing (no AD):
    # the check says so rather than claiming a validated chain.
    assert result.message == (f"signed.test publishes DNSKEY: 1 KSK (ECDSAP256SHA256); no RRSIG "
                              f"came back with it; {signed_server.nameserver} did not set AD (it "
                              "does not validate, or cannot build the chain)")
    inside = run(signed_server, "dns.dnssec", "sub.signed.test")
    assert inside.outcome == "passed"
    assert inside.message.startswith("signed.test (the closest signed ancestor) publishes DNSKEY")
    assert queried(inside)[:2] == [("sub.signed.test", "DNSKEY", "NODATA"),
                                   ("signed.test", "DNSKEY", "NOERROR")]


def test_dnssec_fails_informationally_on_an_unsigned_zone(signed_server: DnsServer) -> None:
    """Informational by default: an unsigned zone is a skip carrying the finding (it never
    gates a run); with dns.expect_dnssec = true it fails; with false the check is off."""
    reported = run(signed_server, "dns.dnssec", "unsigned.test")
    assert reported.outcome == "skipped"
    assert reported.message.startswith("no DNSKEY at unsigned.test or its parents: the zone is not "
                                       "DNSSEC-signed (informational")
    assert reported.message.endswith("set dns.expect_dnssec = true to require it)")
    result = run(signed_server, "dns.dnssec", "unsigned.test", expect_dnssec=True)
    assert result.outcome == "failed"
    assert result.message.startswith("no DNSKEY at unsigned.test or its parents: the zone is not "
                                     "DNSSEC-signed (informational")
    from pytest_prodready.registry import get_check

    assert get_check("dns.dnssec").severity == "low"
    skipped = run(signed_server, "dns.dnssec", "unsigned.test", expect_dnssec=False)
    assert (skipped.outcome, skipped.message) == ("skipped", "dns.expect_dnssec is false")


def test_dnssec_reads_rrsigs_and_ad_from_the_response() -> None:
    """The flags and signatures a validating resolver returns (its answer built by dnspython:
    no validating resolver is installed here)."""
    import dns.flags
    import dns.message

    from pytest_prodready.checks.dns import _signatures
    from tests.targets.dnssecserver import signed_records

    records = signed_records()
    query = dns.message.make_query("signed.test.", "DNSKEY", want_dnssec=True)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AD
    for rdtype, hexes in records.items():
        import dns.rdata

        for data in hexes:
            rdata = dns.rdata.from_wire("IN", rdtype, bytes.fromhex(data), 0, len(data) // 2)
            covers = rdata.covers() if rdtype == 46 else dns.rdatatype.NONE
            response.find_rrset(response.answer, dns.name.from_text("signed.test."), 1, rdtype,
                                covers, create=True).add(rdata, 3600)
    assert _signatures(response) == (1, True)
    assert _signatures(None) == (0, False)


def test_dnssec_unreachable_nameserver_cannot_judge() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = run_check("dns.dnssec", target(f"127.0.0.1:{port}", 1.0, domain="signed.test"),
                       "signed.test")
    assert result.outcome == "error" and time.monotonic() - started < 5
    assert "DNSKEY" in result.message


def test_dnssec_helper(signed_server: DnsServer) -> None:
    assertions.assert_dnssec_signed(target(signed_server.nameserver), "signed.test")
    with pytest.raises(CheckFailure, match="not DNSSEC-signed"):
        assertions.assert_dnssec_signed(target(signed_server.nameserver), "unsigned.test")
