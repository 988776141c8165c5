"""network.*: database and cache ports are closed, Redis asks for a password, PostgreSQL
refuses plain-text connections.

No client library: each probe speaks a few bytes of the wire protocol itself (a TCP
connect; Redis's RESP `PING`; PostgreSQL's SSLRequest and a StartupMessage) and never
authenticates, writes or runs a query. Every connection goes through `Target.guard`
(allowlist, then the run's budget) before it is opened, has a short timeout, and reads a
bounded number of bytes: a host that says nothing or answers garbage costs one timeout
and gives "cannot judge", never a hang nor a verdict.

The subjects: `network.host` for the ports; each `network.redis` and `network.postgres`
'host:port' entry for the protocol checks. All of those hosts join the allowlist.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, cast

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.exceptions import CannotJudge, CheckFailure
from pytest_prodready.family import Family

# Database, cache and search ports that should never face the internet (PRODUCT.md's list).
DEFAULT_CLOSED_PORTS = (5432, 6379, 3306, 27017, 9200, 11211)
PORT_NAMES = {5432: "PostgreSQL", 6379: "Redis", 3306: "MySQL", 27017: "MongoDB",
              9200: "Elasticsearch", 11211: "memcached", 5672: "RabbitMQ", 9042: "Cassandra",
              2379: "etcd", 1433: "SQL Server", 1521: "Oracle", 9000: "ClickHouse"}
CONNECT_TIMEOUT_S = 2.0  # a port scan: an open port accepts within a round trip
WIRE_TIMEOUT_S = 5.0     # a protocol answer
MAX_REPLY_BYTES = 4096
MAX_PARALLEL = 16
# PostgreSQL: SSLRequest (length 8, code 80877103) and protocol 3.0 for the StartupMessage.
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
PROTOCOL_3 = 196608
PG_USER = "prodready"
PG_AUTH = {0: "no password at all (trust)", 2: "Kerberos", 3: "a clear-text password",
           5: "an MD5 password", 7: "GSSAPI", 9: "SSPI", 10: "SCRAM (SASL)"}
RESP_PING = b"*1\r\n$4\r\nPING\r\n"

PortState = Literal["open", "refused", "no answer", "unreachable", "unresolved"]


# -- evidence -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PortProbe:
    """One TCP connect: where, what happened, how long it took."""

    host: str
    port: int
    state: PortState
    detail: str = ""
    elapsed_ms: float = 0.0

    @property
    def label(self) -> str:
        name = PORT_NAMES.get(self.port)
        return f"{self.port} ({name})" if name else str(self.port)

    def to_dict(self) -> dict[str, Any]:
        return {"tcp": {"host": self.host, "port": self.port, "state": self.state,
                        "detail": self.detail or None, "elapsed_ms": round(self.elapsed_ms, 1)}}

    def render(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"* TCP {_label(self.host, self.port)}: {self.state}{extra}  ({self.elapsed_ms:.0f} ms)"


@dataclass(frozen=True)
class WireExchange:
    """A few bytes sent to a database or cache and what came back (masked, cut)."""

    protocol: str
    endpoint: str
    sent: str
    received: str
    error: str = ""
    elapsed_ms: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"wire": {"protocol": self.protocol, "endpoint": self.endpoint, "sent": self.sent,
                         "received": self.received or None, "error": self.error or None,
                         "elapsed_ms": round(self.elapsed_ms, 1), "notes": list(self.notes)}}

    def render(self) -> str:
        lines = [f"* {self.protocol} {self.endpoint}: sent {self.sent}"]
        if self.received:
            lines.append(f"* answered {self.received}")
        if self.error:
            lines.append(f"* {self.error}")
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"  ({self.elapsed_ms:.0f} ms)")
        return "\n".join(lines)


def _label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str) -> tuple[str, int]:
    host, _, port = str(text).strip().rpartition(":")
    return host.strip("[]").lower(), int(port)


def _shown(data: bytes, limit: int = 200) -> str:
    """Bytes as a readable, bounded literal ('+PONG\\r\\n')."""
    text = repr(data[:limit])[2:-1]
    return f"'{text}'" + (f" (+{len(data) - limit} bytes)" if len(data) > limit else "")


def fail(ctx: Context, message: str) -> NoReturn:
    """The failure, with the wire evidence in the detail (facts are masked when made)."""
    masker = ctx.target.masker
    lines = [f"[{ctx.spec.id}] {masker.text(message)}", f"Fix: {ctx.spec.remediation}"]
    lines += ["", *(masker.text(fact.render()) for fact in ctx.facts)]
    raise CheckFailure(message, (), remediation=ctx.spec.remediation, check_id=ctx.spec.id,
                       rendered="\n".join(lines))


# -- sockets ------------------------------------------------------------------------------------
class WireError(Exception):
    """A connection that gave no judgeable answer; kind says which way it went."""

    def __init__(self, kind: PortState | Literal["closed", "timeout"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connected TCP socket, or WireError(refused / no answer / unreachable / unresolved)."""
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise WireError("unresolved", f"{host} does not resolve ({exc.strerror})") from None
    except ConnectionRefusedError:
        raise WireError("refused", "connection refused") from None
    except TimeoutError:
        raise WireError("no answer", f"no answer within {timeout:g}s (filtered?)") from None
    except OSError as exc:
        raise WireError("unreachable", exc.strerror or type(exc).__name__) from None


