"""A half-ready demo API on loopback: some checks pass, some fail, all with real evidence.

Built on the standard library's threading HTTP server so the demo needs nothing beyond
the plugin's own dependencies. It serves HTTPS on 127.0.0.1 with a throwaway CA and a
leaf for localhost minted at start-up (`demo.certs`, the only place that imports
`cryptography`), plus a plain-HTTP listener that redirects to it.

What is ready: TLS 1.2/1.3 only with a valid, strong certificate; auth on the API; health
and metrics; nosniff, framing and referrer headers; a Stripe webhook that verifies its
signature. What is not, the classic launch-day findings:

- a reflected CORS origin, with credentials;
- a served /.env; a stack trace on malformed JSON; a version in the Server header;
- a session cookie without flags; no HSTS, no CSP;
- a certificate with 10 days left (a 90-day certificate whose renewal job stopped);
- plain HTTP redirects with a temporary 302 instead of a permanent 301/308;
- the webhook checks the signature but not the signed timestamp's age: replays are accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

DEMO_TOKEN_ENV = "PRODREADY_DEMO_TOKEN"
DEMO_TOKEN = "demo-token-7f3a9c2e41b8"  # what the demo accepts; passed to the run via env only
DEMO_WEBHOOK_SECRET_ENV = "PRODREADY_DEMO_WEBHOOK_SECRET"
DEMO_WEBHOOK_SECRET = "whsec_demo3b8e1f4c9a7d2e6f0b5c"  # the Stripe endpoint's signing secret; env only
WEBHOOK_PATH = "/api/stripe/webhook"
CERT_DAYS_LEFT = 10  # fewer than tls.min_days: tls.cert_expiry fails, everything else about it passes
MIN_DAYS = 14
CA_BUNDLE = "certs/demo-ca.pem"  # relative to the demo's directory (where prodready.toml goes)
# A client that connects and never finishes its handshake or request holds one thread this long.
SOCKET_TIMEOUT_S = 10.0

INDEX = (b"<!doctype html><html><head><title>Acme Agents</title></head>"
         b"<body><h1>Acme Agents</h1></body></html>")
METRICS = ("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
           'http_requests_total{method="GET",code="200"} 1027\n'
           "# HELP http_request_duration_seconds Latency.\n"
           "# TYPE http_request_duration_seconds histogram\n"
           'http_request_duration_seconds_bucket{le="0.1"} 1000\n'
           'http_request_duration_seconds_bucket{le="+Inf"} 1027\n'
           "http_request_duration_seconds_sum 31.2\nhttp_request_duration_seconds_count 1027\n")
TRACE = ('Traceback (most recent call last):\n  File "/srv/acme/api/chat.py", line 57, in post\n'
         "    payload = json.loads(self.body)\n"
         "json.decoder.JSONDecodeError: Expecting ',' delimiter: line 1 column 27 (char 26)\n")
ENV_FILE = b"# acme production\nAPP_ENV=production\nSENTRY_ENVIRONMENT=prod\nFEATURE_FLAGS=chat,agents\n"


def stripe_signature_ok(header: str, body: bytes, secret: str) -> bool:
    """Stripe's scheme, verified with the standard library: `t=<unix>,v1=<hex>[,v1=...]`,
    an HMAC-SHA256 over `<t>.<body>` keyed with the whole `whsec_...` secret.

    The demo's own implementation on purpose (not the plugin's signer): the checks must
    catch a receiver's mistakes, not agree with their own code.

    A defect, kept on purpose: the timestamp is part of the signed content, but its age is
    never compared with the clock (stripe's libraries refuse anything older than 300 s), so
    a captured request can be replayed forever.
    """
    pairs = [item.strip().partition("=") for item in header.split(",")]
    timestamp = next((value for key, _, value in pairs if key == "t"), "")
    candidates = [value for key, _, value in pairs if key == "v1" and value]
    if not timestamp.isdigit() or not candidates:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "gunicorn/20.1.0"  # a defect: the version is disclosed
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # keep the demo's output clean
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes | str, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        # Ready: nosniff, framing, referrer policy. Not ready: no HSTS, no CSP.
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "strict-origin-when-cross-origin")
        origin = self.headers.get("Origin")
        if origin:  # a defect: any origin is reflected, with credentials
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {DEMO_TOKEN}"

    def _body(self) -> bytes:
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        return self.rfile.read(length) if length else b""

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, INDEX, "text/html; charset=utf-8",
                       {"Set-Cookie": "session=8c1f0e2d9b7a; Path=/"})  # a defect: no flags
        elif path == "/api/health":
            self._send(200, json.dumps({"status": "ok", "checks": {"db": {"status": "up"}}}))
        elif path == "/version":
            self._send(200, json.dumps({"version": "2.3.1", "commit": "4e1d9ab"}))
        elif path == "/api/agents":
            if self._authorized():
                self._send(200, json.dumps([{"id": 1, "name": "support-bot"}]))
            else:
                self._send(401, '{"error": "unauthorized"}', headers={"WWW-Authenticate": "Bearer"})
        elif path == "/metrics":
            if self._authorized():
                self._send(200, METRICS, "text/plain; version=0.0.4")
            else:
                self._send(401, '{"error": "unauthorized"}')
        elif path == "/.env":  # a defect: a deploy shipped the .env file
            self._send(200, ENV_FILE, "text/plain")
        else:
            self._send(404, '{"error": "not found"}')

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_OPTIONS(self) -> None:
        self._send(204, b"", headers={"Access-Control-Allow-Methods": "GET, POST"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._body()
        if path == WEBHOOK_PATH:
            self._stripe_webhook(body)
        elif path != "/api/chat":
            self._send(404, '{"error": "not found"}')
        elif not self._authorized():
            self._send(401, '{"error": "unauthorized"}')
        else:
            try:
                json.loads(body)
            except ValueError:  # a defect: the framework's debug trace reaches the client
                self._send(500, TRACE, "text/plain")
                return
            self._send(200, '{"reply": "hello"}')

    def _stripe_webhook(self, body: bytes) -> None:
        # Ready: no signature, an empty one, the wrong secret or a tampered body get a 400.
        # Not ready: the signed timestamp's age is never checked (see stripe_signature_ok).
        header = self.headers.get("Stripe-Signature") or ""
        if not stripe_signature_ok(header, body, DEMO_WEBHOOK_SECRET):
            self._send(400, '{"error": "invalid signature"}')
            return
        try:
            event = json.loads(body)
        except ValueError:
            self._send(400, '{"error": "invalid payload"}')
            return
        kind = event.get("type", "") if isinstance(event, dict) else ""
        self._send(200, json.dumps({"received": True, "type": kind}))


class RedirectHandler(BaseHTTPRequestHandler):
    """Plain HTTP: every request is sent to the HTTPS site, but with a temporary redirect."""

    server_version = "gunicorn/20.1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        origin = cast(_QuietServer, self.server).redirect_origin
        self.send_response(302)  # a defect: temporary; browsers and crawlers keep asking over HTTP
        self.send_header("Location", origin + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self.do_GET()


class _QuietServer(ThreadingHTTPServer):
    """A threading server on loopback whose broken connections stay out of the demo's output.

    With a TLS context, the handshake happens in the connection's own thread (never in the
    accept loop, where one stalled client would stop the server), and a refused handshake
    (the legacy-TLS probes) just ends that connection.
    """

    daemon_threads = True
    redirect_origin = ""

    def __init__(self, handler: Callable[..., BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.tls = tls

    def server_bind(self) -> None:
        # HTTPServer's own would ask socket.getfqdn('127.0.0.1'): a reverse lookup the
        # demo does not need (and that may leave loopback, for a DNS server).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        sock = cast(socket.socket, request)
        sock.settimeout(SOCKET_TIMEOUT_S)
        try:
            conn = self.tls.wrap_socket(sock, server_side=True)
        except OSError:  # ssl.SSLError included: a refused or broken handshake
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # resets, timeouts, TLS alerts: the client's doing
            return
        super().handle_error(request, client_address)


def _tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS 1.2 and 1.3 at OpenSSL's default security level: legacy versions are refused."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class DemoServer:
    """The demo service on ephemeral 127.0.0.1 ports, in background threads: HTTPS for the
    API (base URL https://localhost:PORT) and plain HTTP for the redirect.

    `directory` receives the throwaway CA, the leaf and its key (under certs/), and
    `write_config()` puts the prodready.toml beside them; without one, a temporary directory
    is made and removed on exit.
    """

    def __init__(self, directory: Path | None = None) -> None:
        from pytest_prodready.demo.certs import mint

        # Without a directory: a temporary one, removed on exit (or by its finalizer, when
        # start-up fails half-way).
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="prodready-demo-")
            directory = Path(self._own_dir.name)
        self.directory = directory
        self.pki = mint(self.directory / Path(CA_BUNDLE).parent, days_left=CERT_DAYS_LEFT)
        self.httpsd = _QuietServer(DemoHandler, _tls_context(self.pki.cert_file, self.pki.key_file))
        try:
            self.httpd = _QuietServer(RedirectHandler)
        except BaseException:
            self.httpsd.server_close()
            raise
        self.httpd.redirect_origin = self.url
        self.threads = [threading.Thread(target=server.serve_forever, daemon=True,
                                         name=f"prodready-demo-{name}")
                        for name, server in (("https", self.httpsd), ("http", self.httpd))]

    @property
    def url(self) -> str:
        """The base URL: HTTPS, by the name the certificate is for."""
        return f"https://localhost:{self.httpsd.server_port}"

    @property
    def http_url(self) -> str:
        """Where plain HTTP answers (tls.http_url)."""
        return f"http://localhost:{self.httpd.server_port}/"

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    @property
    def env(self) -> dict[str, str]:
        """The secrets the run needs, by the env var names the config gives."""
        return {DEMO_TOKEN_ENV: DEMO_TOKEN, DEMO_WEBHOOK_SECRET_ENV: DEMO_WEBHOOK_SECRET}

    def config(self) -> str:
        return demo_config(self.url, http_url=self.http_url, ca_bundle=CA_BUNDLE)

    def write_config(self) -> Path:
        """prodready.toml in the demo's directory (ca_bundle is relative to it)."""
        path = self.directory / "prodready.toml"
        path.write_text(self.config(), encoding="utf-8")
        return path

    def __enter__(self) -> DemoServer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.httpsd, self.httpd):
            server.shutdown()
            server.server_close()
        if self._own_dir:
            self._own_dir.cleanup()


def demo_config(url: str, *, http_url: str, ca_bundle: str) -> str:
    """The prodready.toml a team would write for this service."""
    return f"""# prodready.toml for the demo service
base_url = "{url}"
allowed_origins = ["https://app.acme.example"]
protected = ["/api/agents", "POST /api/chat"]
health = ["/api/health"]
max_concurrency = 8

[auth]
token_env = "{DEMO_TOKEN_ENV}"

[metrics]
path = "/metrics"
token_env = "{DEMO_TOKEN_ENV}"

[errors]
json_endpoints = ["POST /api/chat"]

[tls]
ca_bundle = "{ca_bundle}"    # the demo's throwaway CA, minted at start-up
http_url = "{http_url}"
min_days = {MIN_DAYS}

[webhooks.stripe]
path = "{WEBHOOK_PATH}"
scheme = "stripe"
secret_env = "{DEMO_WEBHOOK_SECRET_ENV}"
tolerance_s = 300
"""
