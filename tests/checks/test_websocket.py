"""ws.auth_required: fails on real WebSocket endpoints (Starlette on uvicorn, and a bare
`websockets` server) that let anonymous or forged callers in, passes on ones that refuse."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest

from pytest_prodready.checking import run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target
from tests.targets.frameworks import serve_asgi
from tests.targets.tenantapps import ALICE_TOKEN, ws_app

CHECK = "ws.auth_required"


@pytest.fixture(scope="module")
def starlette_url() -> Iterator[str]:
    with serve_asgi(ws_app()) as url:
        yield url


@pytest.fixture(scope="module")
def bare_ws() -> Iterator[str]:
    """A plain `websockets` server that refuses the handshake (401) without alice's token
    on /secure, and serves anyone on /open."""
    with serve_ws(None, "welcome") as url:
        yield url


@contextmanager
def serve_ws(gate_key: str | None, welcome: str, *, tls: bool = False) -> Iterator[str]:
    """A `websockets` server on loopback: behind a gate when `gate_key` is given (403 to a
    handshake without that X-Gate), then 401 on /secure without alice's token; whoever gets
    in is greeted with `welcome`. `tls`: over TLS with a self-signed certificate."""
    from websockets.http11 import Request, Response
    from websockets.sync.server import ServerConnection, serve

    from tests.targets.downtargets import tls_context

    def gate(conn: ServerConnection, request: Request) -> Response | None:
        if gate_key is not None and request.headers.get("X-Gate") != gate_key:
            return conn.respond(403, "the staging gate\n")
        if request.path.startswith("/secure") and \
                request.headers.get("Authorization") != f"Bearer {ALICE_TOKEN}":
            return conn.respond(401, "unauthorized\n")
        return None

    def handler(conn: ServerConnection) -> None:
        conn.send(welcome)

    with serve(handler, "127.0.0.1", 0, process_request=gate, ssl=tls_context() if tls else None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()
        thread.join(5)


@pytest.fixture
def target() -> Iterator[Callable[..., Target]]:
    made: list[Target] = []

    def factory(url: str, **websocket: Any) -> Target:
        values = {**DEFAULTS, "base_url": url, "websocket": {"wait_s": 0.5, **websocket},
                  "identities": {"alice": {"token_env": "ALICE_TOKEN"}}}
        made.append(Target(Settings(values=values, secrets={"identities.alice.token_env": ALICE_TOKEN},
                                    sources={})))
        return made[-1]

    yield factory
    for t in made:
        t.close()


def test_fails_when_anyone_may_connect(starlette_url: str, target: Callable[..., Target]) -> None:
    result = run_check(CHECK, target(starlette_url, paths=["/ws/open"]), "/ws/open")
    assert result.outcome == "failed", result.message
    assert result.severity == "critical"
    assert result.message.startswith("/ws/open accepted a WebSocket without credentials (opened "
                                     "and sent 'hello, whoever you are')")
    facts = [f["outcome"] for f in result.evidence()]
    assert facts == ["accepted", "accepted", "accepted"]
    assert f"> WebSocket {starlette_url.replace('http', 'ws')}/ws/open (without credentials)" \
        in result.detail
    assert "< opened and sent 'hello, whoever you are'" in result.detail


def test_fails_when_a_forged_token_gets_in(starlette_url: str, target: Callable[..., Target]) -> None:
    """Anonymous callers are refused, but any JWT-shaped token is let in."""
    result = run_check(CHECK, target(starlette_url, paths=["/ws/shape"]), "/ws/shape")
    assert result.outcome == "failed", result.message
    assert result.message == ("/ws/shape accepted a WebSocket with a forged bearer token (opened "
                              "and sent 'hello, token holder')")


@pytest.mark.parametrize(("path", "how"), [
    ("/ws/auth", "without credentials: handshake refused (403)"),
    ("/ws/late", "without credentials: opened, then closed (1008) before any message"),
    ("/ws/query", "without credentials: handshake refused (403)"),
])
def test_passes_when_refused_at_the_handshake_or_closed_before_any_message(
        starlette_url: str, target: Callable[..., Target], path: str, how: str) -> None:
    result = run_check(CHECK, target(starlette_url, paths=[path]), path)
    assert result.outcome == "passed", result.detail
    assert result.message.startswith(f"{path} refused every unauthenticated handshake ({how}")


def test_the_positive_control_sends_the_identity_and_masks_it(
        starlette_url: str, target: Callable[..., Target]) -> None:
    result = run_check(CHECK, target(starlette_url, paths=["/ws/auth"], identity="alice"), "/ws/auth")
    assert result.outcome == "passed", result.detail
    assert result.message.endswith("; alice was accepted")
    dumped = json.dumps(result.evidence())
    assert ALICE_TOKEN not in dumped
    assert '"Authorization", "Bearer ****"' in dumped


def test_an_identity_refused_too_cannot_judge(starlette_url: str,
                                              target: Callable[..., Target]) -> None:
    """/ws/query takes the token from the query only: alice's header is refused as well."""
    result = run_check(CHECK, target(starlette_url, paths=["/ws/query"], identity="alice"), "/ws/query")
    assert result.outcome == "error"
    assert "refused alice too" in result.message


@pytest.mark.parametrize(("path", "outcome"), [("/secure", "passed"), ("/open", "failed")])
def test_a_bare_websockets_server(bare_ws: str, target: Callable[..., Target], path: str,
                                  outcome: str) -> None:
    result = run_check(CHECK, target(bare_ws, paths=[path], identity="alice"), path)
    assert result.outcome == outcome, result.message
    if outcome == "passed":
        assert "without credentials: handshake refused (401)" in result.message


