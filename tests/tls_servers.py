"""Real TLS servers on 127.0.0.1 for the tls.* tests: Python `ssl` HTTP servers in a thread,
misbehaving TCP servers, a PostgreSQL-style SSLRequest server, and nginx from Debian.

Nothing here mocks `ssl` or `requests`: every check under test does real handshakes with
these servers over loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HSTS = "max-age=31536000; includeSubDomains"


@dataclass
class Served:
    """A server on 127.0.0.1: its port, and how many TCP connections it accepted."""

    port: int
    connections: list[int] = field(default_factory=lambda: [0])
    closer: Callable[[], None] = lambda: None

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/"

    @property
    def accepted(self) -> int:
        return self.connections[0]


class _Page(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"<!doctype html><title>tls target</title>ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Strict-Transport-Security", HSTS)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _TLSHTTPServer(ThreadingHTTPServer):
    """An HTTP server whose connections are wrapped in TLS in each connection's own thread,
    so a client that stalls its handshake never blocks the accept loop."""

    daemon_threads = True
    context: ssl.SSLContext
    counter: list[int]

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.counter[0] += 1
        request.settimeout(5)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # refused handshakes are the point of half of these tests
        try:
            super().finish_request(tls, client_address)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()


def server_context(certfile: str, keyfile: str, *, minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None, ciphers: str | None = None,
                   sni: Callable[[str | None], ssl.SSLContext | None] | None = None) -> ssl.SSLContext:
    """A server context. `ciphers` must say '@SECLEVEL=0' (or 1) BEFORE a weak key or a SHA-1
    certificate is loaded: at Debian's default level 2, OpenSSL refuses to load them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if ciphers:
        ctx.set_ciphers(ciphers)
    # Python warns that TLSVersion.TLSv1/TLSv1_1 are deprecated; serving them is the point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    ctx.load_cert_chain(certfile, keyfile)
    if sni is not None:
        def callback(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
            chosen = sni(name)
            if chosen is not None:
                sock.context = chosen
        ctx.sni_callback = callback
    return ctx


@contextlib.contextmanager
def serve_https(context: ssl.SSLContext) -> Iterator[Served]:
    """An HTTPS server (GET answers 200 with HSTS) on an ephemeral 127.0.0.1 port."""
    server = _TLSHTTPServer(("127.0.0.1", 0), _Page)
    server.context = context
    server.counter = [0]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Served(server.server_address[1], server.counter)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def serve_raw(behaviour: Callable[[socket.socket], None]) -> Iterator[Served]:
    """A TCP server that hands every accepted connection to `behaviour` in its own thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()
    counter = [0]
    held: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            behaviour(conn)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            counter[0] += 1
            held.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield Served(listener.getsockname()[1], counter)
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()


def answer_plain_http(conn: socket.socket) -> None:
    """Not TLS at all: whatever arrives gets an HTTP/1.1 400, like a plain HTTP server."""
    conn.settimeout(5)
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    conn.close()


def never_answer(conn: socket.socket) -> None:
    """Accept TCP, read the ClientHello, and say nothing, ever (until the test ends)."""
    conn.settimeout(30)
    with contextlib.suppress(OSError):
        conn.recv(4096)
        conn.recv(4096)


def reset_mid_handshake(conn: socket.socket) -> None:
    """Read the ClientHello, then reset the connection (RST, thanks to SO_LINGER 0)."""
    conn.settimeout(5)
    conn.recv(4096)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def postgres_ssl(context: ssl.SSLContext | None) -> Callable[[socket.socket], None]:
    """PostgreSQL's side of SSLRequest: 'S' then a TLS handshake (or 'N' without a context)."""

    def behaviour(conn: socket.socket) -> None:
        conn.settimeout(5)
        request = conn.recv(8)
        if request != struct.pack("!ii", 8, 80877103):
            conn.close()
            return
        if context is None:
            conn.sendall(b"N")
            conn.close()
            return
        conn.sendall(b"S")
        with contextlib.suppress(ssl.SSLError, OSError), context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    return behaviour


# -- nginx -----------------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    """Ephemeral ports that are free right now (bound together, so they are distinct)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Nginx:
    """A running nginx: its ports by role, its prefix directory and its master PID."""

    ports: dict[str, int]
    prefix: Path
    pid: int

    def url(self, role: str, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://localhost:{self.ports[role]}{path}"


NGINX_ROLES = ("https", "legacy", "defaults", "redirect", "temporary", "plain", "other_host",
               "downgrade", "to_http")


def nginx_config(prefix: Path, ports: dict[str, int], cert: str, key: str) -> str:
    """A realistic terminator: an HTTPS site with HSTS, an HTTP->HTTPS redirect, and the
    classic mistakes, one per port."""
    https = ports["https"]
    tls = f"ssl_certificate {cert};\n    ssl_certificate_key {key};"
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  server_tokens off;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  default_type text/plain;

  # The site: TLS 1.2/1.3 only, HSTS on every answer.
  server {{
    listen 127.0.0.1:{https} ssl;
    server_name localhost;
    {tls}
    ssl_protocols TLSv1.2 TLSv1.3;
    add_header Strict-Transport-Security "{HSTS}" always;
    location = /to-plain {{ return 301 http://$host:{ports['plain']}/; }}
    location / {{ return 200 "ok\\n"; }}
  }}
  # Legacy allowed on purpose: TLS 1.0/1.1 need @SECLEVEL=0 in OpenSSL 3, on the server too.
  server {{
    listen 127.0.0.1:{ports['legacy']} ssl;
    {tls}
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    ssl_ciphers "ALL:@SECLEVEL=0";
    location / {{ return 200 "legacy\\n"; }}
  }}
  # nginx 1.22's defaults: ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3 and its default
  # ciphers, at OpenSSL's default security level (which refuses 1.0/1.1 anyway).
  server {{
    listen 127.0.0.1:{ports['defaults']} ssl;
    {tls}
    location / {{ return 200 "defaults\\n"; }}
  }}
  server {{ listen 127.0.0.1:{ports['redirect']}; return 301 https://$host:{https}$request_uri; }}
  server {{ listen 127.0.0.1:{ports['temporary']}; return 302 https://$host:{https}$request_uri; }}
  server {{ listen 127.0.0.1:{ports['plain']}; location / {{ return 200 "plain http\\n"; }} }}
  server {{ listen 127.0.0.1:{ports['other_host']}; return 301 https://www.example.com$request_uri; }}
  server {{ listen 127.0.0.1:{ports['downgrade']}; return 308 https://$host:{https}/to-plain; }}
  server {{ listen 127.0.0.1:{ports['to_http']}; return 301 http://$host:{ports['plain']}$request_uri; }}
}}
"""


@contextlib.contextmanager
def nginx_process(prefix: Path, config: str, ports: dict[str, int]) -> Iterator[int]:
    """nginx in the foreground (daemon off) with `config` and its pid, log and temp paths
    under `prefix`; yields its PID once every port answers, and stops it by that PID."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise RuntimeError("nginx is not installed: run scripts/install-test-deps.sh (Debian's nginx)")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    # -e: the error log before the config is read (else the compiled-in /var/log/nginx path).
    proc = subprocess.Popen([binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        waiting = set(ports.values())
        while waiting:
            if proc.poll() is not None:
                log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
                raise RuntimeError(f"nginx exited with {proc.returncode}: "
                                   f"{proc.stderr.read().decode() if proc.stderr else ''}{log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not open ports {sorted(waiting)} within 10s")
            for port in list(waiting):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    waiting.discard(port)
            time.sleep(0.02)
        yield proc.pid
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # fast shutdown of the master and its workers
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


@contextlib.contextmanager
def run_nginx(prefix: Path, cert: str, key: str) -> Iterator[Nginx]:
    """nginx terminating TLS for every NGINX_ROLES scenario (see nginx_config)."""
    ports = dict(zip(NGINX_ROLES, free_ports(len(NGINX_ROLES)), strict=True))
    with nginx_process(prefix, nginx_config(prefix, ports, cert, key), ports) as pid:
        yield Nginx(ports, prefix, pid)