def read_until(sock: socket.socket, deadline: float, done: Any) -> bytes:
    """Bytes until done(data) or the peer closes, bounded by MAX_REPLY_BYTES and `deadline`."""
    data = b""
    while len(data) < MAX_REPLY_BYTES and not done(data):
        left = deadline - time.monotonic()
        if left <= 0:
            if data:
                return data
            raise WireError("timeout", "no answer within the timeout")
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            continue
        try:
            chunk = sock.recv(MAX_REPLY_BYTES - len(data))
        except ConnectionResetError:
            if data:
                return data
            raise WireError("closed", "the connection was reset without an answer") from None
        if not chunk:
            if data:
                return data
            raise WireError("closed", "the connection was closed without an answer")
        data += chunk
    return data


def _guarded(ctx: Context, subject: str) -> tuple[str, int]:
    host, port = split_host_port(subject)
    ctx.target.guard(host)
    return host, port


def _timeout(ctx: Context, cap: float) -> float:
    return max(0.1, min(float(ctx.target.timeout), cap))


# -- network.ports_closed -------------------------------------------------------------------------
def closed_ports(settings: Settings) -> list[int]:
    return [int(p) for p in settings.get("network.closed_ports") or DEFAULT_CLOSED_PORTS]


def probe_port(host: str, port: int, timeout: float) -> PortProbe:
    started = time.monotonic()
    try:
        sock = connect(host, port, timeout)
    except WireError as exc:
        state = cast(PortState, "no answer" if exc.kind in ("closed", "timeout") else exc.kind)
        return PortProbe(host, port, state, str(exc) if state != "refused" else "",
                         (time.monotonic() - started) * 1000)
    peer = sock.getpeername()[0]
    sock.close()
    return PortProbe(host, port, "open", f"accepted (peer {peer})", (time.monotonic() - started) * 1000)


@check("network.ports_closed", title="database and cache ports are not reachable",
       severity="critical", needs=("network.host",),
       subjects=lambda s: [str(s.get("network.host"))],
       remediation="Close database, cache and search ports to the internet: bind them to a private "
                   "interface or localhost, and allow them only from the application's network "
                   "(security group / firewall).")
def ports_closed(ctx: Context) -> None:
    host = ctx.subject.strip("[]").lower()
    ports = list(dict.fromkeys(closed_ports(ctx.settings)))
    for _ in ports:  # every connection is allow-listed and charged before any is opened
        ctx.target.guard(host)
    timeout = _timeout(ctx, CONNECT_TIMEOUT_S)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(ports))) as pool:
        seen = list(pool.map(lambda port: probe_port(host, port, timeout), ports))
    for probe in seen:
        ctx.add_fact(probe)
    unresolved = [p for p in seen if p.state == "unresolved"]
    if unresolved:
        raise CannotJudge(unresolved[0].detail)
    if all(p.state == "unreachable" for p in seen):
        raise CannotJudge(f"{host} is unreachable from here ({seen[0].detail}): no port could be "
                          "tried, so none is shown closed")
    open_ = [p for p in seen if p.state == "open"]
    if open_:
        fail(ctx, f"{len(open_)} of {len(ports)} ports on {host} accept TCP connections: "
                  f"{', '.join(p.label for p in open_)}")
    refused = sum(p.state == "refused" for p in seen)
    silent = len(seen) - refused
    how = f"{refused} refused" + (f", {silent} gave no answer within {timeout:g}s or were "
                                  "unreachable" if silent else "")
    ctx.passed(f"none of {len(ports)} ports on {host} accepts a TCP connection ({how})")


# -- network.redis_requires_auth ----------------------------------------------------------------
def redis_ping(host: str, port: int, timeout: float) -> tuple[bytes, float]:
    """The first line Redis answers to an anonymous PING (or says unasked, like DENIED)."""
    started = time.monotonic()
    deadline = started + timeout
    sock = connect(host, port, timeout)
    try:
        sock.settimeout(timeout)
        # Protected mode and ACL errors arrive unasked, right after the accept: listen briefly
        # first, so the PING does not hit a socket the server has already closed.
        if not select.select([sock], [], [], min(0.2, timeout))[0]:
            sock.sendall(RESP_PING)
        reply = read_until(sock, deadline, lambda d: b"\r\n" in d)
        return reply, (time.monotonic() - started) * 1000
    except OSError as exc:
        raise WireError("closed", f"the connection failed: {exc.strerror or exc}") from None
    finally:
        sock.close()


