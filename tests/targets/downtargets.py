"""Targets for the run-level safety rules: down, speaking the wrong protocol, rate-limiting
the checker, counting what they receive. Real servers on 127.0.0.1, stopped with the block.

- `serve_raw(behaviour)`: a bare TCP server handing every connection to a behaviour
  (`answer_503`, `reset`, `hang`, `ssh_banner`, `plain_http`); it counts the connections
  and keeps the request heads it read.
- `serve_https_page()`: Python `ssl` (OpenSSL) serving HTTPS with a self-signed
  certificate: what an `http://` URL to a TLS port meets.
- `serve_flask(app, tls=False)`: any Flask app over HTTP, or HTTPS with a self-signed
  certificate (no CA vouches for it: the common staging set-up).
- Flask apps: `counting_app` (logs every request; optionally 503 to the first request for
  each path), `github_receiver` (verifies GitHub's signature, counts valid deliveries,
  503 to the first), `rate_limited_app` (429 + `Retry-After: 60` after N requests),
  `slow_api_app` (`/` and unknown paths answer; `/api/slow*` never do).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.serving import make_server

from tests.targets.webapp import QuietHandler
from tests.tls_servers import serve_https, server_context

SSH_BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"
GOOD_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
PAGE = b"<!doctype html><html><head><title>App</title></head><body>ok</body></html>"


# -- raw TCP -------------------------------------------------------------------------------
@dataclass
class Raw:
    """A raw server: its URL, and what it saw (connections accepted, request heads read)."""

    port: int
    scheme: str = "http"
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def saw(self, head: bytes) -> None:
        with self.lock:
            self.requests.append(head)


Behaviour = Callable[[socket.socket, Raw, threading.Event], None]


def read_head(conn: socket.socket, timeout: float = 5.0) -> bytes:
    """Read up to the end of a request's header block (or whatever arrives before EOF)."""
    conn.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def answer_503(conn: socket.socket, raw: Raw, _stop: threading.Event) -> None:
    """Every request: 503 (the application behind the proxy is down)."""
    head = read_head(conn)
    if head:
        raw.saw(head)
        body = b"upstream unavailable\n"
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    conn.close()


def reset(conn: socket.socket, raw: Raw, _stop: threading.Event) -> None:
    """Read the request, then reset the connection (RST, thanks to SO_LINGER 0)."""
    head = read_head(conn)
    if head:
        raw.saw(head)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def hang(conn: socket.socket, raw: Raw, stop: threading.Event) -> None:
    """Accept, read the request, and never answer (until the server stops)."""
    head = read_head(conn)
    if head:
        raw.saw(head)
    stop.wait(300)
    conn.close()


def ssh_banner(conn: socket.socket, _raw: Raw, _stop: threading.Event) -> None:
    """An SSH server: its banner first (it does not wait for the client), then it hangs up."""
    conn.sendall(SSH_BANNER)
    with contextlib.suppress(OSError):
        read_head(conn, timeout=1)  # read what the client sent, so the close is a FIN
    conn.close()


