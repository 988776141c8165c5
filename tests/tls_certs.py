"""Test certificates, minted here with cryptography: a CA, an intermediate, and leaves with
every defect the tls.* checks must see (expired, expiring, wrong name, self-signed, weak
key, SHA-1 signature...).

cryptography 48 refuses to sign with SHA-1 ("Hash algorithm 'sha1' not supported for
signatures"), so the SHA-1 leaf is the one certificate signed by the `openssl` command
line tool (Debian's `openssl` package) instead, from a CSR and CA minted here. OpenSSL
3.0's `x509 -req -sha1` still signs; loading the result into a server needs @SECLEVEL=0
(at the default level 2, OpenSSL refuses it with "ca md too weak").
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
NOW = dt.datetime.now(dt.timezone.utc)


@functools.cache
def rsa_key(bits: int = 2048, which: int = 0) -> rsa.RSAPrivateKey:
    """An RSA key, generated once per size (and `which`) per test session: RSA keygen is slow."""
    del which
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(curve_name: str = "secp256r1") -> ec.EllipticCurvePrivateKey:
    curve = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}[curve_name]
    return ec.generate_private_key(curve)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-prodready tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Leaf:
    """A server certificate, its key, and the intermediates a correct server sends with it."""

    cert: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    def write(self, directory: Path, stem: str, *, send_chain: bool = True) -> tuple[str, str]:
        """cert file (leaf first, then the chain unless send_chain=False) and key file."""
        directory.mkdir(parents=True, exist_ok=True)
        certfile, keyfile = directory / f"{stem}.pem", directory / f"{stem}.key"
        certfile.write_bytes(pem(self.cert) + (b"".join(pem(c) for c in self.chain) if send_chain else b""))
        keyfile.write_bytes(key_pem(self.key))
        return str(certfile), str(keyfile)


@dataclass
class CA:
    """A certificate authority (a root, or an intermediate when `parent` is set)."""

    common_name: str = "prodready test root CA"
    key: PrivateKey = field(default_factory=lambda: rsa_key(2048, 1))
    parent: CA | None = None
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        issuer = self.parent
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(self.common_name))
                   .issuer_name(_name(issuer.common_name) if issuer else _name(self.common_name))
                   .public_key(self.key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - dt.timedelta(days=30))
                   .not_valid_after(NOW + dt.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else None),
                                  critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                                  critical=False))
        if issuer:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        self.cert = builder.sign(issuer.key if issuer else self.key, hashes.SHA256())

    def intermediate(self, common_name: str = "prodready test intermediate CA") -> CA:
        return CA(common_name, key=rsa_key(2048, 2), parent=self)

    @property
    def chain(self) -> list[x509.Certificate]:
        """What a server sends after a leaf this CA signed: the intermediates, not the root."""
        return [self.cert, *self.parent.chain] if self.parent else []

    def write(self, path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pem(self.cert))
        return str(path)

    def _leaf_builder(self, key: PrivateKey, names: Sequence[str], common_name: str | None,
                      not_before: dt.datetime, not_after: dt.datetime) -> x509.CertificateBuilder:
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(common_name or (names[0] if names else "no-name")))
                   .issuer_name(_name(self.common_name))
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before)
                   .not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(names)),
                                            critical=False)
        return builder

    def issue(self, names: Sequence[str] = ("localhost", "127.0.0.1"), *, days: float = 90,
              age_days: float = 1, key: PrivateKey | None = None, common_name: str | None = None) -> Leaf:
        """A leaf valid from `age_days` ago until `days` from now (negative: already expired)."""
        key = key or rsa_key(2048)
        builder = self._leaf_builder(key, names, common_name, NOW - dt.timedelta(days=age_days),
                                     NOW + dt.timedelta(days=days))
        return Leaf(builder.sign(self.key, hashes.SHA256()), key, self.chain)

    def issue_with_openssl(self, workdir: Path, names: Sequence[str] = ("localhost", "127.0.0.1"), *,
                           digest: str = "sha1", days: int = 90) -> Leaf:
        """A leaf signed by the openssl CLI with `digest` (cryptography will not sign SHA-1)."""
        workdir.mkdir(parents=True, exist_ok=True)
        key = rsa_key(2048)
        csr = (x509.CertificateSigningRequestBuilder().subject_name(_name(names[0]))
               .sign(key, hashes.SHA256()))
        (workdir / "leaf.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        (workdir / "ca.pem").write_bytes(pem(self.cert))
        (workdir / "ca.key").write_bytes(key_pem(self.key))
        sans = ",".join(f"IP:{n}" if isinstance(g, x509.IPAddress) else f"DNS:{n}"
                        for n, g in zip(names, _general_names(names), strict=True))
        (workdir / "ext.cnf").write_text(f"subjectAltName={sans}\nbasicConstraints=critical,CA:FALSE\n"
                                         "extendedKeyUsage=serverAuth\n")
        subprocess.run(["openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                        "-set_serial", "4242", "-days", str(days), f"-{digest}", "-extfile", "ext.cnf",
                        "-out", "leaf.pem"], cwd=workdir, check=True, capture_output=True, timeout=30)
        cert = x509.load_pem_x509_certificate((workdir / "leaf.pem").read_bytes())
        return Leaf(cert, key, self.chain)


def self_signed(names: Sequence[str] = ("localhost", "127.0.0.1"), *, days: float = 90) -> Leaf:
    """A certificate that vouches for itself (subject = issuer, signed with its own key)."""
    key = rsa_key(2048)
    name = _name(names[0])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
            .sign(key, hashes.SHA256()))
    return Leaf(cert, key)