@check("network.redis_requires_auth", title="an unauthenticated Redis command gets NOAUTH",
       severity="critical", needs=("network.redis",),
       subjects=lambda s: [str(e) for e in s.get("network.redis") or []],
       remediation="Require a password (requirepass, or ACL users with the default user off), "
                   "keep protected-mode on, and bind Redis to a private interface only.")
def redis_requires_auth(ctx: Context) -> None:
    _, _, endpoint, (reply, elapsed), _ = _ask(ctx, "redis", "PING", redis_ping, named=False)
    line = reply.split(b"\r\n", 1)[0]
    text = ctx.target.masker.text(line.decode("utf-8", "replace"))
    ctx.add_fact(WireExchange("redis", endpoint, "PING", ctx.target.masker.text(_shown(reply)),
                              elapsed_ms=elapsed))
    if line.startswith(b"+PONG"):
        fail(ctx, f"{endpoint} answered +PONG to an anonymous PING: anyone who reaches it can "
                  "read and write every key")
    if line.startswith(b"-NOAUTH"):
        ctx.passed(f"{endpoint} answered an anonymous PING with {text!r}: a password is required")
        return
    if line.startswith(b"-DENIED"):
        ctx.passed(f"{endpoint} refused the anonymous connection with DENIED: protected mode is on "
                   "and no password is set (only loopback clients are served); a password keeps it "
                   "closed if protected mode is ever turned off")
        return
    raise CannotJudge(f"{endpoint} answered {_shown(reply, 80)} to PING: not a Redis answer this "
                      "check can judge (TLS-only Redis, another service?)")


# -- network.postgres_requires_tls --------------------------------------------------------------
@dataclass(frozen=True)
class PgMessage:
    """A backend message: its type byte and, for an error, its fields; for R, the method."""

    kind: str
    fields: dict[str, str]
    auth: int | None = None

    @property
    def text(self) -> str:
        if self.kind == "R":
            return f"AuthenticationRequest {self.auth} ({PG_AUTH.get(self.auth or 0, 'unknown')})"
        if self.kind == "E":
            return (f"ErrorResponse {self.fields.get('C', '?')} "
                    f"{self.fields.get('S', '')}: {self.fields.get('M', '')}")
        return f"message {self.kind!r}"


def startup_message(user: str, database: str) -> bytes:
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in (
        ("user", user), ("database", database), ("application_name", "pytest-prodready")))
    body = struct.pack("!i", PROTOCOL_3) + params + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def parse_backend(data: bytes) -> PgMessage | None:
    """The first backend message, or None when the bytes are not one."""
    if len(data) < 5:
        return None
    kind = chr(data[0])
    length = struct.unpack("!i", data[1:5])[0]
    if kind not in "RENv" or not 4 <= length <= MAX_REPLY_BYTES:
        return None
    body = data[5:1 + length]
    if kind == "R" and len(body) >= 4:
        return PgMessage("R", {}, struct.unpack("!i", body[:4])[0])
    if kind in "EN":
        fields = {}
        for part in body.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return PgMessage(kind, fields)
    return PgMessage(kind, {})


def _pg_complete(data: bytes) -> bool:
    if len(data) < 5:
        return False
    length: int = struct.unpack("!i", data[1:5])[0]
    return len(data) >= 1 + length


