"""The plugin is pointed at real systems: prove it is the most careful client on the network.

Every test here runs against real servers on loopback (Flask served by Werkzeug) and looks
at what those servers received: passivity, the request budget, redirects and credentials,
secret masking in every output, a target that is down, and control characters.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from conftest import METRICS_TOKEN_ENV, TOKEN_ENV, webapp_toml
from flask import Flask, Response, request

from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import BudgetExceeded
from pytest_prodready.masking import Masker
from pytest_prodready.target import Probe, Target
from tests.targets.webapp import (
    ALLOWED_ORIGIN,
    METRICS_TOKEN,
    VALID_TOKEN,
    Seen,
    Served,
    make_app,
    serve_app,
)

FOREIGN_HOST = "127.0.0.2"  # loopback too (the whole 127/8 is), but another host to the client


# -- real servers ---------------------------------------------------------------------------
def recorded(app: Flask, log: list[Seen]) -> Flask:
    """Record every request the app receives (method, path with query, headers)."""

    @app.before_request
    def record() -> None:
        log.append(Seen(request.method, request.full_path.rstrip("?"), dict(request.headers)))

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def output_of(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


def run_prodready(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--prodready", "-p", "no:cacheprovider", *args)


# -- 1. passive mode is proven passive -----------------------------------------------------
@dataclass(frozen=True)
class Hit:
    """One request as the target saw it, with its body (the webapp's log has no bodies)."""

    method: str
    path: str
    authorization: str | None
    body: bytes

    def describe(self) -> str:
        auth = self.authorization
        who = ("anonymous" if auth is None else "VALID credentials" if VALID_TOKEN in auth
               else "forged credentials")
        body = f", body {self.body[:40]!r}" if self.body else ""
        return f"{self.method} {self.path} ({who}{body})"


PROTECTED = ["GET /api/agents", "POST /api/chat", "DELETE /api/agents/1", "PATCH /api/agents/1"]
JSON_ENDPOINTS = ["POST /api/chat"]


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def must_be_refused(hit: Hit) -> bool:
    """A state-changing request a correct target refuses, which passive mode may send."""
    endpoint = f"{hit.method} {hit.path.split('?', 1)[0]}"
    if endpoint in PROTECTED and (hit.authorization or "") != f"Bearer {VALID_TOKEN}":
        return True  # auth.*: without valid credentials
    return endpoint in JSON_ENDPOINTS and not is_json(hit.body)  # errors.malformed_input_is_4xx


@contextmanager
def counting_webapp(*defects: str) -> Iterator[tuple[str, list[Seen], list[Hit]]]:
    """The webapp (with its own log), plus endpoints for DELETE/PATCH and a body recorder."""
    log: list[Seen] = []
    hits: list[Hit] = []
    app = make_app(defects, log=log)

    @app.before_request
    def record_body() -> None:
        hits.append(Hit(request.method, request.full_path.rstrip("?"),
                        request.headers.get("Authorization"), request.get_data(cache=True)))

    @app.route("/api/agents/<int:agent>", methods=["DELETE", "PATCH"])
    def change_agent(agent: int) -> Response:
        if request.headers.get("Authorization") != f"Bearer {VALID_TOKEN}":
            return Response('{"error": "unauthorized"}', 401, mimetype="application/json")
        return Response(status=204)

    with serve_app(app) as url:
        yield url, log, hits


@pytest.mark.parametrize("defects", [(), ("open_api", "accepts_any_token", "malformed_200", "spa")],
                         ids=["well-configured", "defective"])
def test_default_run_sends_only_read_requests_and_must_be_refused_ones(
        pytester: pytest.Pytester, webapp_env: None, defects: tuple[str, ...]) -> None:
    with counting_webapp(*defects) as (url, log, hits):
        toml = webapp_toml(url).replace(
            'protected = ["/api/agents", "POST /api/chat"]', f"protected = {json.dumps(PROTECTED)}")
        assert json.dumps(PROTECTED) in toml
        pytester.makefile(".toml", prodready=toml)
        result = run_prodready(pytester)

    sent = "\n  ".join(hit.describe() for hit in hits)
    assert len(log) == len(hits) > 0
    if not defects:
        assert result.ret == pytest.ExitCode.OK, output_of(result)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) >= 20, output_of(result)
    unsafe = [h for h in hits if h.method not in ("GET", "HEAD", "OPTIONS") and not must_be_refused(h)]
    assert not unsafe, ("passive mode sent state-changing requests a correct target would honour: "
                        + "; ".join(h.describe() for h in unsafe) + f"\nall {len(hits)} requests:\n  {sent}")
    # Concurrent requests append to the two lists in their own order: compare as multisets.
    assert sorted(s.method for s in log) == sorted(h.method for h in hits)
    assert len(log) <= int(DEFAULTS["request_budget"]), f"{len(log)} requests:\n  {sent}"
    # The refused-by-design requests really were sent (the proof covers them), anonymously.
    assert any(h.method == "DELETE" and h.authorization is None for h in hits), sent
    assert not any(h.method in ("DELETE", "PATCH") and h.authorization and VALID_TOKEN in h.authorization
                   for h in hits), sent


