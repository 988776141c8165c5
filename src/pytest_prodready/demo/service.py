"""A half-ready demo API on loopback: some checks pass, some fail, all with real evidence.

Built on the standard library's threading HTTP server so the demo needs nothing beyond
the plugin's own dependencies. Its defects are the classic launch-day findings: a
reflected CORS origin, a served /.env, a stack trace on malformed JSON, a session cookie
without flags, a version in the Server header.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEMO_TOKEN_ENV = "PRODREADY_DEMO_TOKEN"
DEMO_TOKEN = "demo-token-7f3a9c2e41b8"  # what the demo accepts; passed to the run via env only

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


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "gunicorn/20.1.0"  # a defect: the version is disclosed
    sys_version = ""
    protocol_version = "HTTP/1.1"

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
        if path != "/api/chat":
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


class DemoServer:
    """The demo service on an ephemeral 127.0.0.1 port, in a background thread."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), DemoHandler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def __enter__(self) -> DemoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def demo_config(url: str) -> str:
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
"""
