"""jwt.*: forged tokens (pytest_prodready.tokens) are refused where the real one is accepted.

The positive control comes first: `jwt.valid_accepted` sends the configured token
(auth.token_env) to each protected GET endpoint. Unless it is accepted there, and an
anonymous call is not served the same answer, every other jwt check says "cannot judge":
a refused forgery means nothing when the real token is refused too.

"Accepted" is judged by more than a status: a forged call is accepted when it answers 2xx
with a body like the valid call's and no error phrase ("invalid token", "unauthorized"...)
that the valid call's body lacks (an API that answers 200 with an error body refuses).
After the attacks the valid token is sent again: a target that revokes or locks out on bad
attempts would otherwise hide the forgeries it accepted before locking, and refusals that
may be a lockout cannot pass.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pytest_prodready import schema, tokens
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import anonymous_probe, protected
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge, ConfigError
from pytest_prodready.family import Family
from pytest_prodready.target import PROBE_HEADER, Probe

REFUSED = frozenset({401, 403})
# A forged call's body this like the valid call's (difflib ratio) is the token holder's data.
SIMILAR = 0.8
BODY_COMPARED = 8192
# How many of the list's first secrets are sent as probes (the whole list is tried offline).
SENT_WEAK_SECRETS = 10
# The header that tells a re-sent valid call (after a check's attacks) from the first one.
ASYMMETRIC = ("RS", "PS", "ES", "Ed")


def endpoints(settings: Settings) -> list[str]:
    """The protected GET endpoints: calling them with a forged token changes nothing."""
    return [e for e in protected(settings) if e.startswith("GET ")]


def _header_value(settings: Settings, token: str) -> tuple[str, str]:
    header = settings.get("auth.header") or "Authorization"
    scheme = settings.get("auth.scheme", "Bearer")
    return header, f"{scheme} {token}".strip() if header.lower() == "authorization" else token


def token_probe(settings: Settings, endpoint: str, token: str) -> Probe:
    header, value = _header_value(settings, token)
    # Not anonymous: a forgery may be derived from the real token (its claims, a cracked
    # weak secret), so it is treated as a credential (never over unverified TLS).
    return Probe.endpoint(endpoint, {header: value}, follow_redirects=False)


def valid_probe(endpoint: str, after: str = "") -> Probe:
    """The configured token (added by the client at send time, never held in the probe)."""
    return Probe.endpoint(endpoint, {PROBE_HEADER: f"after {after}"} if after else None,
                          credential="auth.token_env", follow_redirects=False)


def similarity(a: bytes, b: bytes) -> float:
    if a == b:
        return 1.0
    left, right = a[:BODY_COMPARED], b[:BODY_COMPARED]
    return difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()


# Words of a refusal: a 2xx body that has one the valid call's body lacks refused the caller,
# however alike the two pages are otherwise (the same layout around "please log in").
ERROR_PHRASES = ("unauthorized", "unauthorised", "forbidden", "invalid token", "invalid_token",
                 "invalid signature", "signature verification failed", "token expired",
                 "expired token", "not authenticated", "authentication required",
                 "login required", "please log in", "log in again", "sign in", "session expired",
                 "access denied", "jwt malformed", "invalid jwt")


def refusal_phrase(ex: Exchange, valid: Exchange) -> str | None:
    text, base = ex.text[:BODY_COMPARED].lower(), valid.text[:BODY_COMPARED].lower()
    return next((p for p in ERROR_PHRASES if p in text and p not in base), None)


IDENTITY_CLAIMS = ("sub", "email", "preferred_username", "username", "user_id", "uid", "name")


def identities(payload: dict[str, object], valid: Exchange) -> tuple[str, ...]:
    """The token's identity claim values that the valid call's body shows (3+ characters)."""
    values = (str(payload.get(k)) for k in IDENTITY_CLAIMS if isinstance(payload.get(k), (str, int)))
    return tuple(v for v in dict.fromkeys(values) if len(v) >= 3 and v in valid.text)


def accepted(ex: Exchange, valid: Exchange, identity: Sequence[str] = ()) -> bool:
    """Served like the valid token: 2xx without an error phrase the valid call's body lacks,
    and a body like the valid call's or showing the token holder's identity (a body that
    echoes the token or a timestamp can be unlike the valid one and still be the holder's)."""
    if not ex.ok or refusal_phrase(ex, valid) is not None:
        return False
    return similarity(ex.body, valid.body) >= SIMILAR or any(i in ex.text for i in identity)


# -- the positive control -----------------------------------------------------------------------
@dataclass(frozen=True)
class Control:
    token: str
    parsed: tokens.Token
    valid: Exchange
    identity: tuple[str, ...] = ()


def _configured_token(ctx: Context) -> tuple[str, tokens.Token]:
    if not ctx.subject:
        ctx.skip("no protected GET endpoint to send tokens to: add one to 'protected'")
    token = ctx.settings.secret("auth.token_env")
    if not token:
        ctx.skip(f"the env var {ctx.settings.get('auth.token_env')} (auth.token_env) is not set")
    try:
        return token, tokens.parse(token)
    except tokens.NotAJWT:
        ctx.skip("the configured token (auth.token_env) is not a JWT: the jwt checks do not apply")


def _anonymous_like(ctx: Context, valid: Exchange, identity: Sequence[str]) -> Exchange | None:
    anonymous = ctx.fetch(anonymous_probe(ctx.subject))
    return anonymous if accepted(anonymous, valid, identity) else None


def control(ctx: Context) -> Control:
    """The configured token and its accepted call, or CannotJudge (jwt.valid_accepted fails)."""
    token, parsed = _configured_token(ctx)
    valid = ctx.fetch(valid_probe(ctx.subject))
    if not valid.ok:
        raise CannotJudge(f"jwt.valid_accepted does not pass: the configured token got {valid.status} "
                          f"on {ctx.subject}, so a refused forgery would mean nothing")
    identity = identities(parsed.payload, valid)
    if _anonymous_like(ctx, valid, identity) is not None:
        raise CannotJudge(f"{ctx.subject} answers an anonymous call like the token holder's, so no "
                          "token is needed there (auth.required judges that)")
    return Control(token, parsed, valid, identity)


def judge_forgeries(ctx: Context, base: Control, forged: Sequence[tokens.Forged], what: str) -> None:
    """Send the forgeries, then the valid token again; fail on any accepted one."""
    for item in forged:
        ctx.target.masker.add(item.token)
    sent = ctx.fetch_all([token_probe(ctx.settings, ctx.subject, f.token) for f in forged])
    after = ctx.fetch(valid_probe(ctx.subject, after=ctx.spec.id))
    hits = [(f, ex) for f, ex in zip(forged, sent, strict=True) if accepted(ex, base.valid, base.identity)]
    if hits:
        names = "; ".join(f.name for f, _ in hits[:4]) + ("; ..." if len(hits) > 4 else "")
        ctx.fail(f"{ctx.subject} accepted {len(hits)} of {len(forged)} forged tokens ({names}): "
                 f"answered {hits[0][1].status} with the token holder's response",
                 *[ex for _, ex in hits], base.valid)
    if not accepted(after, base.valid, base.identity):
        raise CannotJudge(f"after the attacks the valid token got {after.status} on {ctx.subject}: the "
                          "target may revoke or lock out on bad attempts, so its refusals cannot be "
                          "told from a lockout")
    statuses = sorted({str(ex.status) for ex in sent})
    unlike = [ex for ex in sent if ex.ok]
    note = (f"; {len(unlike)} answered 2xx, but with an error phrase or a body unlike the token "
            "holder's" if unlike else "")
    ctx.passed(f"{ctx.subject} refused all {len(forged)} {what} (answered {'/'.join(statuses)}{note}); "
               "the valid token was still accepted after")


@check("jwt.valid_accepted", title="the configured token is accepted (positive control for the jwt checks)",
       severity="critical", subjects=endpoints, needs=("auth.token_env", "protected"),
       probes=lambda s, e: [valid_probe(e), anonymous_probe(e)] if e and s.secret("auth.token_env") else [],
       remediation="Set auth.token_env to a valid, unexpired token for the target (a staging token "
                   "from your identity provider); the other jwt checks need it to judge anything.")
def valid_accepted(ctx: Context) -> None:
    _, parsed = _configured_token(ctx)
    valid = ctx.fetch(valid_probe(ctx.subject))
    if not valid.ok:
        ctx.fail(f"{ctx.subject} refused the configured token ({valid.status}): renew auth.token_env "
                 "(expired?) or check the path; the other jwt checks cannot judge", valid)
    anonymous = _anonymous_like(ctx, valid, identities(parsed.payload, valid))
    if anonymous is not None:
        ctx.passed(f"{ctx.subject} accepts the configured token ({valid.status}), but answers an "
                   f"anonymous call the same ({anonymous.status}): the jwt checks cannot judge it")
        return
    ctx.passed(f"{ctx.subject} accepts the configured token ({valid.status})")


@check("jwt.alg_none_rejected", title="a token with alg none is refused", severity="critical",
       subjects=endpoints, needs=("auth.token_env", "protected"),
       remediation="Pin the accepted algorithms when verifying (e.g. PyJWT "
                   "jwt.decode(token, key, algorithms=['RS256'])); never accept 'none' in any case.")
def alg_none_rejected(ctx: Context) -> None:
    base = control(ctx)
    judge_forgeries(ctx, base, tokens.alg_none(base.token),
                    "alg-none tokens (none/None/NONE/nOnE, with and without a signature)")


@check("jwt.bad_signature_rejected", title="a token with a tampered payload or foreign key is refused",
       severity="critical", subjects=endpoints, needs=("auth.token_env", "protected"),
       remediation="Verify every token's signature with your own key before reading a claim; never "
                   "trust keys named by the token (jwk, jku, x5u) or look keys up with an unchecked kid.")
def bad_signature_rejected(ctx: Context) -> None:
    base = control(ctx)
    judge_forgeries(ctx, base, tokens.bad_signatures(base.token),
                    "badly signed tokens (tampered, empty signature, foreign key, jwk/jku/x5u, kid)")


def _expired_token(ctx: Context) -> str | None:
    expired: str | None = ctx.settings.secret("auth.expired_token_env")
    if ctx.settings.get("auth.expired_token_env") and not expired:
        raise CannotJudge(f"the env var {ctx.settings.get('auth.expired_token_env')} "
                          "(auth.expired_token_env) is not set")
    if expired is None:
        return None
    try:
        exp: object = tokens.parse(expired).payload.get("exp")
    except tokens.NotAJWT:
        raise CannotJudge("auth.expired_token_env does not hold a JWT") from None
    if not isinstance(exp, (int, float)) or exp > time.time():
        raise CannotJudge("the token in auth.expired_token_env has not expired (no exp in the past)")
    return expired


@check("jwt.expired_rejected", title="an expired token is refused", severity="high",
       subjects=endpoints, needs=("auth.token_env", "protected"),
       remediation="Check exp (and nbf) on every request, with at most a small leeway; do not turn "
                   "expiry verification off.")
def expired_rejected(ctx: Context) -> None:
    base = control(ctx)
    real = _expired_token(ctx)
    if real is not None:
        judge_forgeries(ctx, base, [tokens.Forged("the expired token of auth.expired_token_env", real)],
                        "expired token(s) (auth.expired_token_env, genuinely signed)")
        return
    secret = tokens.crack(base.token, weak_list(ctx.settings))
    if secret is not None:  # the real key is known: an expired copy that is correctly signed
        forged = [tokens.expired(base.token, secret), *tokens.not_yet_valid(base.token, secret)]
        judge_forgeries(ctx, base, forged, "expired or not-yet-valid tokens signed with the real "
                        "(weak) secret")
        return
    copy = tokens.expired(base.token)
    ctx.target.masker.add(copy.token)
    ex = ctx.fetch(token_probe(ctx.settings, ctx.subject, copy.token))
    if accepted(ex, base.valid, base.identity):
        ctx.fail(f"{ctx.subject} accepted an expired token signed with a foreign key ({ex.status}): "
                 "neither expiry nor signature is checked", ex, base.valid)
    ctx.skip(f"an expired copy of the token (re-signed with a foreign key) got {ex.status}, which shows "
             "only that the signature is checked; set auth.expired_token_env to a genuinely expired "
             "token to judge expiry")


def weak_list(settings: Settings) -> list[str]:
    """The built-in list, then jwt.weak_secrets_file's (tried offline only)."""
    listed = list(tokens.weak_secrets())
    extra = settings.get("jwt.weak_secrets_file")
    if extra:
        path = resolve(settings, str(extra))
        try:
            listed += tokens.load_secrets(path)
        except OSError as exc:
            raise CannotJudge(f"jwt.weak_secrets_file {extra!r} cannot be read ({exc})") from None
    return list(dict.fromkeys(listed))


def resolve(settings: Settings, value: str) -> Path:
    """A file named in the config, relative to the config file's folder (or the cwd)."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (settings.config_file.parent if settings.config_file else Path.cwd()) / path
    return path


@check("jwt.weak_secret_rejected", title="tokens signed with well-known weak secrets are refused",
       severity="critical", subjects=endpoints, needs=("auth.token_env", "protected"),
       remediation="Sign with a random secret of at least 32 bytes from a secret store (or an "
                   "asymmetric key), never a default or example value; rotate it and every token.")
def weak_secret_rejected(ctx: Context) -> None:
    token, parsed = _configured_token(ctx)
    listed = weak_list(ctx.settings)
    position = tokens.crack_position(token, listed)
    if position is not None:  # offline: nothing was sent
        where = ("the built-in weak-secret list" if position <= len(tokens.weak_secrets())
                 else "jwt.weak_secrets_file")
        ctx.fail(f"the configured token ({parsed.alg}) is signed with a well-known weak secret "
                 f"(entry {position} of {where}, found offline; nothing was sent): anyone can "
                 "sign tokens the target accepts")
    base = control(ctx)
    judge_forgeries(ctx, base, tokens.weak_secret_signed(token, tokens.weak_secrets()[:SENT_WEAK_SECRETS]),
                    f"tokens signed with the {SENT_WEAK_SECRETS} commonest weak secrets (the "
                    f"configured token's secret is none of the {len(listed)} listed)")


def _public_key(ctx: Context) -> bytes:
    file = ctx.settings.get("auth.public_key_file")
    if file:
        try:
            return resolve(ctx.settings, str(file)).read_bytes()
        except OSError as exc:
            raise CannotJudge(f"auth.public_key_file {file!r} cannot be read ({exc})") from None
    url = str(ctx.settings.get("auth.jwks_url"))
    ex = ctx.fetch(Probe.get(url))
    if not ex.ok or ex.json() is None:
        raise CannotJudge(f"auth.jwks_url {url} answered {ex.status}, not a JWKS")
    return ex.body


@check("jwt.alg_confusion_rejected", title="an RS/ES public key used as an HS secret is refused",
       severity="critical", subjects=endpoints, needs=("auth.token_env", "protected"),
       remediation="Pin the algorithm to the key type (algorithms=['RS256'] for an RSA key); never "
                   "let the token's alg header choose how the key is used.")
def alg_confusion_rejected(ctx: Context) -> None:
    if not (ctx.settings.get("auth.public_key_file") or ctx.settings.get("auth.jwks_url")):
        ctx.skip("not configured: set auth.public_key_file or auth.jwks_url (the target's public key)")
    token, parsed = _configured_token(ctx)
    if not parsed.alg.startswith(ASYMMETRIC):
        ctx.skip(f"the configured token is {parsed.alg}-signed: there is no public key to confuse")
    base = control(ctx)
    try:
        forged = tokens.alg_confusion(token, _public_key(ctx))
    except (ValueError, TypeError) as exc:
        raise CannotJudge(f"the configured public key cannot be read: {exc}") from None
    judge_forgeries(ctx, base, forged, "HS256 tokens keyed with the public key (PEM with and without "
                    "trailing newline, DER)")


def _validate(settings: Settings) -> None:
    url = settings.get("auth.jwks_url")
    if url and not str(url).startswith("/"):
        schema.url(url, "auth.jwks_url")
    elif url:
        schema.path(url, "auth.jwks_url")
    if url and settings.get("auth.public_key_file"):
        raise ConfigError("auth.jwks_url", "set auth.jwks_url or auth.public_key_file, not both")


def _hosts(settings: Settings) -> list[str]:
    url = str(settings.get("auth.jwks_url") or "")
    host = urlsplit(url).hostname if url.startswith(("http://", "https://")) else None
    return [host] if host else []


FAMILY = Family(
    name="jwt",
    config={"jwt": schema.Table({"weak_secrets_file": schema.file_path})},
    validate=_validate,
    hosts=_hosts,
)