def test_cookies_the_target_sets_never_ride_along_on_later_probes(
        webapp: Callable[..., Served], target_for: Callable[..., Target]) -> None:
    """An "anonymous" probe that carries the session the target just handed out is not one."""
    served = webapp("insecure_cookie")  # sets sessionid without Secure, so it would be replayed
    target = target_for(served)
    assert (target.fetch(Probe.get("/")).header("Set-Cookie") or "").startswith("sessionid=")
    target.fetch(Probe.get("/api/agents", follow_redirects=False))
    assert [(s.path, s.headers.get("Cookie")) for s in served.log] == [("/", None), ("/api/agents", None)]


# -- 2. the request budget ---------------------------------------------------------------
def test_budget_stops_the_run_at_its_cap_retries_included(
        pytester: pytest.Pytester, webapp: Callable[..., Served], webapp_env: None) -> None:
    served = webapp("health_500")  # /api/health answers 503: idempotent retries happen
    pytester.makefile(".toml", prodready="request_budget = 10\n" + webapp_toml(served.url))
    result = run_prodready(pytester)
    out = output_of(result)
    log = served.log
    assert result.ret != pytest.ExitCode.OK
    assert "request budget of 10 requests reached (request_budget)" in out
    assert "Traceback" not in out
    assert len(log) <= 10, [f"{s.method} {s.path}" for s in log]
    assert len(log) == 10  # the cap was reached, and nothing beyond it
    # The run stopped: most of the suite never ran.
    assert "Interrupted: prodready: request budget" in out
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) < 20


def test_budget_counts_every_retry() -> None:
    """A target answering 503 to everything: each probe costs 1 + retries, all charged."""
    log: list[Seen] = []
    app = recorded(Flask("always_503"), log)

    @app.route("/<path:anything>")
    def unavailable(anything: str) -> Response:
        return Response("busy", 503)

    with serve_app(app) as url, Target.from_url(url, request_budget=10, retries=2) as target:
        with pytest.raises(BudgetExceeded, match="request_budget"):
            for i in range(10):
                target.fetch(Probe.get(f"/p{i}"))
        assert target.budget.spent == 10
    assert len(log) == 10
    assert [s.path for s in log[:3]] == ["/p0"] * 3  # one probe, two retries


# -- 3. redirects and credentials ------------------------------------------------------------
@dataclass
class RedirectPair:
    origin_url: str
    foreign_url: str
    origin_log: list[Seen]
    foreign_log: list[Seen]


