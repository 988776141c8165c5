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
import time
from collections.abc import Iterator

from tests.targets.dnsserver import DnsServer, Zone, run_dnsmasq


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


@contextlib.contextmanager
def run_dnssec_dnsmasq() -> Iterator[DnsServer]:
    zone, extra = dnssec_zone()
    with run_dnsmasq(zone, tuple(extra), ready_name="signed.test.") as server:
        yield server