def plain_http(conn: socket.socket, raw: Raw, _stop: threading.Event) -> None:
    """A plain-HTTP server: 200 to a request, 400 to anything else (a TLS ClientHello)."""
    conn.settimeout(2)
    head = conn.recv(4096)
    if head:
        raw.saw(head)
    is_http = head[:8].split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST", b"OPTIONS")
    status = b"200 OK" if is_http else b"400 Bad Request"
    conn.sendall(b"HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (status, len(PAGE), PAGE))
    conn.close()


@contextmanager
def serve_raw(behaviour: Behaviour, scheme: str = "http") -> Iterator[Raw]:
    """A TCP server on an ephemeral 127.0.0.1 port, one thread per connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    stop = threading.Event()
    raw = Raw(listener.getsockname()[1], scheme)
    held: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            behaviour(conn, raw, stop)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with raw.lock:
                raw.connections += 1
                held.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield raw
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()


# -- TLS -----------------------------------------------------------------------------------
@functools.cache
def self_signed_files() -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1 (cert file, key file)."""
    from tests.tls_certs import self_signed

    directory = Path(tempfile.mkdtemp(prefix="prodready-downtargets-"))
    return self_signed().write(directory, "self-signed")


def tls_context() -> ssl.SSLContext:
    return server_context(*self_signed_files())


@contextmanager
def serve_https_page() -> Iterator[Raw]:
    """Python ssl (OpenSSL) serving HTTPS on 127.0.0.1; `url` says http:// on purpose."""
    with serve_https(tls_context()) as served:
        yield Raw(served.port, "http")


# -- Flask apps ----------------------------------------------------------------------------
@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class App:
    """A served Flask app: its URL and what it received."""

    url: str
    log: list[Seen]

    def paths(self) -> list[str]:
        return [seen.path for seen in self.log]


@contextmanager
def serve_flask(app: Flask, *, tls: bool = False, stop: threading.Event | None = None,
                host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a Flask app on an ephemeral port of 127.0.0.1; yields its base URL. `stop` is
    set before the server shuts down, so handlers that wait on it end."""
    server = make_server(host, 0, app, threaded=True, request_handler=QuietHandler,
                         ssl_context=tls_context() if tls else None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://{host}:{server.server_port}"
    finally:
        if stop is not None:
            stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _logging(app: Flask, log: list[Seen], lock: threading.Lock) -> None:
    @app.before_request
    def record() -> None:
        with lock:
            log.append(Seen(request.method, request.full_path.rstrip("?"), dict(request.headers)))

    @app.after_request
    def headers(resp: Response) -> Response:
        for name, value in GOOD_HEADERS.items():
            resp.headers.setdefault(name, value)
        return resp


def counting_app(log: list[Seen], *, first_503: bool = False) -> Flask:
    """Every request logged; a good page at `/`, 401 under /api/, 404 elsewhere.
    first_503: the first request for each path answers 503 (a hiccup worth one retry)."""
    app = Flask("prodready_counting_target")
    lock = threading.Lock()
    _logging(app, log, lock)
    seen_paths: set[str] = set()

    @app.before_request
    def hiccup() -> Response | None:
        if not first_503:
            return None
        with lock:
            first = request.path not in seen_paths
            seen_paths.add(request.path)
        return Response("warming up", 503) if first else None

    @app.route("/")
    def index() -> Response:
        return Response(PAGE, mimetype="text/html")

    @app.route("/api/<path:rest>", methods=["GET", "POST", "OPTIONS", "HEAD"])
    def api(rest: str) -> Response:
        return Response('{"error": "unauthorized"}', 401, mimetype="application/json",
                        headers={"WWW-Authenticate": "Bearer"})

    @app.errorhandler(404)
    def not_found(_exc: object) -> Response:
        return Response('{"error": "not found"}', 404, mimetype="application/json")

    return app


GITHUB_HOOK_PATH = "/hooks/github"


def github_receiver(log: list[Seen], counts: dict[str, int], secret: str) -> Flask:
    """A GitHub webhook receiver (GitHub's documented HMAC-SHA256 over the raw body).

    counts['valid'] counts the correctly signed deliveries; the first one answers 503 (the
    receiver hiccups), later ones 204. Anything not correctly signed: 401."""
    app = Flask("prodready_github_receiver")
    lock = threading.Lock()
    _logging(app, log, lock)
    counts.setdefault("valid", 0)

    @app.route("/")
    def index() -> Response:
        return Response(PAGE, mimetype="text/html")

    @app.route(GITHUB_HOOK_PATH, methods=["POST"])
    def hook() -> Response:
        body = request.get_data()
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Hub-Signature-256", "")
        if not hmac.compare_digest(expected, given):
            return Response('{"error": "bad signature"}', 401, mimetype="application/json")
        with lock:
            counts["valid"] += 1
            first = counts["valid"] == 1
        return Response("busy", 503) if first else Response(status=204)

    @app.errorhandler(404)
    def not_found(_exc: object) -> Response:
        return Response('{"error": "not found"}', 404, mimetype="application/json")

    return app


def rate_limited_app(log: list[Seen], limit: int = 20, retry_after: str = "60") -> Flask:
    """A target whose limiter allows `limit` requests, then answers every route with 429
    and `Retry-After` (by default 60: a limiter with a one-minute window)."""
    app = Flask("prodready_rate_limited")
    lock = threading.Lock()
    _logging(app, log, lock)

    @app.before_request
    def limiter() -> Response | None:
        with lock:
            over = len(log) > limit
        if over:
            return Response('{"error": "too many requests"}', 429, mimetype="application/json",
                            headers={"Retry-After": retry_after})
        return None

    @app.route("/")
    def index() -> Response:
        return Response(PAGE, mimetype="text/html")

    @app.route("/api/<path:rest>", methods=["GET", "POST", "OPTIONS", "HEAD"])
    def api(rest: str) -> Response:
        return Response('{"error": "unauthorized"}', 401, mimetype="application/json",
                        headers={"WWW-Authenticate": "Bearer"})

    @app.errorhandler(404)
    def not_found(_exc: object) -> Response:
        return Response('{"error": "not found"}', 404, mimetype="application/json")

    return app


def slow_api_app(log: list[Seen], stop: threading.Event) -> Flask:
    """`/` and unknown paths answer at once (the preflight passes); `/api/slow*` accept the
    request and never answer (until `stop`)."""
    app = Flask("prodready_slow_api")
    lock = threading.Lock()
    _logging(app, log, lock)

    @app.route("/")
    def index() -> Response:
        return Response(PAGE, mimetype="text/html")

    @app.route("/api/<path:rest>", methods=["GET", "POST", "OPTIONS", "HEAD"])
    def api(rest: str) -> Response:
        if rest.startswith("slow"):
            stop.wait(300)
        return Response('{"error": "unauthorized"}', 401, mimetype="application/json")

    @app.errorhandler(404)
    def not_found(_exc: object) -> Response:
        return Response('{"error": "not found"}', 404, mimetype="application/json")

    return app