@pytest.fixture
def redirect_pair() -> Iterator[RedirectPair]:
    """A target on 127.0.0.1 redirecting to a second server on 127.0.0.2, and a loop."""
    origin_log: list[Seen] = []
    foreign_log: list[Seen] = []
    foreign = recorded(Flask("foreign"), foreign_log)

    @foreign.route("/y")
    def landing() -> Response:
        return Response("landed", 200)

    with serve_app(foreign, FOREIGN_HOST) as foreign_url:
        origin = recorded(Flask("origin"), origin_log)

        @origin.route("/x")
        def away() -> Response:
            return Response("", 302, headers={"Location": f"{foreign_url}/y"})

        @origin.route("/loop")
        def loop() -> Response:
            return Response("", 302, headers={"Location": "/loop"})

        with serve_app(origin) as origin_url:
            yield RedirectPair(origin_url, foreign_url, origin_log, foreign_log)


def secret_headers(seen: Seen) -> dict[str, str]:
    return {k: v for k, v in seen.headers.items() if k.lower() in ("authorization", "cookie", "x-api-key")}


def test_redirect_to_a_foreign_host_is_not_followed(
        redirect_pair: RedirectPair, target_for: Callable[..., Target]) -> None:
    target = target_for(redirect_pair.origin_url)
    with_credential = target.fetch(Probe.get("/x", credential="auth.token_env"))
    with_header = target.fetch(Probe.get("/x", {"Authorization": "Bearer forged-by-a-check",
                                                "Cookie": "sid=from-a-check"}))

    assert redirect_pair.foreign_log == []  # not a single request, with or without credentials
    assert [s.path for s in redirect_pair.origin_log] == ["/x", "/x"]
    assert redirect_pair.origin_log[0].headers["Authorization"] == f"Bearer {VALID_TOKEN}"
    for exchange in (with_credential, with_header):
        assert exchange.status == 302
        assert exchange.redirects == ()
        assert exchange.note == f"redirect to {FOREIGN_HOST} not followed: it is outside the allowlist"
        assert "not followed" in exchange.render()
        assert VALID_TOKEN not in exchange.render()


def test_redirect_to_an_allowed_host_is_followed_without_credentials(
        redirect_pair: RedirectPair, target_for: Callable[..., Target]) -> None:
    target = target_for(redirect_pair.origin_url, allowed_hosts=[FOREIGN_HOST])
    with_credential = target.fetch(Probe.get("/x", credential="auth.token_env"))
    with_header = target.fetch(Probe.get("/x", {"Authorization": "Bearer forged-by-a-check",
                                                "Cookie": "sid=from-a-check",
                                                "X-Request-Id": "kept"}))

    assert with_credential.status == with_header.status == 200
    assert with_credential.redirects == ((302, f"{redirect_pair.foreign_url}/y"),)
    assert with_credential.text == "landed"
    # The origin got the credential; the other host, though allowed, got none of it.
    assert redirect_pair.origin_log[0].headers["Authorization"] == f"Bearer {VALID_TOKEN}"
    assert redirect_pair.origin_log[1].headers["Authorization"] == "Bearer forged-by-a-check"
    assert [s.path for s in redirect_pair.foreign_log] == ["/y", "/y"]
    assert [secret_headers(s) for s in redirect_pair.foreign_log] == [{}, {}]
    assert redirect_pair.foreign_log[1].headers["X-Request-Id"] == "kept"


def test_redirect_to_another_port_of_the_same_host_drops_credentials(
        target_for: Callable[..., Target]) -> None:
    """Another port is another service (an admin UI, a sidecar): no credentials either."""
    other_log: list[Seen] = []
    other = recorded(Flask("other_port"), other_log)

    @other.route("/y")
    def landing() -> Response:
        return Response("other service", 200)

    with serve_app(other) as other_url:
        origin = Flask("origin_port")

        @origin.route("/x")
        def away() -> Response:
            return Response("", 307, headers={"Location": f"{other_url}/y"})

        with serve_app(origin) as origin_url:
            exchange = target_for(origin_url).fetch(Probe.get("/x", credential="auth.token_env"))
    assert exchange.status == 200
    assert [secret_headers(s) for s in other_log] == [{}]


