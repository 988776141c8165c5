"""csrf.*: cookie-authenticated state changes refuse cross-site requests; OAuth checks `state`.

    [csrf]
    endpoints = ["POST /api/settings"]   # cookie-authenticated state changes
    identity = "alice"                   # whose cookie_env is sent
    safe_to_call = ["POST /api/settings"]  # may be called in a passive run (see below)
    oauth_start = "/login/github"        # optional: starts the flow (redirects with a state)
    oauth_callback = "/oauth/callback"

- csrf.cross_site_post_rejected sends, with the identity's session cookie, the request a
  hostile page makes: a form POST with a foreign Origin and Referer, and no CSRF token. On
  a vulnerable target that request is a real write as that user, so it goes out only under
  --prodready-active, or in a passive run to the endpoints listed in csrf.safe_to_call; it
  is sent once, never retried.
- csrf.oauth_state_validated calls the callback with a missing and with a foreign `state`.
  A made-up code is refused by any target, so a bare refusal proves little: with
  csrf.oauth_start the check first starts a real flow, calls the callback with the state the
  target issued (the control), and judges the forged calls against it. A forged state that
  gets the same answer as the right one is a state nobody checked.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.auth import to_login
from pytest_prodready.checks.cookies import parse_set_cookie
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge
from pytest_prodready.family import Family
from pytest_prodready.similarity import likeness
from pytest_prodready.target import PROBE_HEADER, Probe

FOREIGN_ORIGIN = "https://csrf-probe.prodready.invalid"
FORM_BODY = b"prodready=csrf-probe"
# How frameworks refuse a request without a valid CSRF token: Django/Express 403,
# Flask-WTF/Spring 400 or 403, Laravel 419, Rails 422.
CSRF_REFUSALS = frozenset({400, 403, 419, 422})
PROBE_CODE = "prodready-probe-code"
FOREIGN_STATE = "prodready-foreign-state"
REDIRECTS = frozenset({301, 302, 303, 307, 308})


# -- csrf.cross_site_post_rejected ------------------------------------------------------------
def cookie_credential(settings: Settings) -> str:
    return f"identities.{settings.get('csrf.identity')}.cookie_env"


def may_send(settings: Settings, endpoint: str) -> bool:
    """Whether this run may send the cross-site write (see the module docstring)."""
    if endpoint in (settings.get("csrf.safe_to_call") or ()):
        return True
    return bool(settings.active) and not settings.active_refused


def cross_site_probe(settings: Settings, endpoint: str) -> Probe:
    origin = str(settings.get("csrf.foreign_origin") or FOREIGN_ORIGIN)
    headers = {"Origin": origin, "Referer": origin + "/", "Sec-Fetch-Site": "cross-site",
               "Content-Type": "application/x-www-form-urlencoded"}
    return Probe.endpoint(endpoint, headers, body=FORM_BODY, credential=cookie_credential(settings),
                          follow_redirects=False, once=True)


def _cross_site_probes(settings: Settings, endpoint: str) -> list[Probe]:
    return [cross_site_probe(settings, endpoint)] if may_send(settings, endpoint) else []


@check("csrf.cross_site_post_rejected",
       title="a cookie-authenticated state change from a foreign Origin, without a token, is refused",
       severity="high", subjects=lambda s: list(s.get("csrf.endpoints") or ()),
       probes=_cross_site_probes, needs=("csrf.endpoints", "csrf.identity"),
       remediation="Require a CSRF token (or a custom header) on state-changing requests and "
                   "refuse a foreign Origin; set session cookies with SameSite=Lax or Strict.")
def cross_site_post_rejected(ctx: Context) -> None:
    endpoint, name = ctx.subject, ctx.settings.get("csrf.identity")
    if not may_send(ctx.settings, endpoint):
        ctx.skip(f"{endpoint} with {name}'s cookie is a real write on a vulnerable target: run "
                 "with --prodready-active, or list it in csrf.safe_to_call")
    ex = ctx.fetch(cross_site_probe(ctx.settings, endpoint))
    status = ex.status or 0
    origin = dict(ex.request_headers).get("Origin", FOREIGN_ORIGIN)
    if status == 401 or to_login(ex):
        raise CannotJudge(f"{endpoint} refused {name}'s session cookie itself ({status}): is it "
                          "still valid? A CSRF refusal cannot be told from a logged-out one")
    if status in (404, 405):
        raise CannotJudge(f"{endpoint} answered {status}: check the endpoint in csrf.endpoints")
    if 200 <= status < 400:
        ctx.fail(f"{endpoint} accepted a cross-site request (Origin: {origin}, no CSRF token) "
                 f"with {name}'s session cookie ({status}): any page she visits can do this", ex)
    if status >= 500:
        ctx.fail(f"{endpoint} errored with {status} on a cross-site request instead of refusing "
                 "it (expected 403)", ex)
    if status not in CSRF_REFUSALS:
        raise CannotJudge(f"{endpoint} answered {status} to a cross-site request: neither an "
                          "acceptance nor a CSRF refusal (400/403/419/422)")
    ctx.passed(f"{endpoint} refused a cross-site request with {name}'s cookie and no token ({status})")


# -- csrf.oauth_state_validated ---------------------------------------------------------------
def callback_probe(callback: str, state: str | None, cookie: str = "", tag: str = "") -> Probe:
    query = {"code": PROBE_CODE, **({"state": state} if state is not None else {})}
    sep = "&" if "?" in callback else "?"
    headers = {"Cookie": cookie} if cookie else {}
    if tag:  # keeps two calls of one flow apart in the probe cache
        headers[PROBE_HEADER] = tag
    return Probe.get(f"{callback}{sep}{urlencode(query)}", headers, follow_redirects=False)


def _forged_probes(settings: Settings, _subject: str) -> list[Probe]:
    if settings.get("csrf.oauth_start"):
        return []  # a flow: each call depends on the one before (the judge sends them)
    callback = str(settings.get("csrf.oauth_callback"))
    return [callback_probe(callback, None), callback_probe(callback, FOREIGN_STATE)]


def accepted(ex: Exchange) -> bool:
    """A callback answer that logs the caller in: 2xx, or a redirect that is not to an error or
    login page."""
    status = ex.status or 0
    if 200 <= status < 300:
        return True
    if status in REDIRECTS:
        location = (ex.header("Location") or "").lower()
        return "error" not in location and not to_login(ex)
    return False


def _start(ctx: Context, tag: str) -> tuple[Exchange, str, str]:
    """Start a flow: its exchange, the state it issued, and the cookies to send back."""
    start = str(ctx.settings.get("csrf.oauth_start"))
    ex = ctx.fetch(Probe.get(start, {PROBE_HEADER: tag}, follow_redirects=False))
    location = ex.header("Location") or ""
    if ex.status not in REDIRECTS or not location:
        raise CannotJudge(f"{start} answered {ex.status} without a redirect to the provider: "
                          "check csrf.oauth_start")
    states = parse_qs(urlsplit(location).query).get("state") or []
    if not states or not states[0]:
        ctx.fail(f"{start} starts the OAuth flow without a state parameter ({location[:120]}): "
                 "nothing ties the callback to the browser that started it", ex)
    pairs = []
    for line in ex.header_all("Set-Cookie"):
        name, _ = parse_set_cookie(line)
        value = line.partition(";")[0].partition("=")[2].strip()
        if name:
            ctx.target.masker.add(value)  # the target's session: a secret like any cookie
            pairs.append(f"{name}={value}")
    return ex, states[0], "; ".join(pairs)


def _verdict(ex: Exchange, control: Exchange | None, threshold: float) -> str | None:
    """What is wrong with a forged callback's answer (None: it was refused)."""
    if accepted(ex):
        where = f" to {ex.header('Location') or ''}" if ex.status in REDIRECTS else ""
        return f"accepted ({ex.status}{where})"
    if control is not None and ex.status == control.status \
            and (ex.header("Location") or "") == (control.header("Location") or "") \
            and likeness(control.text, ex.text, threshold).score >= threshold:
        return (f"answered exactly like the callback with the right state ({ex.status}): the "
                "state makes no difference")
    return None


