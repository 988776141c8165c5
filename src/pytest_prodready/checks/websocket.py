"""ws.auth_required: a WebSocket handshake without credentials, or with a forged token, is refused.

    [websocket]
    paths = ["/ws/chat"]
    identity = "alice"   # optional positive control: her credential is accepted
    wait_s = 1.0         # how long an opened socket is watched for a first message

Refused means the handshake was answered with an HTTP status instead of 101, or the socket
was closed before any application message arrived. An opened socket that sends a message,
or stays open without closing, accepted the caller. Uses the `websockets` library (the `ws`
extra). Each connection goes through the target's guard (allowlist and run budget) and is
recorded as a fact, masked.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.auth import _random_jwt
from pytest_prodready.exceptions import CannotJudge, CheckFailure, ConfigError
from pytest_prodready.family import Family
from pytest_prodready.identities import ensure_credential, identity
from pytest_prodready.masking import Masker

Outcome = Literal["refused", "closed", "accepted", "error"]
UNTRUSTED = "the certificate does not verify"
EXCERPT = 200
DEFAULT_WAIT_S = 1.0


@dataclass(frozen=True)
class WsAttempt:
    """One WebSocket handshake and what followed, masked."""

    url: str
    how: str  # 'without credentials', 'with a forged bearer token'...
    headers: tuple[tuple[str, str], ...]
    outcome: Outcome
    status: int | None = None  # the HTTP status of a refused handshake (101 when opened)
    close_code: int | None = None
    message: str = ""  # the first application message (excerpt)
    error: str = ""

    @property
    def refused(self) -> bool:
        return self.outcome in ("refused", "closed")

    def describe(self) -> str:
        if self.outcome == "refused":
            return f"handshake refused ({self.status})"
        if self.outcome == "closed":
            return f"opened, then closed ({self.close_code}) before any message"
        if self.outcome == "accepted":
            return (f"opened and sent {self.message!r}" if self.message
                    else "opened and stayed open")
        return self.error

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "websocket", "url": self.url, "how": self.how,
                "request_headers": [list(h) for h in self.headers], "outcome": self.outcome,
                "status": self.status, "close_code": self.close_code, "message": self.message,
                "error": self.error}

    def render(self) -> str:
        lines = [f"> WebSocket {self.url} ({self.how})"]
        lines += [f"> {name}: {value}" for name, value in self.headers]
        lines.append(f"< {self.describe()}")
        return "\n".join(lines)


def ws_url(base_url: str, path: str, query: dict[str, str] | None = None) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path if path.startswith('/') else '/' + path}"
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)
    return url


def attempt(url: str, headers: dict[str, str], how: str, *, masker: Masker, timeout: float,
            wait_s: float = DEFAULT_WAIT_S, ca_bundle: str | None = None,
            verify: bool = True) -> WsAttempt:
    """Open a WebSocket to `url` with `headers` and report how the server treated it.
    `verify=False` skips certificate verification: only for a handshake without a secret.

    Usable on its own (no pytest, no Target); the caller checks the host is allowed.
    """
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
    from websockets.sync.client import connect

    shown_url = masker.url(url)
    shown = tuple((name, masker.header(name, value)) for name, value in headers.items())

    def made(outcome: Outcome, **kw: Any) -> WsAttempt:
        return WsAttempt(shown_url, how, shown, outcome, **kw)

    context = None
    if url.startswith("wss:"):
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        # No proxy from the environment, no compression: what is sent, and where, is ours.
        with connect(url, additional_headers=headers, open_timeout=timeout, close_timeout=1,
                     proxy=None, ssl=context, compression=None, max_size=64 * 1024,
                     user_agent_header="pytest-prodready (production-readiness check)") as ws:
            try:
                first = ws.recv(timeout=wait_s)
            except TimeoutError:
                return made("accepted", status=101)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                return made("closed", status=101, close_code=code)
            text = first if isinstance(first, str) else first.decode("utf-8", "replace")
            return made("accepted", status=101, message=masker.text(text[:EXCERPT]))
    except InvalidStatus as exc:
        return made("refused", status=exc.response.status_code)
    except ssl.SSLCertVerificationError as exc:
        return made("error", error=f"{UNTRUSTED}: {masker.text(exc.verify_message or str(exc))[:EXCERPT]}")
    except InvalidHandshake as exc:
        return made("error", error=f"the handshake failed: {masker.text(str(exc))[:EXCERPT]}")
    except (OSError, TimeoutError) as exc:
        return made("error", error=f"cannot connect: {type(exc).__name__}: "
                                   f"{masker.text(str(exc))[:EXCERPT]}")


def _forged(url_path: str, base_url: str) -> list[tuple[str, str, dict[str, str]]]:
    """(how, url, headers) of the attempts a correct endpoint refuses."""
    token = _random_jwt()
    return [
        ("without credentials", ws_url(base_url, url_path), {}),
        ("with a forged bearer token", ws_url(base_url, url_path), {"Authorization": f"Bearer {token}"}),
        ("with a forged ?token=", ws_url(base_url, url_path, {"token": token}), {}),
    ]


@check("ws.auth_required", title="a WebSocket handshake without credentials is refused",
       severity="critical", subjects=lambda s: list(s.get("websocket.paths") or ()),
       needs=("websocket.paths",),
       remediation="Authenticate the WebSocket handshake (token or session cookie, verified like "
                   "any request) and refuse it with 401/403, or close with 1008 before sending "
                   "anything.")
def auth_required(ctx: Context) -> None:
    try:
        import websockets  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installed extras
        ctx.skip("the WebSocket client is not installed: pip install 'pytest-prodready[ws]'")
    path, target = ctx.subject, ctx.target
    host = urlsplit(target.base_url).hostname or ""
    wait_s = float(ctx.settings.get("websocket.wait_s") or DEFAULT_WAIT_S)
    ca_bundle = ctx.settings.get("tls.ca_bundle")

    def run(how: str, url: str, headers: dict[str, str], *, anonymous: bool = True) -> WsAttempt:
        target.guard(host)
        # A staging gate's header goes on every handshake (without it each one would only
        # meet the gate, and its refusal would read as the endpoint's); the credential
        # header given in request_headers never on the anonymous and forged ones.
        sent = target.origin_headers(headers, anonymous=anonymous)
        made = attempt(url, sent, how, masker=target.masker, timeout=target.timeout,
                       wait_s=wait_s, ca_bundle=str(ca_bundle) if ca_bundle else None)
        if made.error.startswith(UNTRUSTED) and anonymous and sent == headers:
            # Like the HTTP client (ADR 0005): a handshake that carries no secret of the run
            # (its own made-up token at most) is judged over an unverified connection, and
            # says so; tls.cert_valid reports the certificate.
            target.guard(host)
            made = attempt(url, sent, f"{how}, without certificate verification", masker=target.masker,
                           timeout=target.timeout, wait_s=wait_s, verify=False)
        ctx.add_fact(made)
        return made

    control = None
    who = ctx.settings.get("websocket.identity")
    if who:
        person = identity(ctx.settings, str(who))
        if person.credential is None:
            raise CannotJudge(f"identity {who!r} has no credential set")
        ensure_credential(target, person)
        control = run(f"as {who} (the positive control)", ws_url(target.base_url, path),
                      target.credential_headers(person.credential), anonymous=False)
    forged = [run(how, url, headers) for how, url, headers in _forged(path, target.base_url)]
    broken = [a for a in forged if a.outcome == "error"]
    if broken:
        raise CannotJudge(f"{path}: {broken[0].error}")
    accepted = [a for a in forged if not a.refused]
    if accepted:
        message = f"{path} accepted a WebSocket " + "; ".join(f"{a.how} ({a.describe()})"
                                                             for a in accepted)
        # The evidence is the handshakes (facts, not HTTP exchanges): shown like exchanges.
        shown = [f"[{ctx.spec.id}] {message}", f"Fix: {ctx.spec.remediation}"]
        shown += ["\n" + a.render() for a in ([control] if control else []) + forged]
        raise CheckFailure(message, remediation=ctx.spec.remediation, check_id=ctx.spec.id,
                           rendered=target.masker.text("\n".join(shown)))
    if control is not None and not control.outcome == "accepted":
        raise CannotJudge(f"{path} refused {who} too ({control.describe()}): the refusals prove "
                          "nothing; check the path and her credential")
    if control is None and all(a.status == 404 for a in forged):
        raise CannotJudge(f"{path} answers 404 to every handshake: check websocket.paths")
    summary = "; ".join(f"{a.how}: {a.describe()}" for a in forged)
    ctx.passed(f"{path} refused every unauthenticated handshake ({summary})"
               + (f"; {who} was accepted" if control is not None else ""))


def _validate(settings: Any) -> None:
    who = settings.get("websocket.identity")
    people = settings.get("identities") or {}
    if who and who not in people:
        raise ConfigError("websocket.identity", f"no identity {who!r} in [identities] "
                                                f"(configured: {', '.join(sorted(people)) or 'none'})")


FAMILY = Family(
    name="websocket",
    config={"websocket": schema.Table({
        "paths": schema.list_of(schema.path),
        "identity": schema.string,
        "wait_s": schema.number(0.1, 30),
    })},
    validate=_validate,
)
