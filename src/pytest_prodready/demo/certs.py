"""The demo's throwaway PKI: a CA and a leaf for localhost/127.0.0.1, minted at start-up.

Only `prodready demo` (and the demo's tests) import this module: `cryptography` is a
runtime dependency, but loading the plugin must not pay for it.

Keys are ECDSA P-256: generated in microseconds (RSA 2048 takes a noticeable share of the
demo's start-up on a small machine) and as strong as tls.cert_strength asks.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "Acme Agents (prodready demo)"


@dataclass(frozen=True)
class DemoPki:
    """Where the minted files are, and when the leaf expires."""

    ca_file: Path     # the CA certificate (PEM): what tls.ca_bundle points at
    cert_file: Path   # the leaf certificate the demo serves (PEM)
    key_file: Path    # the leaf's private key (PEM, mode 0600)
    not_after: dt.datetime


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                         crl_sign=ca, encipher_only=False, decipher_only=False)


def mint(directory: Path, *, days_left: float, lifetime_days: int = 90) -> DemoPki:
    """A CA and a leaf for localhost/127.0.0.1 signed by it, written under `directory`.

    The leaf is a `lifetime_days` certificate with `days_left` days to go (a 90-day
    certificate whose renewal job stopped, when days_left is small).
    """
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Acme Agents demo CA (throwaway)")
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=2))  # the demo lasts seconds
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(ca=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=days_left)
    not_before = min(now - dt.timedelta(hours=1), not_after - dt.timedelta(days=lifetime_days))
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (x509.CertificateBuilder()
            .subject_name(_name("localhost")).issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))

    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = (directory / "demo-ca.pem", directory / "localhost.pem",
                                    directory / "localhost.key")
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    # Throwaway, but still a private key: readable by its owner only, from the first byte.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    return DemoPki(ca_file=ca_file, cert_file=cert_file, key_file=key_file, not_after=not_after)
