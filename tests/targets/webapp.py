"""A real Flask application whose defects are switched on by name.

With no defects it is a well-configured service: the built-in suite passes on it. Each
defect breaks exactly one thing a check looks for, so every check can be shown to FAIL on
the defect and PASS without it. Served by Werkzeug's real threaded server on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

VALID_TOKEN = "tok-valid-3b8f1c9a7d2e"
METRICS_TOKEN = "tok-metrics-91ad4c0e55"
ALLOWED_ORIGIN = "https://app.example.com"

DEFECTS = frozenset({
    "cors_reflect",            # echoes any Origin, with credentials
    "cors_null",               # allows Origin: null
    "cors_wildcard_credentials",  # ACAO * with ACAC true
    "cors_refuses_allowed",    # does not allow the configured origin either
    "no_hsts", "short_hsts", "no_nosniff", "frameable", "no_csp", "weak_csp",
    "csp_report_only", "unsafe_referrer", "no_referrer_policy", "version_disclosure",
    "insecure_cookie",         # session cookie without Secure/HttpOnly/SameSite
    "open_api",                # /api/agents answers 200 to anyone
    "api_500",                 # /api/agents errors for anonymous callers
    "accepts_any_token",       # any bearer token is accepted
    "login_redirect",          # anonymous /api/agents gets 302 to /login (a refusal)
    "redirect_home",           # anonymous /api/agents gets 302 to / (not a refusal)
    "env_served",              # /.env is served (real KEY=value content)
    "git_served",              # /.git/config is served
    "spa",                     # every unknown path answers 200 with the SPA's index page
    "metrics_public",          # /metrics answers without a token
    "swagger_public",          # /docs serves Swagger UI
    "secret_leak",             # /api/health includes a database URL with its password
    "stack_trace",             # malformed JSON -> 500 with a Python traceback
    "malformed_200",           # malformed JSON -> 200 (accepted)
    "debug_page",              # malformed JSON -> 500 debug page echoing the request headers
    "internal_host",           # a header names a private backend address
    "unhealthy",               # /api/health reports the database down
    "health_500",              # /api/health answers 503
    "slow_health",             # /api/health takes 400 ms
    "no_version",              # no version endpoint anywhere
    "bad_metrics",             # /metrics is not Prometheus text
    "no_request_metrics",      # /metrics has no request metrics
    "soft_404",                # unknown paths answer 200 with a JSON error
})

INDEX = b"<!doctype html><html><head><title>App</title></head><body><div id=root></div></body></html>"
ENV_FILE = b"DATABASE_URL=postgres://app:hunter2hunter2@db.internal:5432/app\nDEBUG=false\n"
TRACE = ('Traceback (most recent call last):\n  File "/srv/app/views.py", line 42, in chat\n'
         '    data = json.loads(body)\njson.decoder.JSONDecodeError: Expecting value: line 1 column 27\n')
GOOD_METRICS = ("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
                'http_requests_total{method="GET",code="200"} 1027\n'
                "# HELP process_cpu_seconds_total CPU time.\n# TYPE process_cpu_seconds_total counter\n"
                "process_cpu_seconds_total 12.5\n")
NO_REQUEST_METRICS = ("# HELP process_cpu_seconds_total CPU time.\n"
                      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Served:
    url: str
    defects: frozenset[str]
    log: list[Seen] = field(default_factory=list)


def make_app(defects: Iterable[str] = (), delay_ms: float = 0, log: list[Seen] | None = None) -> Flask:
    active = frozenset(defects)
    unknown = active - DEFECTS
    if unknown:
        raise ValueError(f"unknown defects: {sorted(unknown)}")
    app = Flask("prodready_test_target")
    on = active.__contains__

    @app.before_request
    def record_and_delay() -> None:
        if log is not None:
            log.append(Seen(request.method, request.full_path.rstrip("?"), dict(request.headers)))
        if delay_ms:
            time.sleep(delay_ms / 1000)

    @app.after_request
    def headers(resp: Response) -> Response:
        h = resp.headers
        if not on("no_hsts"):
            long_hsts = "max-age=31536000; includeSubDomains"
            h["Strict-Transport-Security"] = "max-age=86400" if on("short_hsts") else long_hsts
        if not on("no_nosniff"):
            h["X-Content-Type-Options"] = "nosniff"
        if not on("frameable"):
            h["X-Frame-Options"] = "DENY"
        csp = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'" if on("weak_csp")
               else "default-src 'self'; frame-ancestors 'none'")
        if on("csp_report_only"):
            h["Content-Security-Policy-Report-Only"] = csp
        elif not on("no_csp"):
            h["Content-Security-Policy"] = csp
        if on("unsafe_referrer"):
            h["Referrer-Policy"] = "unsafe-url"
        elif not on("no_referrer_policy"):
            h["Referrer-Policy"] = "strict-origin-when-cross-origin"
        if on("version_disclosure"):
            h["X-Powered-By"] = "Express 4.17.1"
            h["Server"] = "nginx/1.18.0"
        if on("internal_host"):
            h["X-Backend-Server"] = "10.0.3.7:8080"
        origin = request.headers.get("Origin")
        if origin:
            if on("cors_wildcard_credentials"):
                h["Access-Control-Allow-Origin"] = "*"
                h["Access-Control-Allow-Credentials"] = "true"
            elif on("cors_reflect") or (on("cors_null") and origin == "null"):
                h["Access-Control-Allow-Origin"] = origin
                h["Access-Control-Allow-Credentials"] = "true"
            elif origin == ALLOWED_ORIGIN and not on("cors_refuses_allowed"):
                h["Access-Control-Allow-Origin"] = origin
                h["Access-Control-Allow-Credentials"] = "true"
                h["Vary"] = "Origin"
        return resp

    def authorized(token: str = VALID_TOKEN) -> bool:
        value = request.headers.get("Authorization", "")
        if on("accepts_any_token") and value.startswith("Bearer "):
            return True
        return value == f"Bearer {token}"

    def refuse() -> Response:
        return Response(json.dumps({"error": "unauthorized"}), 401, mimetype="application/json",
                        headers={"WWW-Authenticate": "Bearer"})

    @app.route("/")
    def index() -> Response:
        resp = Response(INDEX, mimetype="text/html")
        if on("insecure_cookie"):
            resp.set_cookie("sessionid", "abc123def456")
        else:
            resp.set_cookie("sessionid", "abc123def456", secure=True, httponly=True, samesite="Lax")
        return resp

    @app.route("/api/agents", methods=["GET", "OPTIONS"])
    def agents() -> Response:
        if request.method == "OPTIONS":
            return Response(status=204)
        if on("api_500") and "Authorization" not in request.headers:
            return Response("internal error", 500)
        if "Authorization" not in request.headers and on("login_redirect"):
            return Response("", 302, headers={"Location": "/login?next=/api/agents"})
        if "Authorization" not in request.headers and on("redirect_home"):
            return Response("", 302, headers={"Location": "/"})
        if not on("open_api") and not authorized():
            return refuse()
        return Response(json.dumps([{"id": 1, "name": "agent"}]), mimetype="application/json")

    @app.route("/api/chat", methods=["POST"])
    def chat() -> Response:
        if not authorized():
            return refuse()
        try:
            json.loads(request.get_data())
        except ValueError:
            if on("stack_trace"):
                return Response(TRACE, 500, mimetype="text/plain")
            if on("debug_page"):
                echoed = "".join(f"{k}: {v}\n" for k, v in request.headers.items())
                return Response(f"Internal Server Error\nRequest headers:\n{echoed}", 500,
                                mimetype="text/plain")
            if on("malformed_200"):
                return Response('{"ok": true}', 200, mimetype="application/json")
            return Response('{"error": "invalid JSON"}', 400, mimetype="application/json")
        return Response('{"reply": "hi"}', mimetype="application/json")

    @app.route("/api/health")
    def health() -> Response:
        if on("slow_health"):
            time.sleep(0.4)
        if on("health_500"):
            return Response('{"status": "down"}', 503, mimetype="application/json")
        body: dict[str, Any] = {"status": "ok", "checks": {"db": {"status": "up"}}}
        if on("unhealthy"):
            body = {"status": "ok", "checks": {"db": {"status": "down"}}}
        if on("secret_leak"):
            body["database"] = "postgresql://app:hunter2hunter2@db.internal:5432/app"
        return Response(json.dumps(body), mimetype="application/json")

    @app.route("/version")
    def version() -> Response:
        if on("no_version"):
            return not_found(None)
        return Response('{"version": "1.4.2", "commit": "9f1c2ab"}', mimetype="application/json")

    @app.route("/metrics")
    def metrics() -> Response:
        if not on("metrics_public") and not authorized(METRICS_TOKEN):
            return refuse()
        if on("bad_metrics"):
            return Response("<html>metrics are here somewhere</html>", mimetype="text/html")
        text = NO_REQUEST_METRICS if on("no_request_metrics") else GOOD_METRICS
        return Response(text, mimetype="text/plain; version=0.0.4")

    @app.route("/docs")
    def docs() -> Response:
        if on("swagger_public"):
            return Response('<html><div id="swagger-ui"></div><script src="swagger-ui-bundle.js">'
                            "</script></html>", mimetype="text/html")
        return not_found(None)

    @app.route("/.env")
    def env_file() -> Response:
        if on("env_served"):
            return Response(ENV_FILE, mimetype="text/plain")
        return not_found(None)

    @app.route("/.git/config")
    def git_config() -> Response:
        if on("git_served"):
            return Response(b"[core]\n\trepositoryformatversion = 0\n", mimetype="text/plain")
        return not_found(None)

    @app.errorhandler(404)
    def not_found(_exc: object) -> Response:
        if on("spa"):
            return Response(INDEX, 200, mimetype="text/html")
        if on("soft_404"):
            return Response('{"error": "not found"}', 200, mimetype="application/json")
        return Response('{"error": "not found"}', 404, mimetype="application/json")

    return app


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler, without its version in Server and without access logs."""

    server_version = "app"
    sys_version = ""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


logging.getLogger("werkzeug").setLevel(logging.ERROR)


@contextmanager
def serve_app(app: Flask, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve any Flask app on an ephemeral port of `host` (loopback); yields its base URL."""
    server = make_server(host, 0, app, threaded=True, request_handler=QuietHandler)
    # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve(defects: Iterable[str] = (), delay_ms: float = 0) -> Iterator[Served]:
    """Serve the webapp with these defects on an ephemeral 127.0.0.1 port for the block."""
    log: list[Seen] = []
    with serve_app(make_app(defects, delay_ms, log)) as url:
        yield Served(url, frozenset(defects), log)