def test_redirect_loop_ends_with_a_note(
        redirect_pair: RedirectPair, target_for: Callable[..., Target]) -> None:
    target = target_for(redirect_pair.origin_url)
    start = time.monotonic()
    exchange = target.fetch(Probe.get("/loop"))
    assert time.monotonic() - start < 5
    assert exchange.status == 302
    assert "stopped after 5 redirects" in exchange.note
    assert "stopped after 5 redirects" in exchange.render()
    assert len(redirect_pair.origin_log) == 6  # the first request and five hops, then stop
    assert redirect_pair.foreign_log == []


@contextmanager
def serve_raw(responses: dict[str, bytes]) -> Iterator[str]:
    """A bare socket server answering canned bytes by path: what no framework would send."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            path = self.rfile.readline().decode("latin-1").split(" ")[1].split("?")[0]
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            self.wfile.write(responses[path])

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


BAD_LOCATIONS = {"/ipv6": "http://[::1", "/port": "http://127.0.0.1:99999/", "/nan": "http://127.0.0.1:abc/",
                 "/scheme": "file:///etc/passwd", "/ansi": "/x?access_token=abc\x1b[2J"}


def test_a_redirect_to_a_broken_location_is_a_note_not_a_crash(
        target_for: Callable[..., Target]) -> None:
    canned = {path: (f"HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n").encode("latin-1")
              for path, loc in BAD_LOCATIONS.items()}
    canned["/x"] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    with serve_raw(canned) as url:
        target = target_for(url)
        seen = {path: target.fetch(Probe.get(path, credential="auth.token_env")) for path in BAD_LOCATIONS}
    # requests itself refuses to parse these Locations: an error to report, not a crash.
    for path in ("/ipv6", "/port", "/nan"):
        exchange = seen[path]
        assert (exchange.status is None and "ValueError" in exchange.error) or \
            "not followed: it cannot be parsed" in exchange.note, (path, exchange)
    assert seen["/scheme"].status == 302
    assert seen["/scheme"].note == ("redirect to 'file:///etc/passwd' not followed: its scheme "
                                   "'file' is not http or https")
    # A control character in a Location is refused (no legitimate redirect needs one, and
    # URL parsers disagree on them), same origin or not.
    assert seen["/ansi"].status == 302 and "not followed: it contains the character" in seen["/ansi"].note
    assert "\x1b" not in seen["/ansi"].render()
    assert "access_token=abc" not in seen["/ansi"].render()


# -- 4. the canary: known secrets never appear in any output ---------------------------------
AUTH_CANARY = "canary-auth-Zq7Wd2Lx9Pv4"
METRICS_CANARY = "canary-metrics-Hn3Kc8Ry5Tb1"
URL_CANARY = "canary-url-Mj6Fs0Ge2Qa7"  # in a URL only: protected by URL masking, not by value
URL_TOKEN_ENV = "PRODREADY_TEST_URL_TOKEN"

CANARY_TESTS = f"""
import os

import pytest

from pytest_prodready.assertions import assert_healthy, assert_requires_auth


@pytest.mark.prodready(category="auth", severity="critical")
def test_echo_requires_auth(prodready_target):
    assert_requires_auth(prodready_target, "/echo?access_token=" + os.environ["{URL_TOKEN_ENV}"])


@pytest.mark.prodready(category="health", severity="high")
def test_echo_is_healthy(prodready_target):
    assert_healthy(prodready_target, "/echo?token=" + os.environ["{URL_TOKEN_ENV}"])
"""


def echo_app() -> Flask:
    """The webapp with defects, plus /echo: it reflects the URL and the credentials it got."""
    app = make_app(["cors_reflect", "version_disclosure", "no_csp", "metrics_public"])

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> Response:
        auth = request.headers.get("Authorization", "")
        body = (f"error: echo of your request\nurl: {request.url}\nAuthorization: {auth}\n"
                f"token again: {auth.partition(' ')[2]}\n")
        return Response(body, 200, mimetype="text/plain", headers={"X-Echo-Auth": auth})

    return app


@pytest.mark.parametrize("log_args", [
    pytest.param((), id="no-logs"),
    pytest.param(("-o", "log_cli=true", "--log-level=DEBUG"), id="debug-logs"),
])
def test_canary_secrets_never_appear_in_any_output(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, log_args: tuple[str, ...]) -> None:
    monkeypatch.setenv(TOKEN_ENV, AUTH_CANARY)
    monkeypatch.setenv(METRICS_TOKEN_ENV, METRICS_CANARY)
    monkeypatch.setenv(URL_TOKEN_ENV, URL_CANARY)
    with serve_app(echo_app()) as url:
        pytester.makefile(".toml", prodready=f"""
