"""A recording foreign host and a redirector that points at it: raw sockets on loopback.

For the redirect corpus (tests/test_redirect_corpus.py): the allowlist holds 127.0.0.1
only, and a redirect must never carry a credential (nor, since 127.0.0.2 is not allowed,
any request at all) to 127.0.0.2, however its Location is spelled.

- `Recorder` (127.0.0.2): records the raw head of every request it receives (request line
  and every header, bytes as sent) and answers 200. It listens on its own ephemeral port,
  on the redirector's port number too (a parser that keeps the host of one half of a URL
  and the port of the other lands there), and on port 80 when that is free (a parser that
  drops the port): a request that reaches 127.0.0.2 anywhere we can listen is seen.
- `Redirector` (127.0.0.1, the allowed target): `/r?i=N` answers 302 with the N-th entry
  of `locations` as its Location, written byte for byte (latin-1, or UTF-8 when it has
  characters beyond latin-1: what a real server does). Other paths answer 200. It records
  what it receives too.

Bare sockets, not a framework: no framework would send most of these Locations.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

FOREIGN_HOST = "127.0.0.2"  # loopback too (all of 127/8 is), but another host to the client
TARGET_HOST = "127.0.0.1"
MAX_HEAD = 256 * 1024


@dataclass(frozen=True)
class Seen:
    """One request as a server read it: where, the raw head, and its parts."""

    server: str  # 'foreign' or 'redirector'
    port: int  # the port it arrived on
    raw: bytes  # the request head as received: request line and every header line

    @property
    def text(self) -> str:
        return self.raw.decode("latin-1")

    @property
    def request_line(self) -> str:
        return self.text.split("\r\n", 1)[0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        out = []
        for line in self.text.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name:
                out.append((name.strip(), value.strip()))
        return out


def _read_head(sock: socket.socket) -> bytes:
    """The request head (up to MAX_HEAD), or whatever arrived before the client stopped."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data.partition(b"\r\n\r\n")[0]


@dataclass
class Listener:
    """Accepts on (host, port); each connection is answered in its own thread."""

    host: str
    port: int
    handle: Callable[[socket.socket, int], None]
    stop: threading.Event

    def __post_init__(self) -> None:
        self.sock = socket.create_server((self.host, self.port), backlog=64)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._accept, daemon=True, name=f"recorder-{self.port}")
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(5)
            # One request per connection: a client reusing it would send its next request
            # on a new one, which is recorded as well.
            self.handle(conn, self.port)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


@dataclass
class Recorded:
    """The servers' addresses, the redirector's Locations, and everything either saw."""

    locations: list[str] = field(default_factory=list)
    log: list[Seen] = field(default_factory=list)
    foreign_port: int = 0  # the recorder's own ephemeral port (P in the corpus)
    target_port: int = 0  # the redirector's port (R in the corpus)
    foreign_ports: tuple[int, ...] = ()  # every port the recorder listens on
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The allowed target: the redirector."""
        return f"http://{TARGET_HOST}:{self.target_port}"

    @property
    def foreign_url(self) -> str:
        return f"http://{FOREIGN_HOST}:{self.foreign_port}"

    @property
    def foreign(self) -> list[Seen]:
        """Every request 127.0.0.2 received."""
        with self.lock:
            return [s for s in self.log if s.server == "foreign"]

    @property
    def redirector(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.log if s.server == "redirector"]

    def clear(self) -> None:
        with self.lock:
            self.log.clear()

    def _record(self, server: str, port: int, raw: bytes) -> None:
        with self.lock:
            self.log.append(Seen(server, port, raw))

    # -- handlers --------------------------------------------------------------------------
    def serve_foreign(self, conn: socket.socket, port: int) -> None:
        raw = _read_head(conn)
        if not raw:
            return
        self._record("foreign", port, raw)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n"
                     b"Connection: close\r\n\r\nrecorded")

    def serve_redirector(self, conn: socket.socket, port: int) -> None:
        raw = _read_head(conn)
        if not raw:
            return
        self._record("redirector", port, raw)
        target = Seen("redirector", port, raw).request_line.split(" ")
        url = urlsplit(target[1] if len(target) > 1 else "/")
        index = parse_qs(url.query).get("i", [""])[0]
        if url.path == "/r" and index.isdigit() and int(index) < len(self.locations):
            location = self.locations[int(index)]
            try:
                value = location.encode("latin-1")
            except UnicodeEncodeError:
                value = location.encode("utf-8")
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + value + b"\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                     b"Connection: close\r\n\r\ntarget")


@contextmanager
def serve_recorder() -> Iterator[Recorded]:
    """The redirector on 127.0.0.1 and the recording host on 127.0.0.2, for the block.

    Set `recorded.locations` once the ports are known (the corpus names them).
    """
    recorded = Recorded()
    stop = threading.Event()
    listeners: list[Listener] = []
    try:
        redirector = Listener(TARGET_HOST, 0, recorded.serve_redirector, stop)
        listeners.append(redirector)
        foreign = Listener(FOREIGN_HOST, 0, recorded.serve_foreign, stop)
        listeners.append(foreign)
        listeners.append(Listener(FOREIGN_HOST, redirector.port, recorded.serve_foreign, stop))
        with contextlib.suppress(OSError):  # port 80 needs privileges and may be taken
            listeners.append(Listener(FOREIGN_HOST, 80, recorded.serve_foreign, stop))
        recorded.target_port = redirector.port
        recorded.foreign_port = foreign.port
        recorded.foreign_ports = tuple(listener.port for listener in listeners[1:])
        yield recorded
    finally:
        stop.set()
        for listener in listeners:
            listener.close()
