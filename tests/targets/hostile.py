"""A hostile target: raw sockets on loopback, one protocol-breaking behaviour per path.

No framework would send any of this, so the servers here are bare sockets, each
connection handled in its own thread:

- `Hostile.url` (127.0.0.1): one behaviour per path (see `BEHAVIOURS`), and `/ok`, a
  well-behaved page a check can pass on (the session goes on after a hostile probe);
- `Hostile.tls_url` (https://127.0.0.1, another port): accepts TCP, then never says a
  word (a TLS handshake that stalls);
- `Hostile.foreign_url` (127.0.0.2): another host to the client, where `/foreign`
  redirects; it records everything it receives, to prove no credential ever reaches it.

Every request the servers read is recorded (method, path, headers, which server), and each
behaviour counts what it sent, so a test can say how much of a 2 GB body went out.
Infinite behaviours stop when the client hangs up or the server shuts down; none of them
builds its payload in memory (the 2 GB body and the gzip bomb are streamed).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

FOREIGN_HOST = "127.0.0.2"  # loopback too, but another host to the client
HUGE_BYTES = 2 * 1024**3  # announced and streamed: 2 GiB
BOMB_INFLATED = 4 * 1024**3  # what the gzip bomb inflates to if nothing stops it: 4 GiB
ZERO_BLOCK = bytes(1024 * 1024)  # shared, read-only: the only payload buffer anyone builds
TRICKLE_S = 0.1  # one byte per tick: never idle long enough for a read timeout
HEADERS_OK = (
    "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n"
    "Referrer-Policy: strict-origin-when-cross-origin\r\n"
)


@dataclass(frozen=True)
class Received:
    """One request as a hostile server read it."""

    server: str  # 'hostile', 'tls' or 'foreign'
    method: str
    path: str
    headers: dict[str, str]


class Closed(Exception):
    """The client hung up or the server is stopping: the behaviour ends."""


@dataclass
class Conn:
    """A connection being answered: the socket, the stop flag, what was sent."""

    sock: socket.socket
    stop: threading.Event
    sent: int = 0

    def send(self, data: bytes | str) -> None:
        if self.stop.is_set():
            raise Closed
        raw = data.encode("latin-1") if isinstance(data, str) else data
        try:
            self.sock.sendall(raw)
        except OSError as exc:
            raise Closed from exc
        self.sent += len(raw)

    def wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Closed


Behaviour = Callable[[Conn, "Hostile"], None]


# -- the behaviours ------------------------------------------------------------------------
def ok(conn: Conn, _h: Hostile) -> None:
    body = json.dumps({"status": "ok"}).encode()
    conn.send(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{HEADERS_OK}"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    conn.send(body)


def slowloris(conn: Conn, _h: Hostile) -> None:
    """A status line, then one header whose bytes arrive one by one, forever."""
    conn.send("HTTP/1.1 200 OK\r\nX-Slow: ")
    while True:
        conn.wait(TRICKLE_S)
        conn.send(b"a")


def endless_body(conn: Conn, _h: Hostile) -> None:
    """Complete headers, then a chunked body that trickles and never ends."""
    conn.send(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{HEADERS_OK}"
              "Transfer-Encoding: chunked\r\n\r\n")
    while True:
        conn.send(b"1\r\na\r\n")
        conn.wait(TRICKLE_S)


def huge_body(conn: Conn, _h: Hostile) -> None:
    """Content-Length: 2 GiB, and zeros as fast as the client reads them."""
    conn.send(f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n{HEADERS_OK}"
              f"Content-Length: {HUGE_BYTES}\r\n\r\n")
    left = HUGE_BYTES
    while left > 0:
        block = ZERO_BLOCK[:min(left, len(ZERO_BLOCK))]
        conn.send(block)
        left -= len(block)


def gzip_bomb(conn: Conn, _h: Hostile) -> None:
    """Content-Encoding: gzip: about 4 MB on the wire, 4 GiB of zeros inflated.

    The stream is compressed as it goes, one MiB of zeros at a time: nothing here holds
    more than one block.
    """
    conn.send(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
              f"{HEADERS_OK}Connection: close\r\n\r\n")
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    for _ in range(BOMB_INFLATED // len(ZERO_BLOCK)):
        out = compressor.compress(ZERO_BLOCK)
        if out:
            conn.send(out)
    conn.send(compressor.flush())


def redirect_loop(conn: Conn, _h: Hostile) -> None:
    conn.send("HTTP/1.1 302 Found\r\nLocation: /redirect-loop\r\nContent-Length: 0\r\n"
              "Connection: close\r\n\r\n")


def slow_redirect_loop(conn: Conn, _h: Hostile) -> None:
    """A loop whose every hop answers just inside the read timeout: each hop alone is fine."""
    conn.wait(0.8)
    conn.send("HTTP/1.1 302 Found\r\nLocation: /slow-redirect-loop\r\nContent-Length: 0\r\n"
              "Connection: close\r\n\r\n")


def foreign_redirect(conn: Conn, h: Hostile) -> None:
    conn.send(f"HTTP/1.1 302 Found\r\nLocation: {h.foreign_url}/landing\r\nContent-Length: 0\r\n"
              "Connection: close\r\n\r\n")


def reset_mid_body(conn: Conn, _h: Hostile) -> None:
    """Announce 1 MB, send 4 KiB of it, then close with SO_LINGER 0: a TCP reset."""
    conn.send(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{HEADERS_OK}"
              "Content-Length: 1000000\r\n\r\n")
    conn.send(b"x" * 4096)
    conn.wait(0.05)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.sock.close()


def bad_status(conn: Conn, _h: Hostile) -> None:
    conn.send(f"HTTP/1.1 two-hundred OK\r\n{HEADERS_OK}Content-Length: 2\r\n\r\nok")


def many_headers(conn: Conn, _h: Hostile) -> None:
    conn.send(f"HTTP/1.1 200 OK\r\n{HEADERS_OK}")
    conn.send("".join(f"X-Header-{i}: {i}\r\n" for i in range(10_000)))
    conn.send("Content-Length: 2\r\n\r\nok")


INVALID_UTF8_BODY = b"<html>caf\xc3 \xff\xfe not utf-8 \xed\xa0\x80 \xc0\xaf end</html>"


def invalid_utf8(conn: Conn, _h: Hostile) -> None:
    """Header values and a body that are not UTF-8 (lone continuation bytes, surrogates)."""
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
              b"Strict-Transport-Security: max-age=31536000\xff\xfe; includeSubDomains\r\n"
              b"X-Bad: caf\xc3 \xed\xa0\x80 \x80\x9b[2J\r\n"
              + HEADERS_OK.encode().replace(b"Strict-Transport-Security", b"X-Unused")
              + f"Content-Length: {len(INVALID_UTF8_BODY)}\r\nConnection: close\r\n\r\n".encode()
              + INVALID_UTF8_BODY)


def long_header(conn: Conn, _h: Hostile) -> None:
    """One header line of 1 MB (http.client allows 64 KiB)."""
    conn.send(f"HTTP/1.1 200 OK\r\n{HEADERS_OK}X-Long: ")
    for _ in range(16):
        conn.send(b"a" * 65536)
    conn.send("\r\nContent-Length: 2\r\n\r\nok")


@dataclass(frozen=True)
class Case:
    """A hostile behaviour, the path that serves it, and what the client must say about it."""

    name: str
    path: str
    behaviour: Behaviour
    says: str  # a fragment the exchange's error or note must contain


BEHAVIOURS: tuple[Case, ...] = (
    Case("slowloris", "/slowloris", slowloris, "without finishing them"),
    Case("endless body", "/endless-body", endless_body, "body still arriving after"),
    Case("2 GB body", "/huge", huge_body, "body cut at"),
    Case("gzip bomb", "/gzip-bomb", gzip_bomb, "body cut at"),
    Case("redirect loop", "/redirect-loop", redirect_loop, "stopped after 5 redirects"),
    Case("slow redirect loop", "/slow-redirect-loop", slow_redirect_loop, "not followed: the redirects took"),
    Case("foreign redirect", "/foreign", foreign_redirect, "not followed: it is outside the allowlist"),
    Case("reset mid-response", "/reset", reset_mid_body, "connection reset by the target"),
    Case("malformed status line", "/bad-status", bad_status, "malformed response: bad status line"),
    Case("10,000 headers", "/many-headers", many_headers, "malformed response: too many headers"),
    Case("invalid UTF-8", "/invalid-utf8", invalid_utf8, ""),
    Case("1 MB header line", "/long-header", long_header, "malformed response: a line too long"),
)
ROUTES: dict[str, Behaviour] = {"/ok": ok, **{case.path: case.behaviour for case in BEHAVIOURS}}


# -- the servers ---------------------------------------------------------------------------
def read_request(sock: socket.socket) -> tuple[str, str, dict[str, str]] | None:
    """Read one request head (and a small body); None when the client sent nothing usable."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > 256 * 1024:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    length = int(headers.get("Content-Length", "0") or 0)
    while len(rest) < min(length, 1 << 20):
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return parts[0], parts[1], headers