base_url = "{url}"
allowed_origins = ["{ALLOWED_ORIGIN}"]
protected = ["/api/agents", "/echo", "POST /echo"]
health = ["/api/health", "/echo"]

[auth]
token_env = "{TOKEN_ENV}"

[metrics]
path = "/echo"
token_env = "{METRICS_TOKEN_ENV}"

[errors]
json_endpoints = ["POST /echo"]
""")
        pytester.makepyfile(test_custom=CANARY_TESTS)
        result = run_prodready(
            pytester, "-vv", "--tb=long", "-l", "-rA", "--junitxml=junit.xml",
            "--prodready-report", "r.json", "--prodready-report", "r.md",
            "--prodready-report", "r.html", *log_args)
    out = output_of(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    outputs = {"terminal": out}
    outputs |= {name: (pytester.path / name).read_text(encoding="utf-8")
                for name in ("junit.xml", "r.json", "r.md", "r.html")}

    # The outputs did get the material the secrets were in: echoed credentials and URLs.
    report = json.loads(outputs["r.json"])
    failed = {c["id"] for c in report["checks"] if c["outcome"] == "failed"}
    assert {"metrics.prometheus_valid", "errors.malformed_input_is_4xx", "auth.required"} <= failed
    assert any(c["id"].endswith("test_echo_requires_auth") for c in report["checks"])
    for name in ("terminal", "junit.xml"):  # the echo, masked, is in the evidence shown
        assert "Authorization: Bearer ****" in outputs[name], name
        assert "X-Echo-Auth: Bearer ****" in outputs[name], name
    echoed = [header for check in report["checks"] for exchange in check["evidence"]
              for header in exchange["response"]["headers"] if header[0] == "X-Echo-Auth"]
    assert ["X-Echo-Auth", "Bearer ****"] in echoed
    for name in outputs:
        assert "access_token=****" in outputs[name], name

    leaks = {(secret, name): text.count(secret) for name, text in outputs.items()
             for secret in (AUTH_CANARY, METRICS_CANARY, URL_CANARY) if secret in text}
    assert not leaks, f"secrets in the output: {leaks}"


@pytest.mark.parametrize(("url", "masked"), [
    (f"https://api.example.com/agents?access_token={URL_CANARY}&page=2",
     "https://api.example.com/agents?access_token=****&page=2"),
    (f"https://api.example.com/cb?code={URL_CANARY}&state=abc",
     "https://api.example.com/cb?code=****&state=abc"),
    (f"https://user:{URL_CANARY}@db.example.com/x", "https://user:****@db.example.com/x"),
    (f"https://api.example.com/x?api_key={URL_CANARY}", "https://api.example.com/x?api_key=****"),
])
def test_tokens_in_urls_are_masked(url: str, masked: str) -> None:
    masker = Masker()
    assert masker.url(url) == masked
    # The same URL in free text (a message, a log line, a body) is masked too.
    text = masker.text(f"GET {url} answered 200")
    assert URL_CANARY not in text
    assert "****" in text


def test_env_secrets_are_masked_in_every_encoding(target_for: Callable[..., Target]) -> None:
    target = target_for("http://127.0.0.1:9")
    masker = target.masker
    for secret in (VALID_TOKEN, METRICS_TOKEN):
        for text in (secret, f"Bearer {secret}", f"token={secret};", f'{{"t": "{secret}"}}'):
            assert secret not in masker.text(text)
    assert masker.header("X-Anything", f"Bearer {VALID_TOKEN}") == "Bearer ****"
    assert VALID_TOKEN not in repr(target) + repr(target.settings)


def test_an_exchange_shown_by_pytest_is_masked(target_for: Callable[..., Target]) -> None:
    with serve_app(echo_app()) as url:
        target = target_for(url)
        exchange = target.fetch(Probe.get(f"/echo?access_token={URL_CANARY}", credential="auth.token_env"))
    assert VALID_TOKEN in exchange.text  # the target did echo it
    assert VALID_TOKEN not in repr(exchange)
    assert URL_CANARY not in repr(exchange)


COOKIE_CANARY = "ck-canary-5e0b7d2a91"


def test_a_session_cookie_from_config_is_masked_wherever_the_target_echoes_it() -> None:
    """An identity's cookie (identities.NAME.cookie_env) sent as a credential and echoed back
    by the target, in a header and the body, never shows in rendered or serialised evidence."""
    app = Flask("cookie_echo")

    @app.route("/whoami")
    def whoami() -> Response:
        cookie = request.headers.get("Cookie", "")
        return Response(f"you sent: {cookie}", 200, headers={"X-Echo-Cookie": cookie,
                                                             "Set-Cookie": f"{cookie}; Path=/"})

    with serve_app(app) as url:
        settings = Settings(values={**DEFAULTS, "base_url": url,
                                    "identities": {"alice": {"cookie_env": "ALICE_COOKIE"}}},
                            secrets={"identities.alice.cookie_env": f"sid={COOKIE_CANARY}"}, sources={})
        with Target(settings) as target:
            exchange = target.fetch(Probe.get("/whoami", credential="identities.alice.cookie_env"))
    assert COOKIE_CANARY in exchange.text  # it really went out and came back
    shown = exchange.render() + json.dumps(exchange.to_dict()) + repr(exchange)
    assert COOKIE_CANARY not in shown, shown


# -- 5. a target that is down -------------------------------------------------------------
def test_unreachable_target_is_one_clear_error(pytester: pytest.Pytester) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    pytester.makefile(".toml", prodready=f'base_url = "{url}"\nhealth = ["/api/health"]\n')
    start = time.monotonic()
    result = run_prodready(pytester)
    out = output_of(result)
    assert time.monotonic() - start < 20
    assert result.ret != pytest.ExitCode.OK
    assert f"target {url} is unreachable" in out
    assert "connection refused" in out
    assert "Traceback" not in out
    # One error, not a wall of failures.
    assert "FAILED" not in out
    assert out.count("unreachable") <= 2, out


# -- 6. control characters from the target ---------------------------------------------------
def test_escape_sequences_from_the_target_never_reach_the_terminal(pytester: pytest.Pytester) -> None:
    app = Flask("hostile_text")

    @app.route("/", defaults={"anything": ""})
    @app.route("/<path:anything>")
    def hostile(anything: str) -> Response:
        response = Response("\x1b[2J\x1b[1;1Hall clear \x1b]0;pwned\x07\x1b[31mred\x00\x08", 200,
                            mimetype="text/html")
        response.headers["Server"] = "nginx/1.18.0 \x1b[2J\x1b[8m"
        response.headers["X-Powered-By"] = "\x1b[2JPHP/8.1"
        response.headers["Set-Cookie"] = "sid\x1b[2J=1; Path=/"
        response.status = "200 OK\x1b[2J"
        return response

    with serve_app(app) as url:
        pytester.makefile(".toml", prodready=f'base_url = "{url}"\nhealth = ["/health"]\n')
        result = run_prodready(pytester, "-vv", "--tb=long", "-rA", "--prodready-report", "r.md")
    out = output_of(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "headers.no_version_disclosure" in out
    assert "nginx/1.18.0" in out  # the evidence is shown...
    assert "\x1b" not in out  # ...without its escape sequences
    assert "\x07" not in out and "\x00" not in out and "\x08" not in out
    assert "\x1b" not in (pytester.path / "r.md").read_text(encoding="utf-8")

