"""Real multi-tenant services on loopback: authorization, CSRF, OAuth and WebSocket targets.

- `tenant_app(mode)` (Flask): conversations owned by users of two tenants, read with a
  bearer token or a session cookie. Modes:
    correct      - a conversation is served to its owner only (404 JSON to anyone else);
                   lists are the caller's tenant's;
    idor         - any authenticated caller reads any conversation by id;
    trusts_org   - the tenant comes from X-Org-Id when the client sends one;
    soft_deny    - refuses others with 200 and an error body ({"error": "not found"});
    error_for_everyone - 200 with an error body to every caller, the owner included.
- `csrf_app(protected)` (Flask): POST /api/settings with a cookie session; protected checks
  the Origin and a CSRF token (403), unprotected changes the setting for anyone's page.
- `oauth_app(checks_state, lenient_code)` (Flask): /login starts an OAuth flow (state kept
  in Flask's signed session cookie), /oauth/callback finishes it.
- `ws_app()` (Starlette): WebSocket endpoints with and without authentication.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, redirect, request, session

from tests.targets.webapp import serve_app

ALICE_TOKEN = "tok-alice-7f3a9c1e4b2d8a60"
BOB_TOKEN = "tok-bob-2c8e5a7d1f9b3e44"
CAROL_TOKEN = "tok-carol-9d1b7e3a5c2f8d11"
ALICE_COOKIE = "sid=sess-alice-5e8c2a9f7b1d3c66"
FORGED_HINT = "prodready"

# token or cookie value -> (user, tenant)
USERS = {
    ALICE_TOKEN: ("alice", "acme"),
    BOB_TOKEN: ("bob", "globex"),
    CAROL_TOKEN: ("carol", "acme"),  # alice's colleague: same tenant
    ALICE_COOKIE.partition("=")[2]: ("alice", "acme"),
}
CONVERSATIONS = {
    "123": {"id": 123, "owner": "alice", "tenant": "acme", "title": "Q3 acquisition plan",
            "messages": ["We offer 4.2M for Initech", "Board meets Tuesday"]},
    "456": {"id": 456, "owner": "bob", "tenant": "globex", "title": "Hiring",
            "messages": ["Two backend roles", "Budget approved"]},
}
MODES = ("correct", "idor", "trusts_org", "soft_deny", "error_for_everyone")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


PASSWORDS = {"alice": "pw-alice-Correct-Horse-31", "bob": "pw-bob-Battery-Staple-62"}
TENANTS = {"alice": "acme", "bob": "globex", "carol": "acme"}


def _caller_of(issued: dict[str, list[Any]] | None = None) -> tuple[str, str] | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth[7:]
        if issued is not None and token in issued:
            user, uses = issued[token]
            if uses is not None:
                if uses <= 0:
                    return None  # expired: the client must log in again
                issued[token][1] = uses - 1
            return user, TENANTS[user]
        return USERS.get(token)
    sid = request.cookies.get("sid")
    if issued is not None and sid in issued:
        return issued[sid][0], TENANTS[issued[sid][0]]
    return USERS.get(sid) if sid else None


@dataclass
class Log:
    """What a target received: (method, path, headers) per request."""

    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self) -> None:
        with self.lock:
            self.seen.append((request.method, request.path, dict(request.headers)))

    def methods(self, path: str) -> list[str]:
        return [m for m, p, _ in self.seen if p == path]


def tenant_app(mode: str, log: Log | None = None, token_uses: int | None = None) -> Flask:
    """See the module docstring. POST /api/login ({"username", "password"} as JSON or a form)
    issues a token ({"access_token": ...}) and a session cookie; with `token_uses`, an issued
    token is refused (401) after that many requests."""
    assert mode in MODES, mode
    app = Flask(f"tenants_{mode}")
    if log is not None:
        app.before_request(log.record)
    issued: dict[str, list[Any]] = {}
    lock = threading.Lock()

    @app.post("/api/login")
    def login() -> Response:
        data = request.get_json(silent=True) or request.form
        user = str(data.get("username", ""))
        if PASSWORDS.get(user) != data.get("password"):
            return _json({"error": "invalid credentials"}, 401)
        with lock:
            token, sid = f"issued-{secrets.token_hex(12)}", f"sess-{secrets.token_hex(12)}"
            issued[token] = [user, token_uses]
            issued[sid] = [user, None]
        resp = _json({"data": {"access_token": token, "user": user}})
        resp.set_cookie("sid", sid, httponly=True, samesite="Lax")
        return resp

    def _caller() -> tuple[str, str] | None:  # the module's, plus the issued tokens
        with lock:
            return _caller_of(issued)

    def tenant_of(caller: tuple[str, str]) -> str:
        if mode == "trusts_org" and request.headers.get("X-Org-Id"):
            return request.headers["X-Org-Id"]
        return caller[1]

    def refuse() -> Response:
        if mode in ("soft_deny", "error_for_everyone"):
            return _json({"error": "not found"})
        return _json({"error": "not found"}, 404)

    @app.get("/api/conversations/<cid>")
    def conversation(cid: str) -> Response:
        caller = _caller()
        if caller is None:
            return _json({"error": "unauthorized"}, 401)
        if mode == "error_for_everyone":
            return refuse()
        conv = CONVERSATIONS.get(cid)
        if conv is None:
            return refuse()
        if mode == "idor":
            return _json(conv)
        # trusts_org scopes by tenant (and takes it from the header); correct by owner.
        allowed = (conv["tenant"] == tenant_of(caller) if mode == "trusts_org"
                   else conv["owner"] == caller[0])
        return _json(conv) if allowed else refuse()

    @app.get("/api/conversations")
    def conversations() -> Response:
        caller = _caller()
        if caller is None:
            return _json({"error": "unauthorized"}, 401)
        if mode == "error_for_everyone":
            return refuse()
        tenant = tenant_of(caller)
        return _json([{"id": c["id"], "title": c["title"]} for c in CONVERSATIONS.values()
                      if c["tenant"] == tenant])

    return app


def _caller() -> tuple[str, str] | None:
    return _caller_of(None)


# -- CSRF ---------------------------------------------------------------------------------
APP_ORIGIN = "http://app.acme.test"
CSRF_TOKEN = "csrf-token-for-alice-0b7c"


def csrf_app(protected: bool, log: Log) -> Flask:
    app = Flask(f"csrf_{protected}")
    app.before_request(log.record)
    state: dict[str, str] = {"theme": "light"}

    @app.post("/api/settings")
    def settings() -> Response:
        if _caller() is None:
            return _json({"error": "unauthorized"}, 401)
        if protected:
            origin = request.headers.get("Origin")
            if origin is not None and origin != APP_ORIGIN:
                return _json({"error": "forbidden: cross-site request"}, 403)
            if request.headers.get("X-CSRF-Token") != CSRF_TOKEN:
                return _json({"error": "forbidden: CSRF token missing or invalid"}, 403)
        state["theme"] = request.form.get("theme", "dark")
        return _json({"ok": True, "theme": state["theme"]})

    @app.get("/api/settings")
    def read_settings() -> Response:
        return _json(state)

    return app


# -- OAuth --------------------------------------------------------------------------------
PROVIDER = "https://provider.example/authorize"
GOOD_CODE = "code-from-the-provider"


def oauth_app(checks_state: bool, lenient_code: bool) -> Flask:
    app = Flask(f"oauth_{checks_state}_{lenient_code}")
    app.secret_key = "test-only-flask-session-key"

    @app.get("/login")
    def login() -> Any:
        session["oauth_state"] = secrets.token_urlsafe(16)
        return redirect(f"{PROVIDER}?client_id=acme&response_type=code"
                        f"&state={session['oauth_state']}")

    @app.get("/oauth/callback")
    def callback() -> Any:
        if checks_state:
            expected = session.pop("oauth_state", None)
            if not expected or request.args.get("state") != expected:
                return _json({"error": "invalid_request", "detail": "state mismatch"}, 400)
        code = request.args.get("code", "")
        if not lenient_code and code != GOOD_CODE:
            return _json({"error": "invalid_grant", "detail": "the provider refused the code"}, 400)
        session["user"] = "someone"
        return redirect("/dashboard")

    @app.get("/dashboard")
    def dashboard() -> Response:
        return _json({"user": session.get("user")})

    return app


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    with serve_app(app) as url:
        yield url


# -- WebSocket ----------------------------------------------------------------------------
def ws_app() -> Any:
    """Starlette WebSocket routes:

    /ws/open      accepts anyone and greets them;
    /ws/auth      refuses the handshake (403) without a known bearer token;
    /ws/late      accepts, then closes with 1008 before any message when the token is bad;
    /ws/shape     accepts any bearer token that looks like a JWT (signature never checked);
    /ws/query     takes the token from ?token= and refuses without a known one.
    """
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    def known(ws: WebSocket) -> bool:
        auth = ws.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in USERS

    async def open_(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello, whoever you are")
        await ws.close()

    async def auth(ws: WebSocket) -> None:
        if not known(ws):
            await ws.close(code=1008)  # before accept: Starlette answers the handshake 403
            return
        await ws.accept()
        await ws.send_text("hello alice")
        await ws.close()

    async def late(ws: WebSocket) -> None:
        await ws.accept()
        if not known(ws):
            await ws.close(code=1008)
            return
        await ws.send_text("hello alice")
        await ws.close()

    async def shape(ws: WebSocket) -> None:
        auth_ = ws.headers.get("authorization", "")
        if not (auth_.startswith("Bearer ") and auth_.count(".") == 2):
            await ws.close(code=1008)
            return
        await ws.accept()
        await ws.send_text("hello, token holder")
        await ws.close()

    async def query(ws: WebSocket) -> None:
        if ws.query_params.get("token") not in USERS:
            await ws.close(code=1008)
            return
        await ws.accept()
        await ws.send_text("hello alice")
        await ws.close()

    return Starlette(routes=[WebSocketRoute("/ws/open", open_), WebSocketRoute("/ws/auth", auth),
                             WebSocketRoute("/ws/late", late), WebSocketRoute("/ws/shape", shape),
                             WebSocketRoute("/ws/query", query)])