@dataclass
class RawServer:
    """Accepts connections on (host, ephemeral port); `handle(conn)` answers each one."""

    host: str
    handle: Callable[[Conn], None]
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server((self.host, 0), backlog=64)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._accept, daemon=True, name=f"hostile-{self.port}")

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = Conn(sock, self.stop)
        with contextlib.suppress(Closed, OSError), sock:
            sock.settimeout(10)
            self.handle(conn)

    def start(self) -> RawServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@dataclass
class Hostile:
    """The three servers and what they saw."""

    url: str = ""
    tls_url: str = ""
    foreign_url: str = ""
    log: list[Received] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # path -> bytes sent on the wire (total)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def foreign_log(self) -> list[Received]:
        return [r for r in self.log if r.server == "foreign"]

    def hits(self, path: str) -> list[Received]:
        return [r for r in self.log if r.server == "hostile" and r.path.split("?")[0] == path]

    def record(self, server: str, request: tuple[str, str, dict[str, str]]) -> None:
        with self.lock:
            self.log.append(Received(server, *request))

    def count(self, path: str, sent: int) -> None:
        with self.lock:
            self.sent[path] = self.sent.get(path, 0) + sent

    # -- handlers --------------------------------------------------------------------------
    def serve_hostile(self, conn: Conn) -> None:
        request = read_request(conn.sock)
        if request is None:
            return
        self.record("hostile", request)
        path = request[1].split("?")[0]
        behaviour = ROUTES.get(path)
        try:
            if behaviour is None:
                conn.send("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                          "not found")
            else:
                behaviour(conn, self)
        finally:
            self.count(path, conn.sent)

    def serve_silence(self, conn: Conn) -> None:
        """Accept, read whatever comes (a ClientHello), never answer, until the client leaves."""
        self.record("tls", ("", "", {}))
        conn.sock.settimeout(TRICKLE_S)
        while not conn.stop.is_set():
            try:
                if not conn.sock.recv(4096):
                    return
            except TimeoutError:
                continue

    def serve_foreign(self, conn: Conn) -> None:
        request = read_request(conn.sock)
        if request is None:
            return
        self.record("foreign", request)
        conn.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nlanded")


@contextmanager
def serve_hostile() -> Iterator[Hostile]:
    """The hostile target, its stalling TLS port, and the foreign host, for the block."""
    hostile = Hostile()
    servers = [RawServer("127.0.0.1", hostile.serve_hostile), RawServer("127.0.0.1", hostile.serve_silence),
               RawServer(FOREIGN_HOST, hostile.serve_foreign)]
    hostile.url = f"http://127.0.0.1:{servers[0].port}"
    hostile.tls_url = f"https://127.0.0.1:{servers[1].port}"
    hostile.foreign_url = f"http://{FOREIGN_HOST}:{servers[2].port}"
    for server in servers:
        server.start()
    try:
        yield hostile
    finally:
        for server in servers:
            server.close()
