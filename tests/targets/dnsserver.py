"""A real DNS server on loopback for the dns.* tests: dnsmasq (Debian's dnsmasq-base) with
its own config, on an ephemeral 127.0.0.1 port, stopped by its PID.

dnsmasq serves what its options say: A/AAAA by `host-record`, CNAMEs by `cname` (whose
target must be a name it knows: the resolvable ones), TXT by `txt-record`, and any other
record by `dns-rr` with raw RDATA in hex: CAA (type 257) and the dangling CNAMEs (type 5),
whose targets it must not know. `local=/test/` and `local=/azurewebsites.net/` make it
answer NXDOMAIN for every other name in those domains and forward nothing: there are no
upstream servers (`no-resolv`), so no query ever leaves the machine; other names are
REFUSED.

ZONES below is the zone the tests judge: good.test is correct in every respect, bad.test
and its neighbours each carry one defect.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.tls_servers import free_ports

# The SPF chain of bad.test: 11 includes deep (each include is one lookup).
SPF_CHAIN = [f"s{i}.bad.test" for i in range(1, 12)]


@dataclass
class Zone:
    hosts: dict[str, list[str]] = field(default_factory=dict)      # name -> addresses
    cnames: dict[str, str] = field(default_factory=dict)           # name -> known target
    raw_cnames: dict[str, str] = field(default_factory=dict)       # name -> unknown target
    txt: dict[str, list[str]] = field(default_factory=dict)        # name -> records
    caa: dict[str, list[str]] = field(default_factory=dict)        # name -> 'flags tag "value"'


def zones() -> Zone:
    zone = Zone()
    # good.test: resolves (v4 and v6), CAA naming a CA (plus iodef), SPF via one include and
    # -all, DMARC p=reject; www is a CNAME that resolves; sub.good.test relies on the
    # organisational domain's DMARC and CAA.
    zone.hosts.update({"good.test": ["127.0.0.10", "2001:db8::10"], "app.good.test": ["127.0.0.11"],
                       "sub.good.test": ["127.0.0.12"], "bad.test": ["127.0.0.20"],
                       "plain.test": ["127.0.0.30"]})
    zone.cnames.update({"www.good.test": "app.good.test", "cdn.good.test": "www.good.test"})
    zone.txt.update({
        "good.test": ["v=spf1 include:_spf.good.test mx -all", "google-site-verification=abc123"],
        "_spf.good.test": ["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"],
        "_dmarc.good.test": ["v=DMARC1; p=reject; rua=mailto:dmarc@good.test"],
        "redirect.good.test": ["v=spf1 redirect=_spf.good.test"],
        "soft.good.test": ["v=spf1 a ~all"],
        "noaddr.bad.test": ["just text"],
    })
    zone.caa.update({"good.test": ['0 issue "letsencrypt.org"', '0 iodef "mailto:security@good.test"'],
                     "bad.test": ['0 iodef "mailto:security@bad.test"']})
    # bad.test: CAA with only iodef, SPF over 10 lookups, DMARC p=none, dangling CNAMEs (one
    # into Azure App Service, one to a deleted name of its own).
    zone.txt["bad.test"] = [f"v=spf1 include:{SPF_CHAIN[0]} ~all"]
    for here, nxt in itertools.pairwise(SPF_CHAIN):
        zone.txt[here] = [f"v=spf1 include:{nxt} -all"]
    zone.txt[SPF_CHAIN[-1]] = ["v=spf1 ip4:192.0.2.1 -all"]
    zone.txt["_dmarc.bad.test"] = ["v=DMARC1; p=none; rua=mailto:dmarc@bad.test"]
    zone.raw_cnames.update({"old.bad.test": "ghost-shop.azurewebsites.net",
                            "stale.bad.test": "deleted.bad.test"})
    # One defect each.
    zone.txt.update({
        "two.bad.test": ["v=spf1 ip4:192.0.2.1 -all", "v=spf1 ip4:192.0.2.2 -all"],
        "plus.bad.test": ["v=spf1 ip4:192.0.2.1 +all"],
        "noall.bad.test": ["v=spf1 ip4:192.0.2.1"],
        "syntax.bad.test": ["v=spf1 ip4:999.1.1.1 include -all"],
        "brokeninc.bad.test": ["v=spf1 include:nothere.bad.test -all"],
    })
    return zone


def _rdata_hex(rdtype: str, text: str) -> str:
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)
    return (rdata.to_wire() or b"").hex()


def dnsmasq_config(zone: Zone, port: int) -> str:
    lines = ["no-resolv", "no-hosts", "no-poll", "bind-interfaces", "listen-address=127.0.0.1",
             f"port={port}", "local=/test/", "local=/azurewebsites.net/", "cache-size=0",
             "no-negcache"]
    for name, addresses in zone.hosts.items():
        lines.append(f"host-record={name},{','.join(addresses)}")
    for name, target in zone.cnames.items():
        lines.append(f"cname={name},{target}")
    for name, target in zone.raw_cnames.items():
        lines.append(f"dns-rr={name},5,{_rdata_hex('CNAME', target + '.')}")
    for name, records in zone.txt.items():
        for record in records:
            lines.append(f'txt-record={name},"{record}"')
    for name, records in zone.caa.items():
        for record in records:
            lines.append(f"dns-rr={name},257,{_rdata_hex('CAA', record)}")
    return "\n".join(lines) + "\n"


def dnsmasq_binary() -> str:
    found = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq")
                                        else None)
    if not found:
        raise RuntimeError("dnsmasq is not installed: run scripts/install-test-deps.sh")
    return found


@dataclass
class DnsServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"


def _answers(port: int, name: str = "good.test.") -> bool:
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], port, 0.3
    try:
        resolver.resolve(name, "A")
    except dns.exception.DNSException:
        return False
    return True


@contextlib.contextmanager
def run_dnsmasq(zone: Zone | None = None, extra: tuple[str, ...] = (),
                ready_name: str = "good.test.") -> Iterator[DnsServer]:
    """dnsmasq serving `zone` (plus raw config lines `extra`), ready once `ready_name` resolves."""
    port = free_ports(1)[0]
    with tempfile.TemporaryDirectory(prefix="prodready-dns-") as workdir:
        conf = os.path.join(workdir, "dnsmasq.conf")
        with open(conf, "w") as handle:
            handle.write(dnsmasq_config(zone or zones(), port) + "".join(f"{line}\n" for line in extra))
        os.chmod(workdir, 0o755)
        os.chmod(conf, 0o644)
        process = subprocess.Popen([dnsmasq_binary(), f"--conf-file={conf}", "--keep-in-foreground",
                                    "--pid-file=", "--log-facility=-"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while not _answers(port, ready_name):
                if process.poll() is not None:
                    error = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"dnsmasq exited with {process.returncode}: {error}")
                if time.monotonic() > deadline:
                    raise RuntimeError("dnsmasq does not answer after 10s")
                time.sleep(0.05)
            yield DnsServer(port, process)
        finally:
            process.terminate()  # by its PID (SIGTERM), then reaped
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