def pg_exchange(host: str, port: int, payload: bytes, timeout: float, *, one_byte: bool) -> bytes:
    deadline = time.monotonic() + timeout
    sock = connect(host, port, timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(payload)
        return read_until(sock, deadline, (lambda d: len(d) >= 1) if one_byte else _pg_complete)
    except OSError as exc:
        raise WireError("closed", f"the connection failed: {exc.strerror or exc}") from None
    finally:
        sock.close()


def _plaintext_refused(message: PgMessage) -> bool:
    """pg_hba.conf had no line for a non-TLS connection (or rejects it): refused before auth."""
    return message.kind == "E" and "pg_hba.conf" in message.fields.get("M", "")


@check("network.postgres_requires_tls", title="a non-TLS PostgreSQL connection is refused",
       severity="high", needs=("network.postgres",),
       subjects=lambda s: [str(e) for e in s.get("network.postgres") or []],
       remediation="Turn ssl on with a real certificate and allow only 'hostssl' lines in "
                   "pg_hba.conf (no 'host' lines for remote clients), so a plain-text startup "
                   "is refused; clients connect with sslmode=verify-full.")
def postgres_requires_tls(ctx: Context) -> None:
    timeout = _timeout(ctx, WIRE_TIMEOUT_S)
    host, port, endpoint, answer, elapsed = _ask(
        ctx, "postgres", "SSLRequest",
        lambda host, port, timeout: pg_exchange(host, port, SSL_REQUEST, timeout, one_byte=True))
    ctx.add_fact(WireExchange("postgres", endpoint, "SSLRequest", _shown(answer[:1]),
                              elapsed_ms=elapsed))
    if answer[:1] not in (b"S", b"N"):
        raise CannotJudge(f"{endpoint} answered {_shown(answer, 80)} to an SSLRequest: not "
                          "PostgreSQL")
    offers_tls = answer[:1] == b"S"

    ctx.target.guard(host)  # the second connection: a plain-text startup
    started = time.monotonic()
    sent = f"StartupMessage user={PG_USER} database={PG_USER}, without TLS"
    try:
        reply = pg_exchange(host, port, startup_message(PG_USER, PG_USER), timeout, one_byte=False)
    except WireError as exc:
        ctx.add_fact(WireExchange("postgres", endpoint, sent, "", str(exc),
                                  (time.monotonic() - started) * 1000))
        raise CannotJudge(f"{endpoint}: plain-text StartupMessage: {exc}") from None
    message = parse_backend(reply)
    shown = ctx.target.masker.text(message.text if message else _shown(reply, 120))
    ctx.add_fact(WireExchange("postgres", endpoint, sent, shown,
                              elapsed_ms=(time.monotonic() - started) * 1000))
    tls = "offers TLS (SSLRequest answered 'S')" if offers_tls else \
        "does not offer TLS at all (SSLRequest answered 'N')"
    if message is None:
        raise CannotJudge(f"{endpoint} answered a plain-text startup with {_shown(reply, 80)}: "
                          "not a PostgreSQL message")
    if _plaintext_refused(message):
        ctx.passed(f"{endpoint} {tls} and refused a plain-text startup for user {PG_USER!r} "
                   f"before authentication: {message.fields.get('M', '')}")
        return
    if message.kind == "R":
        method = PG_AUTH.get(message.auth or 0, f"auth method {message.auth}")
        password = ", and the password with them" if message.auth == 3 else ""
        fail(ctx, f"{endpoint} {tls} but accepted a plain-text startup and asked for {method}: "
                  f"queries and data cross the network unencrypted{password}")
    code = message.fields.get("C", "")
    if message.kind == "E" and code in ("28000", "28P01", "3D000"):
        # Past pg_hba.conf: the role, its password or the database was judged, so a
        # plain-text connection is allowed for it.
        fail(ctx, f"{endpoint} {tls} but let a plain-text startup through pg_hba.conf to "
                  f"authentication ({shown}): a plain-text connection is allowed")
    raise CannotJudge(f"{endpoint} answered a plain-text startup with {shown}: neither a "
                      "pg_hba.conf refusal nor an authentication request")


# -- the same pattern for memcached, Elasticsearch and MongoDB ------------------------------------
def wire_roundtrip(host: str, port: int, payload: bytes, timeout: float,
                   done: Any) -> tuple[bytes, float]:
    """Send `payload` on a fresh connection; the bytes until done(data), a close or the limit."""
    started = time.monotonic()
    sock = connect(host, port, timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(payload)
        reply = read_until(sock, started + timeout, done)
        return reply, (time.monotonic() - started) * 1000
    except OSError as exc:
        raise WireError("closed", f"the connection failed: {exc.strerror or exc}") from None
    finally:
        sock.close()


def _ask(ctx: Context, protocol: str, sent: str, call: Callable[[str, int, float], Any],
         *, named: bool = True) -> tuple[str, int, str, Any, float]:
    """One guarded exchange with the subject: (host, port, endpoint, what call returned,
    elapsed ms). A connection without an answer is 'cannot judge' (a refused one names
    network.ports_closed, which judges reachability); `named` puts `sent` in that message."""
    host, port = _guarded(ctx, ctx.subject)
    endpoint = _label(host, port)
    started = time.monotonic()
    try:
        result = call(host, port, _timeout(ctx, WIRE_TIMEOUT_S))
    except WireError as exc:
        ctx.add_fact(WireExchange(protocol, endpoint, sent, "", str(exc),
                                  (time.monotonic() - started) * 1000))
        if exc.kind == "refused":
            raise CannotJudge(f"nothing accepts connections at {endpoint} (connection refused); "
                              "network.ports_closed judges reachability") from None
        raise CannotJudge(f"{endpoint}: {sent}: {exc}" if named else f"{endpoint}: {exc}") from None
    return host, port, endpoint, result, (time.monotonic() - started) * 1000


def _roundtrip(ctx: Context, protocol: str, payload: bytes, sent: str,
               done: Any) -> tuple[str, bytes, float]:
    """One guarded request/answer with the subject (see _ask)."""
    _, _, endpoint, (reply, elapsed), _ = _ask(
        ctx, protocol, sent, lambda host, port, timeout: wire_roundtrip(host, port, payload, timeout, done))
    return endpoint, reply, elapsed


def _subjects_of(key: str) -> Any:
    return lambda s: [str(e) for e in s.get(key) or []]


# memcached's text protocol: `stats` is answered by STAT lines and END when no auth is
# required; with `-Y` (ASCII authentication) every command before `set` of the credentials
# is `CLIENT_ERROR unauthenticated`.
def _memcached_done(data: bytes) -> bool:
    return data.endswith(b"END\r\n") or (b"\r\n" in data and not data.startswith(b"STAT "))


@check("network.memcached_requires_auth", title="memcached does not answer unauthenticated commands",
       severity="critical", needs=("network.memcached",), subjects=_subjects_of("network.memcached"),
       remediation="Bind memcached to a private interface (-l), disable UDP (-U 0), and require "
                   "authentication (-Y auth file for the text protocol, or SASL with -S); allow "
                   "it only from the application's network.")
def memcached_requires_auth(ctx: Context) -> None:
    endpoint, reply, elapsed = _roundtrip(ctx, "memcached", b"stats\r\n", "stats", _memcached_done)
    ctx.add_fact(WireExchange("memcached", endpoint, "stats", ctx.target.masker.text(_shown(reply)),
                              elapsed_ms=elapsed))
    if reply.startswith(b"STAT "):
        stats = dict(line[5:].partition(" ")[::2] for line in
                     reply.decode("ascii", "replace").split("\r\n") if line.startswith("STAT "))
        fail(ctx, f"{endpoint} answered 'stats' without authentication (memcached "
                  f"{stats.get('version', '?')}, {stats.get('curr_items', '?')} items cached): anyone "
                  "who reaches it can read, overwrite and flush every key")
    line = reply.split(b"\r\n", 1)[0]
    if line.startswith(b"CLIENT_ERROR unauthenticated"):
        ctx.passed(f"{endpoint} answered 'stats' with {line.decode()!r}: authentication is required")
        return
    raise CannotJudge(f"{endpoint} answered {_shown(reply, 80)} to 'stats': not a memcached answer "
                      "this check can judge (binary-protocol-only SASL, TLS, another service?)")


# Elasticsearch / OpenSearch: GET / answers the cluster's name and version when security is
# off; with security on it is 401 security_exception "missing authentication credentials".
def http_get_root(host: str, port: int) -> bytes:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (f"GET / HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: pytest-prodready\r\n"
            "Accept: application/json\r\nConnection: close\r\n\r\n").encode()


def parse_http(reply: bytes) -> tuple[int | None, dict[str, str], Any]:
    """Status, headers (lower-case names) and the JSON body (None when it is not JSON)."""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if not parts[0].startswith("HTTP/") or len(parts) < 2 or not parts[1].isdigit():
        return None, {}, None
    headers: dict[str, str] = {}
    for name, _, value in (h.partition(":") for h in lines[1:]):  # repeated headers joined
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError:
        document = None
    return int(parts[1]), headers, document


def tls_roundtrip(host: str, port: int, payload: bytes, timeout: float) -> tuple[bytes, float]:
    """`payload` over TLS (the certificate is not judged here: tls.* does that); the bytes
    until the peer closes, the limit or the deadline."""
    started = time.monotonic()
    deadline = started + timeout
    sock = connect(host, port, timeout)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        sock.settimeout(timeout)
        tls = context.wrap_socket(sock, server_hostname=None if _is_ip(host) else host)
        tls.sendall(payload)
        data = b""
        while len(data) < MAX_REPLY_BYTES and time.monotonic() < deadline:
            tls.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = tls.recv(MAX_REPLY_BYTES - len(data))
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
        if not data:
            raise WireError("closed", "no answer over TLS")
        return data, (time.monotonic() - started) * 1000
    except ssl.SSLError as exc:
        raise WireError("closed", f"no TLS either ({exc.reason or exc})") from None
    except OSError as exc:
        raise WireError("closed", f"the TLS connection failed: {exc.strerror or exc}") from None
    finally:
        sock.close()


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


@check("network.elasticsearch_requires_auth",
       title="Elasticsearch does not answer unauthenticated requests",
       severity="critical", needs=("network.elasticsearch",),
       subjects=_subjects_of("network.elasticsearch"),
       remediation="Turn Elasticsearch security on (xpack.security.enabled: true, the default "
                   "since 8.0) with TLS and real passwords, and keep port 9200 on a private network.")
def elasticsearch_requires_auth(ctx: Context) -> None:
    host, port = _guarded(ctx, ctx.subject)
    endpoint = _label(host, port)
    timeout = _timeout(ctx, WIRE_TIMEOUT_S)
    sent = "GET / without credentials"
    started = time.monotonic()
    over = "plain HTTP"
    try:
        reply, elapsed = wire_roundtrip(host, port, http_get_root(host, port), timeout, lambda d: False)
        if reply[:2] == b"\x15\x03":  # a TLS alert record: the port speaks TLS only
            raise WireError("closed", f"answered a TLS alert ({_shown(reply, 16)}) to plain text")
    except WireError as exc:
        ctx.add_fact(WireExchange("elasticsearch", endpoint, f"{sent}, plain HTTP", "", str(exc),
                                  (time.monotonic() - started) * 1000))
        if exc.kind == "refused":
            raise CannotJudge(f"nothing accepts connections at {endpoint} (connection refused); "
                              "network.ports_closed judges reachability") from None
        if exc.kind != "closed":
            raise CannotJudge(f"{endpoint}: {sent}: {exc}") from None
        # Elasticsearch 8 (TLS on the HTTP port by default) closes a plain-text request: ask
        # again over TLS, on a second guarded connection.
        ctx.target.guard(host)
        over = "HTTPS"
        started = time.monotonic()
        try:
            reply, elapsed = tls_roundtrip(host, port, http_get_root(host, port), timeout)
        except WireError as tls_exc:
            ctx.add_fact(WireExchange("elasticsearch", endpoint, f"{sent}, over TLS", "",
                                      str(tls_exc), (time.monotonic() - started) * 1000))
            raise CannotJudge(f"{endpoint}: {sent}: {exc} in plain HTTP, {tls_exc}") from None
    status, headers, document = parse_http(reply)
    first = reply.split(b"\r\n", 1)[0]
    body = reply.partition(b"\r\n\r\n")[2]
    received = _shown(first) + (f", body {_shown(body, 300)}" if status else "")
    ctx.add_fact(WireExchange("elasticsearch", endpoint, f"{sent}, {over}",
                              ctx.target.masker.text(received), elapsed_ms=elapsed))
    asked = f"GET / without credentials ({over})"
    if status == 200 and isinstance(document, dict) and "cluster_name" in document:
        version = document.get("version") if isinstance(document.get("version"), dict) else {}
        product = "OpenSearch" if (version or {}).get("distribution") == "opensearch" else "Elasticsearch"
        fail(ctx, f"{endpoint} answered {asked} with cluster "
                  f"{document.get('cluster_name')!r} ({product} {(version or {}).get('number', '?')}): "
                  "its indices can be read and written by anyone who reaches it")
    error = document.get("error") if isinstance(document, dict) else None
    refused = status == 401 and (
        "security_exception" in json.dumps(error) or "www-authenticate" in headers)
    if refused:
        ctx.passed(f"{endpoint} answered {asked} with 401 "
                   f"({headers.get('www-authenticate', 'security_exception')}): authentication is "
                   "required")
        return
    raise CannotJudge(f"{endpoint} answered {_shown(first, 80)} to {asked}: neither the "
                      "cluster's banner nor a 401 (a proxy, another service?)")


# MongoDB: one OP_MSG (opcode 2013, MongoDB 3.6+) running listDatabases with nameOnly on
# admin. Without access control it lists the databases; with it, code 13 Unauthorized.
OP_MSG = 2013


def bson_encode(document: dict[str, Any]) -> bytes:
    out = b""
    for key, value in document.items():
        name = key.encode() + b"\0"
        if isinstance(value, bool):
            out += b"\x08" + name + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            out += b"\x10" + name + struct.pack("<i", value)
        elif isinstance(value, str):
            data = value.encode() + b"\0"
            out += b"\x02" + name + struct.pack("<i", len(data)) + data
        else:
            raise TypeError(type(value).__name__)
    return struct.pack("<i", len(out) + 5) + out + b"\0"


_FIXED = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16,
          0x7F: 0, 0xFF: 0}


def _fixed_value(kind: int, raw: bytes) -> Any:
    if len(raw) != _FIXED[kind]:
        raise ValueError("cut")
    if kind == 0x08:
        return raw == b"\x01"
    if kind == 0x10:
        return struct.unpack("<i", raw)[0]
    if kind == 0x12:
        return struct.unpack("<q", raw)[0]
    return None if kind == 0x0A else raw.hex()


def bson_decode(data: bytes) -> dict[str, Any]:
    """A BSON document (the types a server's reply uses); ValueError when it is not one."""
    if len(data) < 5:
        raise ValueError("short")
    size = struct.unpack("<i", data[:4])[0]
    if not 5 <= size <= len(data):
        raise ValueError("bad length")
    out: dict[str, Any] = {}
    at = 4
    while at < size - 1:
        kind = data[at]
        end = data.index(b"\0", at + 1)
        name = data[at + 1:end].decode("utf-8", "replace")
        at = end + 1
        value: Any
        if kind == 0x01:
            value = struct.unpack("<d", data[at:at + 8])[0]
            at += 8
        elif kind == 0x02:
            length = struct.unpack("<i", data[at:at + 4])[0]
            value = data[at + 4:at + 3 + length].decode("utf-8", "replace")
            at += 4 + length
        elif kind in (0x03, 0x04):
            length = struct.unpack("<i", data[at:at + 4])[0]
            inner = bson_decode(data[at:at + length])
            value = list(inner.values()) if kind == 0x04 else inner
            at += length
        elif kind == 0x05:
            length = struct.unpack("<i", data[at:at + 4])[0]
            value = data[at + 5:at + 5 + length]
            at += 5 + length
        elif kind in _FIXED:
            raw = data[at:at + _FIXED[kind]]
            value = _fixed_value(kind, raw)
            at += _FIXED[kind]
        else:
            raise ValueError(f"BSON type {kind:#x}")
        out[name] = value
    return out


def op_msg(document: dict[str, Any], request_id: int = 1) -> bytes:
    body = struct.pack("<I", 0) + b"\0" + bson_encode(document)
    return struct.pack("<iiii", 16 + len(body), request_id, 0, OP_MSG) + body


def parse_op_msg(reply: bytes) -> dict[str, Any] | None:
    """The body document of an OP_MSG reply, or None when the bytes are not one."""
    if len(reply) < 21:
        return None
    length, _, _, opcode = struct.unpack("<iiii", reply[:16])
    if opcode != OP_MSG or length > len(reply) or reply[20] != 0:
        return None
    try:
        return bson_decode(reply[21:length])
    except (ValueError, struct.error, IndexError):
        return None


def _op_msg_done(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= struct.unpack("<i", data[:4])[0]


@check("network.mongodb_requires_auth", title="MongoDB refuses unauthenticated commands",
       severity="critical", needs=("network.mongodb",), subjects=_subjects_of("network.mongodb"),
       remediation="Turn MongoDB access control on (security.authorization: enabled) with real "
                   "users, bind it to a private interface (net.bindIp), and require TLS.")
def mongodb_requires_auth(ctx: Context) -> None:
    sent = "OP_MSG listDatabases (nameOnly) on admin, without authentication"
    endpoint, reply, elapsed = _roundtrip(
        ctx, "mongodb", op_msg({"listDatabases": 1, "nameOnly": True, "$db": "admin"}), sent,
        _op_msg_done)
    document = parse_op_msg(reply)
    if document is None:
        ctx.add_fact(WireExchange("mongodb", endpoint, sent, _shown(reply), elapsed_ms=elapsed))
        raise CannotJudge(f"{endpoint} answered {_shown(reply, 80)} to an OP_MSG: not a MongoDB "
                          "3.6+ reply (TLS-only, another service?)")
    databases = document.get("databases")
    names = [str(d.get("name")) for d in databases if isinstance(d, dict)] \
        if isinstance(databases, list) else []
    summary = (f"ok {document.get('ok')}, {len(names)} databases" if isinstance(databases, list)
               else f"ok {document.get('ok')}, code {document.get('code')} "
                    f"{document.get('codeName', '')}: {document.get('errmsg', '')}")
    ctx.add_fact(WireExchange("mongodb", endpoint, sent, ctx.target.masker.text(summary),
                              elapsed_ms=elapsed))
    if document.get("ok") == 1 and isinstance(databases, list):
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        fail(ctx, f"{endpoint} listed its {len(names)} databases ({shown}) to an unauthenticated "
                  "client: anyone who reaches it can read and write them")
    if document.get("ok") == 0 and document.get("code") in (13, 18):
        ctx.passed(f"{endpoint} refused listDatabases without authentication: code "
                   f"{document.get('code')} {document.get('codeName', '')} "
                   f"({document.get('errmsg', '')})")
        return
    raise CannotJudge(f"{endpoint} answered listDatabases with {summary}: neither a list nor "
                      "an authentication refusal")


# MySQL / MariaDB: the server speaks first. Its Initial Handshake (protocol 10) names the
# version and the capability flags; CLIENT_SSL (0x0800) says TLS can be negotiated. A host
# the grants do not allow gets an ERR packet (0xFF) instead, before any credentials.
MYSQL_CLIENT_SSL = 0x0800
MYSQL_ERR = 0xFF
# ERR greetings that refuse this client's host as such (other early errors, such as 1040
# "Too many connections", say nothing about TLS or the host).
MYSQL_HOST_REFUSALS = {1130: "host not allowed", 1129: "host blocked after connection errors"}


@dataclass(frozen=True)
class MysqlGreeting:
    """What the server's first packet said: a handshake (version, capabilities) or an error."""

    protocol: int
    version: str = ""
    capabilities: int = 0
    error_code: int = 0
    error: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.capabilities & MYSQL_CLIENT_SSL)


def _mysql_packet_done(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:3], "little")


