"""Real rate limiters on loopback, and targets with a known latency, for ratelimit.* and perf.*.

- `flask_limited(mode)`: a Flask app with `POST /api/auth/login` behind flask-limiter
  (the real library, in-memory storage), in the modes the tests need:
  'right' (5 per minute, headers on), 'off' (no limiter: a counting target), 'loose'
  (1000 per minute), 'silent' (5 per minute, headers off: a 429 without Retry-After),
  'lying' (no limiter, but advertises X-RateLimit-Limit 5 with a falling Remaining),
  'overstated' (enforces 5 per minute, advertises a quota of 10 per minute),
  'draft' (5 per minute, advertised in the current IETF draft's RateLimit-Policy/RateLimit
  fields instead of flask-limiter's X-RateLimit-*), 'generous' (enforces 7 per minute: more
  than the configured 5 but within the slack). Every request is logged.
- `nginx_limited()`: nginx from Debian's packages with `limit_req` zones on its own ports:
  'right' (5r/m, burst 4 nodelay, limit_req_status 429 + Retry-After), 'default'
  (limit_req at nginx's default status 503), 'loose' (100r/s, burst 1000). Started in the
  foreground with its own prefix and config, stopped by its PID.
- `delayed(mean_ms, spread_ms)`: GET /slow sleeps a delay drawn uniformly from
  mean ± spread (seeded), and records each delay it was told to add: the truth the latency
  check is compared with. GET /flaky answers 500 to every 10th request.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from tests.targets.webapp import serve_app
from tests.tls_servers import free_ports

LOGIN = "/api/auth/login"
FLASK_MODES = ("right", "off", "loose", "silent", "lying", "draft", "generous", "overstated")


@dataclass
class Limited:
    url: str
    log: list[str] = field(default_factory=list)  # 'METHOD /path' of every request received

    def count(self, path: str = LOGIN) -> int:
        return sum(1 for line in self.log if line.split(" ", 1)[1] == path)


def make_flask_limited(mode: str, log: list[str]) -> Flask:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    if mode not in FLASK_MODES:
        raise ValueError(mode)
    app = Flask(f"limited_{mode}")
    limits = {"right": "5 per minute", "loose": "1000 per minute", "silent": "5 per minute",
              "draft": "5 per minute", "generous": "7 per minute", "overstated": "5 per minute"}
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://",
                      headers_enabled=mode not in ("silent", "draft", "overstated"))

    @app.before_request
    def record() -> None:
        with lock:
            log.append(f"{request.method} {request.path}")

    lock = threading.Lock()
    lied = {"remaining": 5}

    def login() -> Response:
        response = Response('{"error": "invalid credentials"}', status=401, mimetype="application/json")
        if mode == "lying":
            with lock:
                lied["remaining"] = max(lied["remaining"] - 1, 0)
                left = lied["remaining"]
            response.headers["X-RateLimit-Limit"] = "5"
            response.headers["X-RateLimit-Remaining"] = str(left)
            response.headers["X-RateLimit-Reset"] = str(int(time.time()) + 60)
        return response

    view = login
    if mode in limits:
        view = limiter.limit(limits[mode])(login)
    app.add_url_rule(LOGIN, "login", view, methods=["POST"])

    if mode == "draft":
        @app.after_request
        def draft_headers(response: Response) -> Response:
            # The current draft's fields, from flask-limiter's own view of the window.
            window = limiter.current_limit
            if window is not None:
                reset = max(int(window.reset_at - time.time()), 0)
                response.headers["RateLimit-Policy"] = '"login";q=5;w=60'
                response.headers["RateLimit"] = f'"login";r={window.remaining};t={reset}'
                if response.status_code == 429:
                    response.headers["Retry-After"] = str(reset)
            return response

    if mode == "overstated":
        @app.after_request
        def overstated_headers(response: Response) -> Response:
            window = limiter.current_limit
            if window is not None:
                response.headers["X-RateLimit-Limit"] = "10"
                response.headers["X-RateLimit-Remaining"] = str(window.remaining + 5)
                response.headers["Retry-After"] = "60"
            return response

    @app.route("/")
    def index() -> str:
        return "ok"

    return app


@contextmanager
def flask_limited(mode: str) -> Iterator[Limited]:
    log: list[str] = []
    with serve_app(make_flask_limited(mode, log)) as url:
        yield Limited(url, log)


# -- nginx limit_req ---------------------------------------------------------------------------
NGINX_ROLES = ("right", "default", "loose")


@dataclass
class NginxLimited:
    ports: dict[str, int]
    prefix: Path

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}"

    def count(self, role: str, path: str = "/limited") -> int:
        log = self.prefix / f"access-{role}.log"
        if not log.exists():
            return 0
        return sum(1 for line in log.read_text().splitlines() if f" {path} " in line)


def _nginx_config(prefix: Path, ports: dict[str, int]) -> str:
    zones = {"right": "rate=5r/m", "default": "rate=5r/m", "loose": "rate=100r/s"}
    limits = {
        "right": "limit_req zone=right burst=4 nodelay; limit_req_status 429;\n"
                 "      add_header Retry-After 60 always;",
        "default": "limit_req zone=default burst=4 nodelay;",
        "loose": "limit_req zone=loose burst=1000 nodelay; limit_req_status 429;",
    }
    servers = "\n".join(f"""
  server {{
    listen 127.0.0.1:{ports[role]};
    access_log {prefix}/access-{role}.log;
    location / {{
      {limits[role]}
      # A content handler (limit_req runs before it; `return` would run before limit_req), and
      # no files: the workers run as another user, who cannot read pytest's temp folders.
      empty_gif;
    }}
  }}""" for role in NGINX_ROLES)
    zone_lines = "\n".join(f"  limit_req_zone $binary_remote_addr zone={role}:1m {zones[role]};"
                           for role in NGINX_ROLES)
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  default_type text/plain;
{zone_lines}
{servers}
}}
"""


