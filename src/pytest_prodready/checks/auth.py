"""auth.*: protected endpoints refuse anonymous callers and made-up tokens."""

from __future__ import annotations

import itertools
import re
from urllib.parse import urlsplit

from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import anonymous_probe, protected
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.family import Family
from pytest_prodready.target import Probe

REFUSED = frozenset({401, 403})
# Words of a login page's path, matched as whole words of a path segment: '/accounts/login/'
# (Django), '/users/sign_in' (Devise), '/Account/Login' (ASP.NET), '/wp-login.php',
# '/signin-oidc', Keycloak's '/protocol/openid-connect/auth', '/oauth2/authorize', '/sso/...'.
# A substring would take '/authors' or '/blog/logins-explained' for a login page: a false pass.
LOGIN_WORDS = frozenset({"login", "logon", "signin", "auth", "authorize", "authenticate", "oauth",
                         "oauth2", "sso", "saml", "saml2", "cas", "openid", "oidc"})
LOGIN_PHRASES = frozenset({("sign", "in"), ("log", "in")})
GARBAGE_TOKEN = "prodready-invalid-token"


def _random_jwt() -> str:
    """A well-formed JWT signed with a key the target cannot know (fixed, so cache-friendly)."""
    import jwt

    return jwt.encode({"sub": "prodready-probe", "exp": 4102444800},
                      "prodready-not-the-real-signing-key-0f3b9d7e", algorithm="HS256")


def refusal(ex: Exchange) -> str | None:
    """How the response refuses the caller, or None when it does not."""
    if ex.status in REFUSED:
        return str(ex.status)
    if to_login(ex):
        return f"{ex.status} redirect to the login page"
    return None


def to_login(ex: Exchange) -> bool:
    """True when the response redirects to a login page (how web apps refuse)."""
    location = urlsplit(ex.header("Location") or "").path
    return ex.status in (301, 302, 303, 307, 308) and is_login_path(location)


def is_login_path(path: str) -> bool:
    """True when a path names a login page (see LOGIN_WORDS)."""
    for segment in path.lower().split("/"):
        words = [w for w in re.split(r"[-_.]", segment) if w]
        if LOGIN_WORDS & set(words) or LOGIN_PHRASES & set(itertools.pairwise(words)):
            return True
    return False


def verdict_problem(ex: Exchange) -> str:
    """What an un-refused response means, in words a developer acts on."""
    status = ex.status or 0
    if 200 <= status < 300:
        return f"answered {status}: anyone can call it"
    if status == 404:
        return "answered 404: check the path in 'protected' (expected 401/403)"
    if status >= 500:
        return f"errored with {status} instead of refusing (expected 401/403)"
    return f"answered {status} (expected 401/403)"


def _anonymous(_settings: Settings, endpoint: str) -> list[Probe]:
    return [anonymous_probe(endpoint)]


def token_probes(settings: Settings, endpoint: str) -> list[Probe]:
    header = settings.get("auth.header") or "Authorization"
    scheme = settings.get("auth.scheme", "Bearer")
    probes = []
    for token in (GARBAGE_TOKEN, _random_jwt()):
        value = f"{scheme} {token}".strip() if header.lower() == "authorization" else token
        base = anonymous_probe(endpoint)
        headers = tuple(sorted({**dict(base.headers), header: value}.items()))
        probes.append(Probe(base.method, base.path, headers, base.body, None, False, anonymous=True))
    return probes


@check("auth.required", title="protected endpoints refuse anonymous calls with 401/403",
       severity="critical", subjects=protected, probes=_anonymous, needs=("protected",),
       remediation="Require authentication on this endpoint and answer 401 (or 403) to anonymous callers.")
def required(ctx: Context) -> None:
    ex = ctx.fetch(anonymous_probe(ctx.subject))
    how = refusal(ex)
    if how is None:
        ctx.fail(f"{ctx.subject} without credentials {verdict_problem(ex)}", ex)
    ctx.passed(f"{ctx.subject} refuses anonymous callers ({how})")


@check("auth.invalid_token_rejected", title="a malformed or random bearer token gets 401",
       severity="critical", subjects=protected, probes=token_probes, needs=("protected",),
       remediation="Validate the token's signature and format on every request; answer 401 when it fails.")
def invalid_token_rejected(ctx: Context) -> None:
    accepted = [ex for ex in ctx.answers(token_probes(ctx.settings, ctx.subject)) if refusal(ex) is None]
    if accepted:
        ctx.fail(f"{ctx.subject} with a made-up token {verdict_problem(accepted[0])}", *accepted)
    ctx.passed(f"{ctx.subject} refuses malformed and unknown tokens")


# protected and auth are core keys (several families probe the protected endpoints, and the
# client sends auth's token): the family adds none of its own.
FAMILY = Family(name="auth")