def parse_mysql_greeting(data: bytes) -> MysqlGreeting | None:
    """The first packet, parsed; None when it is not a MySQL greeting."""
    if len(data) < 5:
        return None
    length = int.from_bytes(data[:3], "little")
    payload = data[4:4 + length]
    if length == 0 or len(payload) < length:
        return None
    if payload[0] == MYSQL_ERR and len(payload) >= 3:
        message = payload[3:]
        if message.startswith(b"#"):  # a SQL state marker and 5 characters, when present
            message = message[6:]
        return MysqlGreeting(MYSQL_ERR, error_code=int.from_bytes(payload[1:3], "little"),
                             error=message.decode("utf-8", "replace"))
    if payload[0] != 10:
        return None
    end = payload.find(b"\0", 1)
    # version, NUL, connection id (4), auth data part 1 (8), filler (1), capabilities (2)
    if end < 0 or len(payload) < end + 1 + 4 + 8 + 1 + 2:
        return None
    version = payload[1:end].decode("ascii", "replace")
    # MariaDB prefixes '5.5.5-' for old replication clients; the real version follows.
    version = version.removeprefix("5.5.5-") if "MariaDB" in version else version
    at = end + 1 + 4 + 8 + 1
    capabilities = int.from_bytes(payload[at:at + 2], "little")
    if len(payload) >= at + 7:  # charset (1), status (2), then the upper capability bytes
        capabilities |= int.from_bytes(payload[at + 5:at + 7], "little") << 16
    return MysqlGreeting(10, version=version, capabilities=capabilities)


