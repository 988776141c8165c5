"""cookies.flags: every cookie the target sets is Secure, session cookies HttpOnly, SameSite set."""

from __future__ import annotations

import re
from http.cookies import CookieError, SimpleCookie

from pytest_prodready.checking import Context
from pytest_prodready.checks.common import base_probes
from pytest_prodready.config import Settings
from pytest_prodready.registry import check
from pytest_prodready.target import Probe

# Names that carry a login session. CSRF cookies are meant to be read by scripts.
SESSION_NAME = re.compile(r"sess|sid\b|auth|token|jwt|login|remember|connect\.sid", re.IGNORECASE)
SCRIPT_READABLE = re.compile(r"csrf|xsrf", re.IGNORECASE)


def cookie_problems(set_cookie: str) -> tuple[str, list[str]]:
    """The cookie's name and what is wrong with its flags."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(set_cookie)
    except CookieError:
        jar = SimpleCookie()
    if not jar:
        return set_cookie.split("=", 1)[0].strip(), ["the Set-Cookie header cannot be parsed"]
    name, morsel = next(iter(jar.items()))
    problems = []
    if not morsel["secure"]:
        problems.append("not Secure")
    if SESSION_NAME.search(name) and not SCRIPT_READABLE.search(name) and not morsel["httponly"]:
        problems.append("a session cookie without HttpOnly")
    samesite = str(morsel["samesite"]).lower()
    if not samesite:
        problems.append("no SameSite")
    elif samesite == "none" and not morsel["secure"]:
        problems.append("SameSite=None without Secure (browsers reject it)")
    return name, problems


def _probes(settings: Settings, subject: str) -> list[Probe]:
    return [Probe.get(subject)] if subject else base_probes(settings)


@check("cookies.flags", title="cookies are Secure, session cookies HttpOnly, SameSite set",
       severity="high", probes=_probes,
       remediation="Set cookies with 'Secure; HttpOnly; SameSite=Lax' (HttpOnly may be left off "
                   "only for cookies scripts must read, such as a CSRF token).")
def flags(ctx: Context) -> None:
    findings: list[str] = []
    seen = 0
    evidence = []
    for ex in ctx.responses():
        lines = ex.header_all("Set-Cookie")
        for line in lines:
            seen += 1
            name, problems = cookie_problems(line)
            if problems:
                findings.append(f"{name} ({ex.where}): {', '.join(problems)}")
                if ex not in evidence:
                    evidence.append(ex)
    if not seen:
        ctx.skip("no Set-Cookie in the probed responses: nothing to judge")
    if findings:
        ctx.fail(f"{len(findings)} cookie(s) with unsafe flags: " + "; ".join(findings), *evidence)
    ctx.passed(f"{seen} cookie(s) with safe flags")