@check("csrf.oauth_state_validated", title="an OAuth callback with a missing or foreign state is refused",
       severity="high", probes=_forged_probes, needs=("csrf.oauth_callback",),
       remediation="Issue a random state per login, keep it in the user's session, and refuse "
                   "a callback whose state is missing or differs before exchanging the code.")
def oauth_state_validated(ctx: Context) -> None:
    callback = str(ctx.settings.get("csrf.oauth_callback"))
    threshold = 0.9
    control: Exchange | None = None
    shown: list[Exchange] = []
    if ctx.settings.get("csrf.oauth_start"):
        # The control first, in its own flow: a target that consumes the state on first use
        # must not see a forged call before the right one.
        start1, state, cookie1 = _start(ctx, "1")
        control = ctx.fetch(callback_probe(callback, state, cookie1, "control"))
        start2, _, cookie2 = _start(ctx, "2")
        forged = {"a foreign state": ctx.fetch(callback_probe(callback, FOREIGN_STATE, cookie2, "f")),
                  "no state": ctx.fetch(callback_probe(callback, None, cookie2, "m"))}
        shown = [start1, control, start2]
    else:
        forged = {"a foreign state": ctx.fetch(callback_probe(callback, FOREIGN_STATE)),
                  "no state": ctx.fetch(callback_probe(callback, None))}
    for ex in forged.values():
        if (ex.status or 0) >= 500:
            raise CannotJudge(f"{callback} errored with {ex.status}: neither accepted nor refused")
    problems = {what: v for what, ex in forged.items()
                if (v := _verdict(ex, control, threshold)) is not None}
    if problems:
        ctx.fail(f"the OAuth callback {callback} with " + "; with ".join(
            f"{what} {problem}" for what, problem in problems.items()),
            *shown, *forged.values())
    how = ", ".join(f"{what}: {ex.status}" for what, ex in forged.items())
    if control is not None:
        ctx.passed(f"{callback} refused the forged callbacks ({how}) unlike the one with the "
                   f"state it issued ({control.status})")
    else:
        ctx.passed(f"{callback} refused the forged callbacks ({how}); set csrf.oauth_start "
                   "to compare them with a real flow")