@contextmanager
def nginx_limited(prefix: Path) -> Iterator[NginxLimited]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise RuntimeError("nginx is not installed: run scripts/install-test-deps.sh")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    ports = dict(zip(NGINX_ROLES, free_ports(len(NGINX_ROLES)), strict=True))
    conf = prefix / "nginx.conf"
    conf.write_text(_nginx_config(prefix, ports))
    proc = subprocess.Popen([binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        until = time.monotonic() + 10
        waiting = set(ports.values())
        while waiting:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"nginx exited with {proc.returncode}: {err}")
            if time.monotonic() > until:
                raise RuntimeError(f"nginx did not open ports {sorted(waiting)} within 10s")
            for port in list(waiting):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    waiting.discard(port)
            time.sleep(0.02)
        yield NginxLimited(ports, prefix)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


# -- a known latency ---------------------------------------------------------------------------
@dataclass
class Delayed:
    url: str
    delays_ms: list[float] = field(default_factory=list)  # what /slow was told to add, in order


def make_delayed(mean_ms: float, spread_ms: float, seed: int, delays: list[float]) -> Flask:
    app = Flask("delayed")
    rng = random.Random(seed)
    lock = threading.Lock()
    counter = {"flaky": 0}

    @app.route("/slow")
    def slow() -> str:
        with lock:
            delay = rng.uniform(mean_ms - spread_ms, mean_ms + spread_ms)
            delays.append(delay)
        time.sleep(delay / 1000)
        return "ok"

    @app.route("/flaky")
    def flaky() -> Any:
        with lock:
            counter["flaky"] += 1
            n = counter["flaky"]
        return ("broken", 500) if n % 10 == 0 else "ok"

    @app.route("/")
    def index() -> str:
        return "ok"

    return app


@contextmanager
def delayed(mean_ms: float = 40, spread_ms: float = 5, seed: int = 7) -> Iterator[Delayed]:
    delays: list[float] = []
    with serve_app(make_delayed(mean_ms, spread_ms, seed, delays)) as url:
        yield Delayed(url, delays)
