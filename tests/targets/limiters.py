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
- `delayed(mean_ms, spread_ms)`: a stdlib server in its own process; GET /slow sleeps a
  delay drawn uniformly from mean ± spread, seeded by the request's X-Prodready-Seq number:
  the truth the latency check is compared with. GET /flaky answers 500 to every 10th;
  GET /moved answers 302 to the URL in its `to` query; GET /counts (not counted) answers
  the number of requests each path received, as JSON: a counting target.
"""

from __future__ import annotations

import random
import shutil
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
    ports = dict(zip(NGINX_ROLES, free_ports(len(NGINX_ROLES)), strict=True))
    with _run_nginx(prefix, _nginx_config(prefix, ports), ports):
        yield NginxLimited(ports, prefix)


@contextmanager
def _run_nginx(prefix: Path, config: str, ports: dict[str, int]) -> Iterator[None]:
    """nginx with its own prefix and config (tests.tls_servers.nginx_process)."""
    from tests.tls_servers import nginx_process

    with nginx_process(prefix, config, ports):
        yield


# -- nginx serving a site with static assets (perf.compression, perf.static_caching) ----------
STATIC_ROLES = ("good", "bare", "short")
PAGE = "<!doctype html><title>Acme</title>" + "<p>Acme sells shoes and socks.</p>" * 120
ASSETS = {"app.3f9c1a7e.js": "console.log('acme');\n" * 100, "logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
          "site.css": "body { color: #333; }\n" * 80}


@dataclass
class NginxStatic:
    ports: dict[str, int]

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}"


def _static_config(prefix: Path, root: Path, ports: dict[str, int]) -> str:
    roles = {
        # gzip for text, a year + immutable for fingerprinted names, a day for the rest.
        "good": """gzip on; gzip_min_length 1024;
      gzip_types text/css application/javascript image/svg+xml;
      location /assets/ {
        add_header Cache-Control "public, max-age=86400";
        location ~ "\\.[0-9a-f]{8}\\." { add_header Cache-Control "public, max-age=31536000, immutable"; }
      }""",
        # nginx's defaults: no gzip, no Cache-Control (ETag and Last-Modified are sent).
        "bare": "",
        # compressed, but assets cached for an hour and the fingerprinted one revalidated.
        "short": """gzip on; gzip_types text/css application/javascript;
      location /assets/ {
        expires 1h;
        location ~ "\\.[0-9a-f]{8}\\." { add_header Cache-Control "no-cache"; }
      }""",
    }
    servers = "\n".join(f"""
    server {{
      listen 127.0.0.1:{ports[role]};
      root {root};
      access_log off;
      {roles[role]}
    }}""" for role in STATIC_ROLES)
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
{servers}
}}
"""


@contextmanager
def nginx_static(prefix: Path) -> Iterator[NginxStatic]:
    import tempfile

    # nginx's workers run as another user: the site lives in a world-readable folder of its
    # own (pytest's temp folders are private to their owner).
    root = Path(tempfile.mkdtemp(prefix="prodready-site-"))
    try:
        root.chmod(0o755)
        (root / "assets").mkdir(mode=0o755)
        (root / "index.html").write_text(PAGE)
        for name, text in ASSETS.items():
            (root / "assets" / name).write_text(text)
        for path in [root / "index.html", *(root / "assets").iterdir()]:
            path.chmod(0o644)
        ports = dict(zip(STATIC_ROLES, free_ports(len(STATIC_ROLES)), strict=True))
        with _run_nginx(prefix, _static_config(prefix, root, ports), ports):
            yield NginxStatic(ports)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- a known latency ---------------------------------------------------------------------------
# Its own process (no GIL shared with the client under test), stdlib HTTP/1.1 with keep-alive.
# The delay of a request is a function of its X-Prodready-Seq number n (uniform in
# mean +- spread, seeded by n): the test knows the truth without asking the server.
DELAYED_SERVER = r"""
import json, random, sys, time, threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MEAN, SPREAD = float(sys.argv[1]), float(sys.argv[2])
flaky = {"n": 0}
counts = Counter()
lock = threading.Lock()

def delay_ms(seq):
    # random.Random(seq) for an int is seeded by it; a float from random() makes a fresh draw.
    return MEAN - SPREAD + 2 * SPREAD * random.Random(seq).random()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: with Nagle on, a keep-alive client (wrk) waits
    # for the delayed ACK, 40 ms a response.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        status, body, extra = 200, b"ok", {}
        seq = self.headers.get("X-Prodready-Seq")
        path, _, query = self.path.partition("?")
        if path == "/counts":
            body = json.dumps(counts).encode()
        else:
            with lock:
                counts[path] += 1
        if path == "/moved":
            status, extra = 302, {"Location": parse_qs(query).get("to", ["/"])[0]}
        elif self.path == "/slow":
            # Without a sequence number (wrk), a fresh draw from the same distribution.
            n = int(seq.rpartition(".")[2]) if seq else None
            time.sleep((delay_ms(n) if n is not None else delay_ms(random.random())) / 1000)
        elif self.path == "/flaky":
            with lock:
                flaky["n"] += 1
                status = 500 if flaky["n"] % 10 == 0 else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def delay_ms(mean_ms: float, spread_ms: float, seq: int) -> float:
    """The delay the delayed target adds to request number `seq` (as the server computes it)."""
    return mean_ms - spread_ms + 2 * spread_ms * random.Random(seq).random()


@dataclass
class Delayed:
    url: str
    mean_ms: float
    spread_ms: float

    def counts(self) -> dict[str, int]:
        """How many requests each path received so far."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/counts", timeout=5) as answer:  # loopback only
            return dict(json.load(answer))

    def truth(self, requests: int) -> list[float]:
        """The delays of requests 1..N (warm-up requests have negative numbers)."""
        return [delay_ms(self.mean_ms, self.spread_ms, n) for n in range(1, requests + 1)]


