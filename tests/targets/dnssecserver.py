"""dnsmasq serving a DNSSEC-signed zone and an unsigned one, for dns.dnssec.

signed.test publishes a real DNSKEY (a fresh ECDSA P-256 key made with `cryptography`, as
dnspython writes it) and an RRSIG over that DNSKEY set (signed with dnspython's
dns.dnssec.sign), both served verbatim by dnsmasq's `dns-rr=name,type,hex`; sub.signed.test
is a name inside it with no keys of its own; unsigned.test has addresses and nothing else.
dnsmasq is authoritative for local data and validates nothing, so it never sets AD: the
check's "the resolver did not set AD" branch is what these tests see.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator

from tests.targets.dnsserver import DnsServer, Zone, dnsmasq_binary, dnsmasq_config
from tests.tls_servers import free_ports


def signed_records(zone: str = "signed.test.") -> dict[int, list[str]]:
    """{rdtype number: [rdata wire hex]} for the zone apex: its DNSKEY and the RRSIG over it."""
    import dns.dnssec
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                    flags=257)  # a KSK (SEP bit), signing its own set
    owner = dns.name.from_text(zone)
    keys = dns.rrset.from_rdata(owner, 3600, dnskey)
    now = int(time.time())
    rrsig = dns.dnssec.sign(keys, key, owner, dnskey, inception=now - 3600,
                            expiration=now + 86400)
    return {int(dns.rdatatype.DNSKEY): [dnskey.to_wire().hex()],
            int(dns.rdatatype.RRSIG): [rrsig.to_wire().hex()]}


def dnssec_zone() -> tuple[Zone, list[str]]:
    zone = Zone(hosts={"signed.test": ["127.0.0.40"], "sub.signed.test": ["127.0.0.41"],
                       "unsigned.test": ["127.0.0.50"]})
    extra = [f"dns-rr=signed.test,{rdtype},{data}"
             for rdtype, records in signed_records().items() for data in records]
    return zone, extra


def _answers(port: int) -> bool:
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], port, 0.3
    try:
        resolver.resolve("signed.test.", "A")
    except dns.exception.DNSException:
        return False
    return True


@contextlib.contextmanager
def run_dnssec_dnsmasq() -> Iterator[DnsServer]:
    port = free_ports(1)[0]
    zone, extra = dnssec_zone()
    with tempfile.TemporaryDirectory(prefix="prodready-dnssec-") as workdir:
        conf = os.path.join(workdir, "dnsmasq.conf")
        with open(conf, "w") as handle:
            handle.write(dnsmasq_config(zone, port) + "\n".join(extra) + "\n")
        os.chmod(workdir, 0o755)
        os.chmod(conf, 0o644)
        process = subprocess.Popen([dnsmasq_binary(), f"--conf-file={conf}", "--keep-in-foreground",
                                    "--pid-file=", "--log-facility=-"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while not _answers(port):
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
