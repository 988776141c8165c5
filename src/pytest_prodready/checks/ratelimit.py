"""ratelimit.enforced: each configured endpoint refuses a burst at its limit, and says so truthfully.

Active (needs --prodready-active): for `"POST /api/auth/login" = "5/minute"` the check sends
the endpoint one request after another and stops at the first refusal, never sending more
than limit x 1.5 + 5 requests (here 12), and only when the run's request budget has that
many left. A refusal is a 429, or a 403 that says it is throttling (Retry-After, a
remaining count of 0, or "rate limit"/"too many requests" in its body).

Every response's rate-limit headers are read (ratelimit_headers.py: X-RateLimit-*, the
IETF drafts' RateLimit-Limit/Remaining/Reset, RateLimit + RateLimit-Policy), and what is
advertised is compared with what happened: the quota the first response promises against
the request that was refused, a refusal that still advertises requests left, a window
other than the configured one. Retry-After takes precedence over any advertised reset.

The requests are not prefetched (a burst that stops at the first refusal is sequential by
nature) and are not declared as `probes=`: the plugin prefetches declared probes even
without --prodready-active, and an active check must send nothing then. Each request is a
distinct probe (an `X-Prodready-Seq` header), sent with `expect_refusal` so the client
neither retries a 429 nor counts it as the checker being rate limited.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge
from pytest_prodready.family import Family
from pytest_prodready.ratelimit_headers import Advertisement, read
from pytest_prodready.target import SEQ_HEADER, Probe

WINDOWS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
THROTTLE_TEXT = re.compile(r"rate.?limit|too many requests|throttl|slow down|quota exceeded",
                           re.IGNORECASE)
# A Retry-After and an advertised reset "agree" within this much (seconds, and a fraction).
RESET_TOLERANCE_S = 2.0


def parse_rate(text: str) -> tuple[int, float]:
    """'5/minute' -> (5, 60.0)."""
    count, _, unit = text.replace(" ", "").partition("/")
    return int(count), WINDOWS[unit]


def max_requests(limit: int) -> int:
    """The most requests a check may send for a limit: limit x 1.5 + 5."""
    return limit * 3 // 2 + 5


def configured(settings: Settings) -> dict[str, str]:
    """The rate_limits table with its keys normalised to 'METHOD /path'."""
    table = settings.get("rate_limits") or {}
    return {schema.endpoint(key, "rate_limits"): str(value) for key, value in table.items()}


def burst_probe(endpoint: str, burst: str, n: int) -> Probe:
    """The n-th request of a burst: distinct (the probe cache sends a probe once per run),
    not retried, not redirected."""
    method = endpoint.partition(" ")[0]
    headers = {SEQ_HEADER: f"{burst}.{n}"}
    body = b""
    if method in ("POST", "PUT", "PATCH"):
        headers["Content-Type"] = "application/json"
        body = b"{}"
    return Probe.endpoint(endpoint, headers, body=body, follow_redirects=False, expect_refusal=True)


def is_refusal(ex: Exchange, ad: Advertisement) -> bool:
    if ex.status == 429:
        return True
    if ex.status == 403:
        return (ad.retry_after_s is not None or ad.remaining == 0
                or bool(THROTTLE_TEXT.search(ex.text[:4000])))
    return False


def _budget_left(ctx: Context) -> int:
    budget = ctx.target.budget
    return int(budget.limit) - int(budget.spent)


def _advertised_notes(first: Advertisement, refusal: Advertisement | None, accepted: int,
                      limit: int, window: float) -> tuple[list[str], list[str]]:
    """(disagreements that fail the check, notes for the message)."""
    wrong: list[str] = []
    notes: list[str] = []
    if first.remaining is not None and refusal is not None:
        promised = first.remaining + 1  # this request and what it says is left
        if promised != accepted:
            wrong.append(f"the first response advertised {first.remaining} more requests "
                         f"({first.describe()}), but {accepted} were accepted in all")
    if refusal is not None and refusal.remaining is not None and refusal.remaining > 0:
        wrong.append(f"the refusal still advertised {refusal.remaining} requests remaining")
    if first.limit is not None and first.limit != limit:
        notes.append(f"advertised quota {first.limit} differs from the configured {limit}")
    if first.window_s is not None and abs(first.window_s - window) > 0.5:
        notes.append(f"advertised window {first.window_s:g}s differs from the configured {window:g}s")
    if refusal is not None and refusal.retry_after_s is not None:
        resets = [p.reset_s for p in refusal.policies if p.reset_s is not None]
        if resets and all(abs(r - refusal.retry_after_s) > RESET_TOLERANCE_S + 0.1 * r for r in resets):
            notes.append(f"Retry-After {refusal.retry_after_s:g}s disagrees with the advertised reset "
                         f"{min(resets):g}s (Retry-After wins)")
    for ad in (first, refusal):
        for problem in ad.problems if ad is not None else ():
            if problem not in notes:
                notes.append(problem)
    return wrong, notes


@dataclass(frozen=True)
class Burst:
    """The burst as evidence: what was sent, what came back, what each answer advertised."""

    endpoint: str
    rate: str
    cap: int
    statuses: tuple[int | None, ...]
    advertised: tuple[str, ...]  # per response, Advertisement.describe()
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "ratelimit", "endpoint": self.endpoint, "configured": self.rate, "cap": self.cap,
                "sent": len(self.statuses), "statuses": list(self.statuses),
                "advertised": list(self.advertised), "elapsed_s": round(self.elapsed_s, 3)}

    def render(self) -> str:
        runs: list[str] = []
        for status, group in itertools.groupby(self.statuses):
            count = len(list(group))
            runs.append(f"{status} x{count}" if count > 1 else str(status))
        lines = [f"burst of {len(self.statuses)} to {self.endpoint} in {self.elapsed_s:.2f}s "
                 f"(configured {self.rate}, at most {self.cap}): {', '.join(runs)}"]
        if self.advertised:
            lines.append(f"  first answer advertised: {self.advertised[0]}")
            lines.append(f"  last answer advertised:  {self.advertised[-1]}")
        return "\n".join(lines)


def _record(ctx: Context, endpoint: str, rate: str, cap: int, seen: list[Exchange], started: float) -> None:
    ctx.add_fact(Burst(endpoint, rate, cap, tuple(ex.status for ex in seen),
                       tuple(read(ex.headers).describe() for ex in seen), time.monotonic() - started))


def _subjects(settings: Settings) -> list[str]:
    return list(configured(settings))


@check("ratelimit.enforced", title="429 arrives within the configured limit plus slack, with Retry-After",
       severity="high", mode="active", needs=("rate_limits",), subjects=_subjects,
       remediation="Put a rate limiter in front of the endpoint (flask-limiter, slowapi, "
                   "express-rate-limit, nginx limit_req with limit_req_status 429) at the configured "
                   "rate, answering 429 with Retry-After, and advertise the limit it really enforces.")
def enforced(ctx: Context) -> None:
    endpoint = ctx.subject
    rate = configured(ctx.settings)[endpoint]
    limit, window = parse_rate(rate)
    cap = max_requests(limit)
    left = _budget_left(ctx)
    if left < cap:
        raise CannotJudge(f"proving {endpoint} is limited at {rate} takes up to {cap} requests, and "
                          f"the run's request budget has {left} left; raise request_budget")
    burst = secrets.token_hex(4)
    started = time.monotonic()
    first: Advertisement | None = None
    seen: list[Exchange] = []
    for n in range(1, cap + 1):
        ex = ctx.fetch(burst_probe(endpoint, burst, n), rate_limit_is_answer=True)
        ad = read(ex.headers)
        seen.append(ex)
        first = first or ad
        if is_refusal(ex, ad):
            _record(ctx, endpoint, rate, cap, seen, started)
            _judge_refusal(ctx, endpoint, rate, limit, window, cap, n, seen, first, ad, started)
            return
        if ex.status == 503 and n > 1 and seen[0].status != 503:
            _record(ctx, endpoint, rate, cap, seen, started)
            ctx.fail(f"{endpoint} answered 503 to request {n} after {n - 1} accepted, not 429: a "
                     f"limiter that answers 503 (nginx's default limit_req_status) reads as an outage "
                     f"to clients and monitors (configured {rate})", seen[0], ex)
    elapsed = time.monotonic() - started
    _record(ctx, endpoint, rate, cap, seen, started)
    assert first is not None
    if elapsed > window:
        raise CannotJudge(f"the {cap} requests took {elapsed:.1f}s, longer than the {window:g}s window "
                          f"of {rate}: no refusal was due; cannot judge")
    statuses = sorted({str(ex.status) for ex in seen})
    advert = ""
    if first.any:
        drained = next((i for i, ex in enumerate(seen, 1) if read(ex.headers).remaining == 0), None)
        counted = (f" and counted down to 0 remaining by request {drained}, but refused nothing"
                   if drained else " but did not enforce it")
        advert = f"; it advertises {first.describe()}{counted}"
    hint = ("; every answer was 404: is the path right?" if statuses == ["404"] else "")
    ctx.fail(f"sent {cap} requests to {endpoint} in {elapsed:.2f}s (configured {rate}, limit x 1.5 + 5); "
             f"none was refused (statuses {', '.join(statuses)}): expected a 429 by request "
             f"{limit + 1}{advert}{hint}", seen[0], seen[-1])


def _judge_refusal(ctx: Context, endpoint: str, rate: str, limit: int, window: float, cap: int,
                   n: int, seen: list[Exchange], first: Advertisement, refusal: Advertisement,
                   started: float) -> None:
    elapsed = time.monotonic() - started
    ex = seen[-1]
    accepted = n - 1
    if accepted == 0:
        wait = refusal.reset_s
        raise CannotJudge(f"the first request to {endpoint} was already refused ({ex.status}): the "
                          "window was used up before this check (earlier requests of the run?) or "
                          f"the endpoint refuses everything; run it again"
                          f"{f' after {wait:g}s' if wait is not None else ''}")
    evidence = (seen[0], ex) if len(seen) > 1 else (ex,)
    if refusal.reset_s is None:
        ctx.fail(f"{endpoint} refused request {n} with {ex.status} after {accepted} accepted, but "
                 "said neither Retry-After nor when the limit resets: clients cannot back off "
                 "correctly", *evidence)
    wrong, notes = _advertised_notes(first, refusal, accepted, limit, window)
    if wrong:
        ctx.fail(f"{endpoint} refused request {n} after {accepted} accepted (configured {rate}), but "
                 f"what it advertises disagrees: {'; '.join(wrong)}", *evidence)
    over = f", more than the configured {limit} but within the slack of {cap}" if accepted > limit else ""
    under = f", fewer than the configured {limit}" if accepted < limit else ""
    retry = (f"Retry-After {refusal.retry_after_s:g}s" if refusal.retry_after_s is not None
             else f"reset in {refusal.reset_s:g}s")
    extra = f"; {'; '.join(notes)}" if notes else ""
    ctx.passed(f"{endpoint}: {accepted} requests accepted, request {n} refused with {ex.status} "
               f"({retry}) in {elapsed:.2f}s; observed limit {accepted}{over}{under} (configured "
               f"{rate}); advertised: {first.describe()}{extra}")


# -- ratelimit.login_lockout --------------------------------------------------------------------
LOCKED_STATUSES = frozenset({401, 403, 423, 429})
# The longest lock this check waits out to restore the account; longer ones are reported.
MAX_RESTORE_WAIT_S = 30.0


def _login_probe(settings: Settings, tag: str, password: str) -> Probe:
    endpoint = str(settings.get("lockout.endpoint"))
    user_field = str(settings.get("lockout.username_field") or "username")
    pass_field = str(settings.get("lockout.password_field") or "password")
    username = settings.secret("lockout.username_env") or ""
    fields = {user_field: username, pass_field: password}
    if settings.get("lockout.format") == "form":
        from urllib.parse import urlencode

        body, ctype = urlencode(fields).encode(), "application/x-www-form-urlencoded"
    else:
        import json

        body, ctype = json.dumps(fields).encode(), "application/json"
    return Probe.endpoint(endpoint, {"Content-Type": ctype, SEQ_HEADER: tag}, body=body,
                          follow_redirects=False, expect_refusal=True)


def _logged_in(ex: Exchange) -> bool:
    return ex.status is not None and 200 <= ex.status < 400 and ex.status not in LOCKED_STATUSES


SESSION_KEY = re.compile(r"token|session|jwt|access|refresh|sid|auth", re.IGNORECASE)


def _mask_session(ctx: Context, ex: Exchange) -> None:
    """A successful login hands out a real session (a cookie, a token in the JSON body): it
    joins the masker before anything is rendered, like the configured secrets."""
    if not _logged_in(ex):
        return
    for line in ex.header_all("Set-Cookie"):
        value = line.split(";", 1)[0].partition("=")[2].strip()
        if len(value) >= 4:
            ctx.target.masker.add(value)
    try:
        data = ex.json()
    except Exception:
        return
    todo = [data]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and len(value) >= 4 and SESSION_KEY.search(str(key)):
                    ctx.target.masker.add(value)
                elif isinstance(value, (dict, list)):
                    todo.append(value)
        elif isinstance(node, list):
            todo.extend(node)


def _login(ctx: Context, probe: Probe) -> Exchange:
    ex = ctx.fetch(probe, rate_limit_is_answer=True)
    _mask_session(ctx, ex)
    return ex


@check("ratelimit.login_lockout", title="after N failed logins further attempts are blocked",
       severity="high", mode="active",
       needs=("lockout.endpoint", "lockout.username_env", "lockout.password_env"),
       remediation="Lock the account (or the client) after N failed logins for a set time, refusing "
                   "even the correct password meanwhile (423 or 429 with Retry-After), and offer an "
                   "unlock path for support.")
def login_lockout(ctx: Context) -> None:
    settings = ctx.settings
    endpoint = str(settings.get("lockout.endpoint"))
    attempts = int(settings.get("lockout.attempts") or 5)
    lock_s = settings.get("lockout.lock_s")
    password = settings.secret("lockout.password_env") or ""
    if ctx.target.untrusted and ctx.target.url_for(endpoint.partition(" ")[2]).startswith("https:"):
        raise CannotJudge(f"the certificate does not verify ({ctx.target.untrusted}); a password goes "
                          "only over verified TLS: set tls.ca_bundle")
    left = _budget_left(ctx)
    if left < attempts + 3:
        raise CannotJudge(f"the lockout check takes up to {attempts + 3} requests and the run's "
                          f"request budget has {left} left; raise request_budget")
    run = secrets.token_hex(4)
    control = _login(ctx, _login_probe(settings, f"{run}.control", password))
    if not _logged_in(control):
        raise CannotJudge(f"the configured account does not log in at {endpoint} ({control.status}) "
                          "before the test: check lockout.username_env/password_env, or it is locked "
                          "from an earlier run")
    wrong = f"prodready-wrong-{secrets.token_hex(6)}"
    failures = [_login(ctx, _login_probe(settings, f"{run}.fail{n}", wrong))
                for n in range(1, attempts + 1)]
    let_in = [n for n, ex in enumerate(failures, 1) if _logged_in(ex)]
    if let_in:
        first = failures[let_in[0] - 1]
        ctx.fail(f"{endpoint} accepted a wrong password (attempt {let_in[0]}: {first.status}); the "
                 "lockout cannot be judged on a login that lets anyone in", first)
    after = _login(ctx, _login_probe(settings, f"{run}.after", password))
    if _logged_in(after):
        ctx.fail(f"after {attempts} failed logins the correct password still logged in at {endpoint} "
                 f"({after.status}): no lockout", failures[-1], after)
    retry = read(after.headers).reset_s
    locked = (f"after {attempts} failed logins the correct password was refused ({after.status}"
              f"{f', Retry-After {retry:g}s' if retry is not None else ''})")
    restored = _restore(ctx, settings, run, password, lock_s, retry)
    ctx.passed(f"{endpoint}: {locked}; {restored}")


def _restore(ctx: Context, settings: Settings, run: str, password: str, lock_s: Any,
             retry: float | None) -> str:
    """Unlock the account when the server allows it (its unlock endpoint, or by waiting out a
    short lock), and say so when it cannot."""
    unlock = settings.get("lockout.unlock")
    if unlock:
        credential = "auth.token_env" if settings.secret("auth.token_env") else None
        ex = ctx.fetch(Probe.endpoint(str(unlock), {SEQ_HEADER: f"{run}.unlock"}, credential=credential,
                                      follow_redirects=False, expect_refusal=True),
                       rate_limit_is_answer=True)
        if ex.status is None or ex.status >= 400:
            return (f"the account could NOT be restored: {unlock} answered {ex.status}; it stays "
                    f"locked{f' for up to {lock_s:g}s' if lock_s else ''}")
        wait = 0.0
    else:
        wait = float(lock_s) if lock_s is not None else (retry if retry is not None else -1.0)
        if wait < 0 or wait > MAX_RESTORE_WAIT_S:
            how = f"{wait:g}s" if wait >= 0 else "an unknown time"
            return (f"the account stays locked for {how} (longer than this check waits, "
                    f"{MAX_RESTORE_WAIT_S:g}s, and no lockout.unlock endpoint is configured): it was "
                    "NOT restored")
        ctx.target.throttle.sleep(wait + 0.5)
    again = _login(ctx, _login_probe(settings, f"{run}.restored", password))
    if _logged_in(again):
        how = f"via {unlock}" if unlock else f"after waiting {wait:g}s"
        return f"the account was restored ({how}: the correct password logs in again)"
    return (f"the account could NOT be restored: the correct password is still refused ({again.status}) "
            f"{f'after {wait:g}s' if not unlock else f'after {unlock}'}")


FAMILY = Family(
    name="ratelimit",
    config={
        "rate_limits": schema.MapOf(schema.rate, key_check=schema._endpoint_key),
        "lockout": schema.Table({
            "endpoint": schema.endpoint, "username_env": schema.env_name, "password_env": schema.env_name,
            "attempts": schema.integer(1, 50), "lock_s": schema.number(0, 86_400),
            "format": schema.one_of("json", "form"), "username_field": schema.string,
            "password_field": schema.string, "unlock": schema.endpoint,
        }),
    },
)
