"""TLS handshakes and certificate facts, for the tls.* checks. No pytest here.

Handshakes use the standard `ssl` module, always non-blocking against one deadline, so a
server that accepts TCP and then says nothing (or drips bytes) costs at most the timeout.
Certificates are parsed with `cryptography`'s x509, imported inside the functions that
need it: loading the plugin stays cheap.

What OpenSSL 3 allows (Debian's build has security level 2 compiled in): a client below
security level 1 is needed to *offer* TLS 1.0/1.1 at all (OpenSSL 3.0 disables them at
level 1 and above, and at level 2 there are no ciphers left for them). So the legacy probe
runs at `@SECLEVEL=0`: when that handshake fails, the refusal is the server's, not ours.
Errors that happen before our ClientHello leaves (no protocols, no ciphers) are told apart:
they mean "cannot judge on this machine", never "refused".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import select
import socket
import ssl
import struct
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

Mode = Literal["modern", "permissive", "verify", "version"]

# Errors classified for the checks:
#   connect          nothing accepted the TCP connection (refused, unreachable, DNS)
#   connect_timeout  the TCP connection was not accepted within the timeout
#   stalled          TCP accepted, but the TLS handshake did not finish within the timeout
#   not_tls          the port answered, but not with TLS (plain HTTP on the TLS port...)
#   alert            the server refused the handshake with an alert (or picked a version
#                    we did not offer)
#   closed           the server closed or reset the connection during the handshake
#   local            our own OpenSSL refused before or while sending (no protocols/ciphers)
#   verify           the handshake worked but the certificate does not verify
#   no_tls           a STARTTLS-style server (PostgreSQL) said it does not offer TLS
#   error            anything else
ErrorKind = Literal["", "connect", "connect_timeout", "stalled", "not_tls", "alert", "closed",
                    "local", "verify", "no_tls", "error"]

# Every cipher OpenSSL has, at security level 0: what a client needs to offer TLS 1.0/1.1.
LEGACY_CIPHERS = "ALL:@SECLEVEL=0"
POSTGRES_PORTS = frozenset({5432})
# PostgreSQL's SSLRequest: length 8, then the magic request code 80877103.
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
VERSION_NAMES: dict[ssl.TLSVersion, str] = {
    ssl.TLSVersion.TLSv1: "TLS 1.0", ssl.TLSVersion.TLSv1_1: "TLS 1.1",
    ssl.TLSVersion.TLSv1_2: "TLS 1.2", ssl.TLSVersion.TLSv1_3: "TLS 1.3"}

# OpenSSL error reasons that mean the peer does not speak TLS at all.
NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST",
                             "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
                             "UNKNOWN_PROTOCOL", "RECORD_TOO_LARGE", "TLSV1_ALERT_RECORD_OVERFLOW"})
# Reasons raised by our own OpenSSL: the handshake never got (or was never let) far enough
# to hear what the server allows.
LOCAL_REASONS = frozenset({"NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE",
                           "NO_SUITABLE_SIGNATURE_ALGORITHM", "LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED",
                           "NO_SHARED_CIPHER_CLIENT"})
# Reasons meaning the server answered, but not with a version we offered.
VERSION_REASONS = frozenset({"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION",
                             "WRONG_SSL_VERSION", "UNKNOWN_SSL_VERSION"})


# -- endpoints ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """Where to connect: a host (name or IP), a port, and the preamble before TLS
    ('postgres': PostgreSQL's SSLRequest; '' for none). parse() picks 'postgres' for 5432."""

    host: str
    port: int
    starttls: str = ""

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """'host:port' or '[::1]:443' (as in tls.hosts)."""
        host, _, port = text.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{text!r} is not 'host:port'")
        number = int(port)
        return cls(host.strip("[]").lower(), number, "postgres" if number in POSTGRES_PORTS else "")

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        default = 443 if parts.scheme == "https" else 80
        return cls((parts.hostname or "").lower(), parts.port or default)

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# -- certificate facts ----------------------------------------------------------------------
@dataclass(frozen=True)
class CertFacts:
    """What a certificate says, as parsed by cryptography's x509."""

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str
    key_bits: int
    signature_algorithm: str
    signature_hash: str | None  # None for Ed25519/Ed448, whose signature has no separate hash
    sha256: str
    curve: str = ""
    embedded_scts: int | None = None  # certificate transparency: SCTs embedded by the CA
    problems: tuple[str, ...] = ()  # extensions that did not parse

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400

    @property
    def key(self) -> str:
        return f"{self.key_type} {self.key_bits} bits" + (f" ({self.curve})" if self.curve else "")

    @classmethod
    def from_der(cls, der: bytes) -> CertFacts:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

        cert = x509.load_der_x509_certificate(der)
        problems: list[str] = []
        sans: list[str] = []
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            sans += [f"DNS:{name}" for name in ext.get_values_for_type(x509.DNSName)]
            sans += [f"IP:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            pass
        except ValueError as exc:
            problems.append(f"subjectAltName does not parse: {exc}")
        scts: int | None = None
        try:
            scts = len(cert.extensions.get_extension_for_class(
                x509.PrecertificateSignedCertificateTimestamps).value)
        except x509.ExtensionNotFound:
            scts = 0
        except ValueError as exc:
            problems.append(f"SCT list does not parse: {exc}")

        key = cert.public_key()
        curve = ""
        if isinstance(key, rsa.RSAPublicKey):
            key_type, bits = "RSA", key.key_size
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key_type, bits, curve = "EC", key.curve.key_size, key.curve.name
        elif isinstance(key, dsa.DSAPublicKey):
            key_type, bits = "DSA", key.key_size
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key_type, bits = "Ed25519", 256
        elif isinstance(key, ed448.Ed448PublicKey):
            key_type, bits = "Ed448", 456
        else:
            key_type, bits = type(key).__name__, 0
        try:
            digest = cert.signature_hash_algorithm
            signature_hash = digest.name if digest is not None else None
        except Exception:  # UnsupportedAlgorithm: a hash cryptography does not know
            signature_hash = "unknown"
        return cls(
            subject=cert.subject.rfc4514_string() or "(empty)",
            issuer=cert.issuer.rfc4514_string() or "(empty)",
            sans=tuple(sans),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key_type=key_type, key_bits=bits, curve=curve,
            signature_algorithm=_signature_name(cert.signature_algorithm_oid),
            signature_hash=signature_hash,
            sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
            embedded_scts=scts,
            problems=tuple(problems),
        )

    def render_lines(self, now: dt.datetime | None = None) -> list[str]:
        days = self.days_left(now)
        left = f"{days:.1f} days left" if days >= 0 else f"EXPIRED {-days:.1f} days ago"
        lines = [f"  subject   {self.subject}",
                 f"  issuer    {self.issuer}" + ("  (self-issued)" if self.self_issued else ""),
                 f"  SANs      {', '.join(self.sans) or '(none)'}",
                 f"  validity  {_iso(self.not_before)} .. {_iso(self.not_after)} ({left})",
                 f"  key       {self.key}",
                 f"  signature {self.signature_algorithm}",
                 f"  sha256    {self.sha256}"]
        if self.embedded_scts is not None:
            lines.append(f"  CT        {self.embedded_scts} embedded SCT(s)")
        lines += [f"  problem   {p}" for p in self.problems]
        return lines

    def to_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        return {
            "subject": self.subject, "issuer": self.issuer, "sans": list(self.sans),
            "not_before": _iso(self.not_before), "not_after": _iso(self.not_after),
            "days_left": round(self.days_left(now), 2), "key_type": self.key_type,
            "key_bits": self.key_bits, "curve": self.curve or None,
            "signature_algorithm": self.signature_algorithm, "signature_hash": self.signature_hash,
            "sha256": self.sha256, "embedded_scts": self.embedded_scts,
            "problems": list(self.problems),
        }


def _signature_name(oid: Any) -> str:
    """A readable name for a signature algorithm OID (cryptography's public OID table)."""
    from cryptography.x509.oid import ObjectIdentifier, SignatureAlgorithmOID

    for name, value in vars(SignatureAlgorithmOID).items():
        if isinstance(value, ObjectIdentifier) and value == oid:
            return name.lower().replace("_with_", "-with-").replace("_", "-")
    return str(oid.dotted_string)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the evidence of one handshake ----------------------------------------------------------
@dataclass(frozen=True)
class Handshake:
    """One TLS handshake and what it showed: TLS evidence, as Exchange is HTTP evidence."""

    endpoint: str
    server_name: str  # the SNI sent ("" for an IP address: no SNI is sent for those)
    offered: str  # what our client offered, in words
    protocol: str = ""
    cipher: str = ""
    cert: CertFacts | None = None
    chain_sent: int | None = None  # certificates the server sent (Python 3.13+ only)
    error: str = ""
    kind: ErrorKind = ""
    verify_code: int | None = None
    elapsed_ms: float = 0.0
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def summary(self) -> str:
        """One line: what was negotiated, or why it failed."""
        if self.ok:
            return f"{self.protocol}, {self.cipher}"
        return self.error

    def render(self, now: dt.datetime | None = None, *, with_cert: bool = True) -> str:
        """A readable transcript of the handshake for failure messages."""
        sni = f"SNI {self.server_name}" if self.server_name else "no SNI (IP address)"
        lines = [f"* TLS {self.endpoint} ({sni}); client offered {self.offered}"]
        if self.ok:
            lines.append(f"* negotiated {self.protocol}, cipher {self.cipher}  ({self.elapsed_ms:.0f} ms)")
        else:
            lines.append(f"* handshake failed: {self.error}  ({self.elapsed_ms:.0f} ms)")
        if self.chain_sent is not None:
            lines.append(f"* the server sent {self.chain_sent} certificate(s)")
        if self.cert is not None and with_cert:
            lines.append("* certificate:")
            lines += self.cert.render_lines(now)
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)

    def to_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """A JSON-ready form for reports."""
        return {
            "tls": {
                "endpoint": self.endpoint, "server_name": self.server_name or None,
                "offered": self.offered, "protocol": self.protocol or None,
                "cipher": self.cipher or None, "error": self.error or None,
                "error_kind": self.kind or None, "verify_code": self.verify_code,
                "chain_sent": self.chain_sent, "elapsed_ms": round(self.elapsed_ms, 1),
                "note": self.note or None,
                "certificate": self.cert.to_dict(now) if self.cert else None,
            }
        }


# -- contexts --------------------------------------------------------------------------------
def client_context(mode: Mode, *, ca_file: str | None = None,
                   version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """The SSLContext of one kind of probe.

    modern      what a current client offers (TLS >= 1.2, default security level), without
                verifying: the certificate is judged separately, so it never hides the rest
    permissive  any version and cipher OpenSSL has (@SECLEVEL=0), no verification: to read
                the certificate of a server that a modern client cannot talk to
    verify      the system trust store (plus ca_file), host name checked by OpenSSL against
                the SANs only (as browsers do; the CN is ignored), default security level
    version     exactly one protocol version, at @SECLEVEL=0 so a refusal is the server's
    """
    if mode == "verify":
        ctx = ssl.create_default_context()
        ctx.hostname_checks_common_name = False
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if mode == "modern":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx
    ctx.set_ciphers(LEGACY_CIPHERS)
    if mode == "permissive":
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        return ctx
    if version is None:
        raise ValueError("mode 'version' needs a version")
    # Python deprecates TLSVersion.TLSv1/TLSv1_1 and warns on use; asking for exactly
    # those versions is the point of this probe, so the warning is silenced here only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def describe_offer(mode: Mode, version: ssl.TLSVersion | None = None) -> str:
    return {
        "modern": "TLS 1.2-1.3, default security level, no verification",
        "permissive": "any version OpenSSL has, @SECLEVEL=0, no verification",
        "verify": "TLS 1.2-1.3, verifying chain and host name",
        "version": f"{VERSION_NAMES.get(version, str(version)) if version else '?'} only, @SECLEVEL=0",
    }[mode]


# -- the handshake ---------------------------------------------------------------------------
def handshake(endpoint: Endpoint, *, mode: Mode, timeout: float, server_name: str | None = None,
              ca_file: str | None = None, version: ssl.TLSVersion | None = None,
              context: ssl.SSLContext | None = None) -> Handshake:
    """Connect, handshake, read the certificate and close. Never raises for the server's
    behaviour: every outcome is a Handshake, with `kind` saying what went wrong."""
    # Python sends no SNI for an IP address, and checks it against the IP SANs instead.
    name = server_name if server_name is not None else endpoint.host
    base = Handshake(endpoint=endpoint.label, server_name="" if _is_ip(name) else name,
                     offered=describe_offer(mode, version))
    start = time.monotonic()

    def done(**changes: Any) -> Handshake:
        return replace(base, elapsed_ms=(time.monotonic() - start) * 1000, **changes)

    try:
        ctx = context or client_context(mode, ca_file=ca_file, version=version)
    except ssl.SSLError as exc:  # e.g. a ca_file that holds no certificate
        return done(error=f"cannot set up the client: {exc}", kind="local")
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except TimeoutError:
        return done(error=f"could not connect within {timeout:g}s (connect timeout)", kind="connect_timeout")
    except ConnectionRefusedError:
        return done(error="connection refused (nothing listens on that port)", kind="connect")
    except socket.gaierror as exc:
        return done(error=f"the host name does not resolve (DNS): {exc}", kind="connect")
    except OSError as exc:
        return done(error=f"could not connect: {exc}", kind="connect")
    deadline = time.monotonic() + timeout
    tls: ssl.SSLSocket | None = None
    try:
        if endpoint.starttls == "postgres":
            refusal = _postgres_ssl_request(sock, deadline)
            if refusal:
                return done(error=refusal, kind="no_tls")
        sock.setblocking(False)
        tls = ctx.wrap_socket(sock, server_hostname=name or None, do_handshake_on_connect=False)
        _handshake_until(tls, deadline)
        der = tls.getpeercert(binary_form=True)
        cipher = tls.cipher()
        chain = getattr(tls, "get_unverified_chain", None)  # public from Python 3.13
        seen = done(protocol=tls.version() or "", cipher=cipher[0] if cipher else "",
                    chain_sent=len(chain() or []) if callable(chain) else None)
        try:
            return replace(seen, cert=CertFacts.from_der(der) if der else None)
        except ValueError as exc:  # a certificate cryptography cannot parse at all
            return replace(seen, error=f"the certificate does not parse: {exc}", kind="error")
    except TimeoutError:
        return done(error=f"the server accepted the TCP connection but the TLS handshake did not "
                          f"finish within {timeout:g}s (it stalled)", kind="stalled")
    except ssl.SSLCertVerificationError as exc:
        message = str(exc.verify_message or exc.reason or exc)
        return done(error=f"certificate verify failed: {message}", kind="verify",
                    verify_code=exc.verify_code)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError,
            ConnectionAbortedError) as exc:
        return done(error=f"the server closed the connection during the TLS handshake ({_short(exc)})",
                    kind="closed")
    except ssl.SSLError as exc:
        return done(**_classify_ssl_error(exc))
    except OSError as exc:
        return done(error=f"connection broken during the TLS handshake: {_short(exc)}", kind="error")
    finally:
        _close(tls or sock)


def _handshake_until(tls: ssl.SSLSocket, deadline: float) -> None:
    """Drive a non-blocking handshake to its end, or raise TimeoutError at the deadline."""
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            readable, writable = [tls], []
        except ssl.SSLWantWriteError:
            readable, writable = [], [tls]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready = select.select(readable, writable, [], remaining)
        if not any(ready):
            raise TimeoutError


def _postgres_ssl_request(sock: socket.socket, deadline: float) -> str:
    """PostgreSQL's SSLRequest: 'S' means go on with TLS. Returns why not, or ''."""
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    try:
        sock.sendall(SSL_REQUEST)
        answer = sock.recv(1)
    except TimeoutError:
        raise TimeoutError from None
    if answer == b"S":
        return ""
    if answer == b"N":
        return "the PostgreSQL server answered 'N' to SSLRequest: it does not offer TLS"
    if not answer:
        return "the server closed the connection on PostgreSQL's SSLRequest"
    return f"unexpected answer {answer!r} to PostgreSQL's SSLRequest (is it PostgreSQL?)"


def _classify_ssl_error(exc: ssl.SSLError) -> dict[str, Any]:
    reason = str(exc.reason or "")
    text = _short(exc)
    if reason in NOT_TLS_REASONS:
        return {"error": f"the port answered, but not with TLS ({text}); plain HTTP on a TLS port?",
                "kind": "not_tls"}
    if reason in LOCAL_REASONS:
        return {"error": f"our OpenSSL ({ssl.OPENSSL_VERSION}) refused to go on: {text}", "kind": "local"}
    if reason in VERSION_REASONS:
        return {"error": f"the server does not accept the version offered ({text})", "kind": "alert"}
    if "ALERT" in reason:
        return {"error": f"the server refused the handshake with an alert ({text})", "kind": "alert"}
    if reason in ("UNEXPECTED_EOF_WHILE_READING", "UNEXPECTED_RECORD") or "EOF" in reason:
        return {"error": f"the server closed the connection during the TLS handshake ({text})",
                "kind": "closed"}
    return {"error": f"TLS handshake failed: {text}", "kind": "error"}


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # "[SSL: X] x (_ssl.c:1006)": the C source location helps nobody.
    if " (_ssl.c:" in text:
        text = text[: text.index(" (_ssl.c:")]
    return text[:200]


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


# -- an HTTP answer over TLS (for https_reachable when the HTTP client distrusts the cert) ----
@dataclass(frozen=True)
class HttpAnswer:
    status: int | None
    reason: str = ""
    error: str = ""
    elapsed_ms: float = 0.0


def http_over_tls(endpoint: Endpoint, path: str, *, timeout: float, user_agent: str) -> HttpAnswer:
    """GET `path` over a modern, non-verifying TLS connection; only the status line is read."""
    import http.client

    start = time.monotonic()
    conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, timeout=timeout,
                                       context=client_context("modern"))
    try:
        conn.request("GET", path or "/", headers={"User-Agent": user_agent, "Connection": "close"})
        response = conn.getresponse()
        return HttpAnswer(response.status, response.reason,
                          elapsed_ms=(time.monotonic() - start) * 1000)
    except (OSError, http.client.HTTPException) as exc:
        return HttpAnswer(None, error=_short(exc), elapsed_ms=(time.monotonic() - start) * 1000)
    finally:
        conn.close()


# -- one handshake per run per question ------------------------------------------------------
@dataclass
class HandshakeCache:
    """Handshakes of one run, keyed by what was asked: probe once, judge many."""

    entries: dict[tuple[Any, ...], Future[Handshake]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[Any, ...], run: Callable[[], Handshake]) -> Handshake:
        with self.lock:
            future = self.entries.get(key)
            owner = future is None
            if future is None:
                future = self.entries[key] = Future()
        if owner:
            try:
                future.set_result(run())
            except BaseException as exc:
                future.set_exception(exc)
        return future.result()


# A run's cache lives as long as its request budget (shared by a Target and its scoped
# views, new for every Target): nothing outlives the run that made it.
_CACHES: weakref.WeakKeyDictionary[object, HandshakeCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(owner: object) -> HandshakeCache:
    with _CACHES_LOCK:
        cache = _CACHES.get(owner)
        if cache is None:
            cache = _CACHES[owner] = HandshakeCache()
        return cache