def test_a_closed_port_cannot_judge(target: Callable[..., Target]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_check(CHECK, target(f"http://127.0.0.1:{port}", paths=["/ws"]), "/ws")
    assert result.outcome == "error"
    assert "cannot connect" in result.message


def test_unconfigured_is_skipped_naming_the_key(target: Callable[..., Target]) -> None:
    t = target("http://127.0.0.1:9")
    assert run_check(CHECK, t, "").message == "not configured: set websocket.paths"


def test_helper_the_websocket_refuses_anonymous_clients(
        starlette_url: str, target: Callable[..., Target]) -> None:
    from pytest_prodready.assertions import assert_websocket_requires_auth

    assert_websocket_requires_auth(target(starlette_url), "/ws/auth", identity="alice")
    with pytest.raises(AssertionError, match="accepted a WebSocket without credentials"):
        assert_websocket_requires_auth(target(starlette_url), "/ws/open")


def test_a_plugin_run_records_each_handshake_masked(
        starlette_url: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_TOKEN", ALICE_TOKEN)
    pytester.makefile(".toml", prodready=f"""
base_url = "{starlette_url}"
[identities.alice]
token_env = "ALICE_TOKEN"
[websocket]
paths = ["/ws/auth", "/ws/open"]
identity = "alice"
wait_s = 0.5
""")
    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "--prodready-only", "ws",
                                "-rA", "--junitxml=junit.xml", "--prodready-report", "r.json",
                                "--prodready-report", "r.html")
    report = json.loads((pytester.path / "r.json").read_text())
    outcomes = {c["nodeid"].rpartition("[")[2]: c["outcome"] for c in report["checks"]}
    assert outcomes == {"/ws/auth]": "passed", "/ws/open]": "failed"}, outcomes
    texts = ["\n".join(result.outlines + result.errlines), (pytester.path / "junit.xml").read_text(),
             json.dumps(report), (pytester.path / "r.html").read_text()]
    assert "< opened and sent 'hello, whoever you are'" in texts[0]
    assert all(ALICE_TOKEN not in text for text in texts)


# -- a staging gate in front of the endpoints (request_headers) -----------------------------
GATE_KEY = "gate-key-7f3a9c"


@pytest.fixture(scope="module")
def gated_ws() -> Iterator[str]:
    """The same server behind a staging gate: 403 to any handshake without X-Gate."""
    with serve_ws(GATE_KEY, "welcome past the gate") as url:
        yield url


def gated_target(url: str, path: str, **headers: str) -> Target:
    """request_headers from names to values (as their env vars would give them)."""
    values = {**DEFAULTS, "base_url": url, "websocket": {"wait_s": 0.5, "paths": [path]},
              "request_headers": [{"name": n, "value_env": f"H{i}"} for i, n in enumerate(headers)]}
    secrets = {f"request_headers[{i}].value_env": v for i, v in enumerate(headers.values())}
    return Target(Settings(values=values, secrets=secrets, sources={}))


def test_the_gate_header_reaches_every_handshake_so_an_open_endpoint_behind_it_fails(gated_ws: str) -> None:
    """Without the gate's header every handshake meets the gate's 403, which would read as
    the endpoint refusing: a pass for an endpoint anyone past the gate may open."""
    with closing(gated_target(gated_ws, "/open", **{"X-Gate": GATE_KEY})) as target:
        result = run_check(CHECK, target, "/open")
    assert result.outcome == "failed", result.message
    assert "accepted a WebSocket without credentials (opened and sent 'welcome past the gate')" \
        in result.message
    assert GATE_KEY not in result.detail and "> X-Gate: ****" in result.detail


def test_a_credential_request_header_is_not_on_the_anonymous_handshakes(gated_ws: str) -> None:
    with closing(gated_target(gated_ws, "/secure", **{"X-Gate": GATE_KEY,
                                           "Authorization": f"Bearer {ALICE_TOKEN}"})) as target:
        result = run_check(CHECK, target, "/secure")
    assert result.outcome == "passed", result.message
    assert "without credentials: handshake refused (401)" in result.message


# -- a self-signed certificate (the common staging set-up) ------------------------------------
@pytest.fixture(scope="module")
def self_signed_ws() -> Iterator[str]:
    with serve_ws(None, "welcome over self-signed TLS", tls=True) as url:
        yield url


@pytest.mark.parametrize(("path", "outcome"), [("/open", "failed"), ("/secure", "passed")])
def test_a_self_signed_endpoint_is_judged_without_verification(
        self_signed_ws: str, path: str, outcome: str) -> None:
    """Handshakes that carry no secret of the run go over the unverified connection and
    say so, instead of "cannot judge" (tls.cert_valid judges the certificate)."""
    with closing(gated_target(self_signed_ws, path)) as target:
        result = run_check(CHECK, target, path)
    assert result.outcome == outcome, result.message
    hows = [f["how"] for f in result.evidence()]
    assert hows and all(h.endswith(", without certificate verification") for h in hows), hows


def test_a_gate_secret_never_goes_over_an_unverified_connection(self_signed_ws: str) -> None:
    with closing(gated_target(self_signed_ws, "/open", **{"X-Gate": GATE_KEY})) as target:
        result = run_check(CHECK, target, "/open")
    assert result.outcome == "error", result.message
    assert "the certificate does not verify" in result.message