# -- config -----------------------------------------------------------------------------------
def _validate(settings: Settings) -> None:
    problems: list[tuple[str, str]] = []
    csrf = settings.get("csrf") or {}
    people = settings.get("identities") or {}
    name = csrf.get("identity")
    if csrf.get("endpoints") and not name:
        problems.append(("csrf.identity", "is required with csrf.endpoints: whose session "
                                          "cookie to send"))
    if name and name not in people:
        problems.append(("csrf.identity", f"no identity {name!r} in [identities] (configured: "
                                          f"{', '.join(sorted(people)) or 'none'})"))
    elif name and not people[name].get("cookie_env"):
        problems.append(("csrf.identity", f"identity {name!r} has no cookie_env: CSRF rides on a "
                                          "cookie session"))
    unknown = [e for e in csrf.get("safe_to_call") or () if e not in (csrf.get("endpoints") or ())]
    if unknown:
        problems.append(("csrf.safe_to_call", f"{', '.join(unknown)} is not in csrf.endpoints"))
    if problems:
        raise schema.config_error(problems)


FAMILY = Family(
    name="csrf",
    config={"csrf": schema.Table({
        "endpoints": schema.list_of(schema.endpoint),
        "identity": schema.string,
        "safe_to_call": schema.list_of(schema.endpoint),
        "foreign_origin": schema.origin,
        "oauth_start": schema.path,
        "oauth_callback": schema.path,
    })},
    validate=_validate,
)