def mysql_greeting(host: str, port: int, timeout: float) -> tuple[bytes, float]:
    """The server's first packet; nothing is sent (the server speaks first)."""
    started = time.monotonic()
    sock = connect(host, port, timeout)
    try:
        reply = read_until(sock, started + timeout, _mysql_packet_done)
        return reply, (time.monotonic() - started) * 1000
    except OSError as exc:
        raise WireError("closed", f"the connection failed: {exc.strerror or exc}") from None
    finally:
        sock.close()


@check("network.mysql_offers_tls", title="MySQL/MariaDB offers TLS (or refuses this host)",
       severity="high", needs=("network.mysql",), subjects=_subjects_of("network.mysql"),
       remediation="Give the server a certificate (ssl_cert/ssl_key; MariaDB 11.4+ makes one "
                   "itself), set require_secure_transport = ON, and bind it to a private "
                   "interface; allow it only from the application's network.")
def mysql_offers_tls(ctx: Context) -> None:
    _, _, endpoint, (reply, elapsed), _ = _ask(ctx, "MySQL", "nothing (waited for the greeting)",
                                               mysql_greeting, named=False)
    greeting = parse_mysql_greeting(reply)
    notes: tuple[str, ...] = ()
    if greeting is not None and greeting.protocol == 10:
        notes = (f"capabilities 0x{greeting.capabilities:08x}: CLIENT_SSL "
                 f"{'set' if greeting.tls else 'not set'}",)
    ctx.add_fact(WireExchange("MySQL", endpoint, "nothing (waited for the greeting)",
                              ctx.target.masker.text(_shown(reply, 120)), elapsed_ms=elapsed,
                              notes=notes))
    if greeting is None:
        raise CannotJudge(f"{endpoint} sent {_shown(reply, 80)}: not a MySQL/MariaDB greeting "
                          "(another service, or TLS-only?)")
    if greeting.protocol == MYSQL_ERR and greeting.error_code not in MYSQL_HOST_REFUSALS:
        raise CannotJudge(f"{endpoint} answered error {greeting.error_code} before any handshake "
                          f"({ctx.target.masker.text(greeting.error)}): it does not say whether "
                          "TLS is offered")
    if greeting.protocol == MYSQL_ERR:
        ctx.passed(f"{endpoint} refuses this host before any login (error {greeting.error_code}: "
                   f"{ctx.target.masker.text(greeting.error)})")
        return
    if not greeting.tls:
        fail(ctx, f"{endpoint} (server {greeting.version}) answers from the network without "
                  "TLS support (no CLIENT_SSL in its handshake): logins and queries cross the "
                  "network in clear text")
    # Whether TLS is *required* (require_secure_transport, REQUIRE SSL) is only told after
    # a login, which this passive probe never attempts.
    ctx.passed(f"{endpoint} (server {greeting.version}) offers TLS (CLIENT_SSL); whether it "
               "requires TLS is not visible before a login")


# -- the family ---------------------------------------------------------------------------------
def _network_hosts(settings: Settings) -> Iterable[str]:
    """network.host and every Redis/PostgreSQL endpoint's host: the target's, by the user's word."""
    hosts = [str(settings.get("network.host"))] if settings.get("network.host") else []
    for key in ("network.redis", "network.postgres", "network.memcached", "network.elasticsearch",
                "network.mongodb", "network.mysql"):
        hosts += [split_host_port(str(e))[0] for e in settings.get(key) or []]
    return [h.strip("[]").lower() for h in hosts if h]


FAMILY = Family(
    name="network",
    config={"network": schema.Table({
        "host": schema.hostname,
        "closed_ports": schema.list_of(schema.integer(1, 65535)),
        "redis": schema.list_of(schema.host_port),
        "postgres": schema.list_of(schema.host_port),
        "memcached": schema.list_of(schema.host_port),
        "elasticsearch": schema.list_of(schema.host_port),
        "mongodb": schema.list_of(schema.host_port),
        "mysql": schema.list_of(schema.host_port),
    })},
    hosts=_network_hosts,
)