@contextmanager
def delayed(mean_ms: float = 40, spread_ms: float = 5) -> Iterator[Delayed]:
    import sys

    proc = subprocess.Popen([sys.executable, "-c", DELAYED_SERVER, str(mean_ms), str(spread_ms)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Delayed(f"http://127.0.0.1:{port}", mean_ms, spread_ms)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


# -- express-rate-limit (node, from npm) ---------------------------------------------------------
EXPRESS_DIR = Path(__file__).parent / "express_limiter"
EXPRESS_MODES = ("draft-7", "draft-8", "legacy", "loose", "off")


def _express_installed() -> None:
    """npm ci (from package-lock.json) unless express-rate-limit is in node_modules."""
    from tests.targets.frameworks import npm_installed

    npm_installed(EXPRESS_DIR, "express-rate-limit", "ci")


@contextmanager
def express_limited(mode: str) -> Iterator[str]:
    from tests.targets.frameworks import serve_process

    if mode not in EXPRESS_MODES:
        raise ValueError(mode)
    _express_installed()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is missing: run scripts/install-test-deps.sh (installs node and npm)")
    with serve_process([node, "app.js"], env={"LIMIT_MODE": mode}, cwd=EXPRESS_DIR) as url:
        yield url


# -- account lockout ----------------------------------------------------------------------------
LOCKOUT_USER = "qa-lockout@example.com"
LOCKOUT_PASSWORD = "correct-horse-battery-staple-41"
ADMIN_TOKEN = "tok-admin-7c1e93d0a4"
LOCKOUT_MODES = ("locks", "never", "success_unlocks", "forever")


@dataclass
class Lockout:
    url: str
    log: list[str] = field(default_factory=list)


def make_lockout(mode: str, lock_s: float, log: list[str]) -> Flask:
    """POST /api/auth/login (JSON username/password). 'locks': 5 failures lock the account for
    `lock_s` (423 + Retry-After, even for the right password); 'never': no lockout;
    'success_unlocks': locks wrong passwords out, but the right one still logs in (and resets
    the count); 'forever': locks until POST /api/admin/unlock with the admin token."""
    if mode not in LOCKOUT_MODES:
        raise ValueError(mode)
    app = Flask(f"lockout_{mode}")
    lock = threading.Lock()
    state = {"failures": 0, "locked_until": 0.0}

    @app.post("/api/auth/login")
    def login() -> Any:
        data = request.get_json(silent=True) or {}
        right = data.get("username") == LOCKOUT_USER and data.get("password") == LOCKOUT_PASSWORD
        with lock:
            log.append("right" if right else "wrong")
            now = time.monotonic()
            locked = state["locked_until"] > now
            if locked and not (mode == "success_unlocks" and right):
                wait = max(int(state["locked_until"] - now + 0.999), 1)
                return {"error": "account locked"}, 423, {"Retry-After": str(wait)}
            if right:
                state["failures"] = 0
                return {"token": "session-ok"}, 200
            state["failures"] += 1
            if mode != "never" and state["failures"] >= 5:
                state["locked_until"] = now + (1e9 if mode == "forever" else lock_s)
            return {"error": "invalid credentials"}, 401

    @app.post("/api/admin/unlock")
    def unlock() -> Any:
        if request.headers.get("Authorization") != f"Bearer {ADMIN_TOKEN}":
            return {"error": "forbidden"}, 403
        with lock:
            state.update(failures=0, locked_until=0.0)
        return {"unlocked": True}, 200

    @app.route("/")
    def index() -> str:
        return "ok"

    return app


@contextmanager
def lockout_target(mode: str, lock_s: float = 1.0) -> Iterator[Lockout]:
    log: list[str] = []
    with serve_app(make_lockout(mode, lock_s, log)) as url:
        yield Lockout(url, log)


# -- wrk, the peer tool --------------------------------------------------------------------------
WRK_P95 = """
done = function(summary, latency, requests)
  io.write(string.format("P95_US %d\\nREQUESTS %d\\nERRORS %d\\n", latency:percentile(95),
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read))
end
"""


def wrk_p95_ms(url: str, connections: int, seconds: int, workdir: Path) -> tuple[float, int]:
    """wrk's own p95 (ms) and request count for GET `url` at `connections` connections."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: run scripts/install-test-deps.sh")
    script = workdir / "p95.lua"
    script.write_text(WRK_P95)
    out = subprocess.run([binary, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script),
                          url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    values = dict(line.split() for line in out.splitlines() if line.startswith(("P95_US", "REQUESTS")))
    return int(values["P95_US"]) / 1000, int(values["REQUESTS"])
