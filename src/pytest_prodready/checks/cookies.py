"""cookies.flags: every cookie the target sets is Secure, session cookies HttpOnly, SameSite set."""

from __future__ import annotations

import re

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import base_probes
from pytest_prodready.config import Settings
from pytest_prodready.family import Family
from pytest_prodready.target import Probe

# Names that carry a login session: Django's sessionid, PHPSESSID, JSESSIONID, Flask's and
# Rails' session, Express's connect.sid, ASP.NET Core's .AspNetCore.Cookies / .Identity,
# auth_token, access_token, jwt, remember_me... ('auth' but not 'author'). CSRF cookies
# are meant to be read by scripts.
SESSION_NAME = re.compile(r"sess|sid\b|auth(?!or)|token|jwt|login|remember|connect\.sid"
                          r"|\.aspnetcore\.(cookies|identity)|\.aspxauth", re.IGNORECASE)
SCRIPT_READABLE = re.compile(r"csrf|xsrf", re.IGNORECASE)


def parse_set_cookie(set_cookie: str) -> tuple[str, dict[str, str]]:
    """The cookie's name and its attributes (lower-case names; the last occurrence wins).

    Parsed the way browsers do (RFC 6265 section 5.2), not with http.cookies: that one
    gives up on values browsers accept (spaces, JSON) and on attributes it does not know
    (Partitioned), and reads 'Priority=High' as a second cookie that takes the flags.
    """
    pair, *attrs = set_cookie.split(";")
    name = pair.partition("=")[0].strip() if "=" in pair else ""
    attributes: dict[str, str] = {}
    for attr in attrs:
        key, _, value = attr.partition("=")
        if key.strip():
            attributes[key.strip().lower()] = value.strip()
    return name, attributes


def cookie_problems(set_cookie: str) -> tuple[str, list[str]]:
    """The cookie's name and what is wrong with its flags."""
    name, attrs = parse_set_cookie(set_cookie)
    if not set_cookie.partition(";")[0].strip():
        return name, ["the Set-Cookie header cannot be parsed"]
    problems = []
    secure = "secure" in attrs
    if not secure:
        problems.append("not Secure")
    if SESSION_NAME.search(name) and not SCRIPT_READABLE.search(name) and "httponly" not in attrs:
        problems.append("a session cookie without HttpOnly")
    samesite = attrs.get("samesite")
    if samesite is None:
        problems.append("no SameSite")
    elif samesite.lower() not in ("strict", "lax", "none"):
        problems.append(f"SameSite={samesite!r} is not Strict, Lax or None (browsers ignore it)")
    elif samesite.lower() == "none" and not secure:
        problems.append("SameSite=None without Secure (browsers reject it)")
    return name, problems


def _probes(settings: Settings, subject: str) -> list[Probe]:
    if subject:
        return [Probe.get(subject)]
    # The pages that set the session (a login page, often a 302 with Set-Cookie) join the
    # ordinary responses; redirects are followed and every hop's Set-Cookie is judged.
    return base_probes(settings) + [Probe.get(p) for p in settings.get("cookies.paths", []) or []]


@check("cookies.flags", title="cookies are Secure, session cookies HttpOnly, SameSite set",
       severity="high", probes=_probes,
       remediation="Set cookies with 'Secure; HttpOnly; SameSite=Lax' (HttpOnly may be left off "
                   "only for cookies scripts must read, such as a CSRF token).")
def flags(ctx: Context) -> None:
    # One entry per cookie and problem, with every place it was set: a session cookie set
    # on every page is one cookie to fix, not one per response.
    unsafe: dict[tuple[str, str], list[str]] = {}
    names: set[str] = set()
    evidence = []
    for probed in ctx.responses():
        # Every response the probe saw: a login flow sets its session cookie on the 302.
        for ex in probed.responses():
            for line in ex.header_all("Set-Cookie"):
                name, problems = cookie_problems(line)
                names.add(name)
                if problems:
                    hop = f", on its {ex.status} redirect" if ex is not probed else ""
                    places = unsafe.setdefault((name, ", ".join(problems)), [])
                    if f"{ex.where}{hop}" not in places:
                        places.append(f"{ex.where}{hop}")
                    if probed not in evidence:
                        evidence.append(probed)
    if not names:
        ctx.skip("no Set-Cookie in the probed responses: nothing to judge")
    if unsafe:
        count = len({name for name, _ in unsafe})
        ctx.fail(f"{count} cookie(s) with unsafe flags: " + "; ".join(
            f"{name} ({', '.join(places[:3])}{f' and {len(places) - 3} more' if len(places) > 3 else ''}): "
            f"{problems}" for (name, problems), places in unsafe.items()), *evidence)
    ctx.passed(f"{len(names)} cookie(s) with safe flags")


FAMILY = Family(
    name="cookies",
    # paths: the pages that set cookies (a login page), judged beside the ordinary responses
    config={"cookies": schema.Table({"paths": schema.list_of(schema.path)})},
)
