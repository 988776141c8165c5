"""exposure.default_credentials: well-known default logins of admin products are refused.

Each product in PRODUCTS is tried only where it is recognised first (a GET whose answer
carries the product's own marker), with one login attempt per product and base path per
run (`Probe.once`: never retried, one delivery even under xdist), and the attempt is
judged by the product's success marker in the answer, never by the status alone: a site
that answers 200 to everything does not "accept" a login. Nothing is sent when
`default_credentials.lockout = true` says that a failed login could lock an account.

Subjects are 'product at base path' (`grafana@/`, `grafana@/grafana`), for every product
and every `default_credentials.paths` entry (default: the site root).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge
from pytest_prodready.family import Family
from pytest_prodready.target import Probe


@dataclass(frozen=True)
class Product:
    """How to recognise an admin product, try its default login once, and tell success."""

    name: str
    recognise_path: str
    recognised: Callable[[Exchange], bool]
    login: Callable[[str], Probe]
    logged_in: Callable[[Exchange], bool]
    user: str
    password: str


def _grafana_page(ex: Exchange) -> bool:
    return ex.status == 200 and ("grafanaBootData" in ex.text or "<title>Grafana</title>" in ex.text)


def _grafana_login(base: str) -> Probe:
    # What Grafana's own login form sends (public/app/core/components/Login: POST /login).
    body = json.dumps({"user": "admin", "password": "admin"}).encode()
    return Probe.of("POST", _join(base, "/login"), {"Content-Type": "application/json"}, body,
                    follow_redirects=False, once=True)


def _grafana_logged_in(ex: Exchange) -> bool:
    answer = ex.json()
    return ex.status == 200 and isinstance(answer, dict) and answer.get("message") == "Logged in"


PRODUCTS: dict[str, Product] = {
    "grafana": Product("Grafana", "/login", _grafana_page, _grafana_login, _grafana_logged_in,
                       "admin", "admin"),
}


def _join(base: str, path: str) -> str:
    return (base.rstrip("/") + path) if base != "/" else path


def _bases(settings: Settings) -> list[str]:
    return [str(p) for p in settings.get("default_credentials.paths") or ["/"]]


def _subjects(settings: Settings) -> list[str]:
    return [f"{key}@{base}" for key in PRODUCTS for base in _bases(settings)]


def _split(subject: str) -> tuple[Product, str]:
    key, _, base = subject.partition("@")
    return PRODUCTS[key], base or "/"


def _probes(settings: Settings, subject: str) -> dict[str, Probe]:
    if settings.get("default_credentials.lockout"):
        return {}
    product, base = _split(subject)
    return {"recognise": Probe.get(_join(base, product.recognise_path), follow_redirects=False)}


@check("exposure.default_credentials", title="well-known default logins (e.g. Grafana admin/admin) "
                                             "are refused",
       severity="critical", subjects=_subjects, probes=_probes,
       remediation="Change the product's default password (or disable the account) before it is "
                   "reachable, e.g. Grafana: set [security] admin_password, or GF_SECURITY_ADMIN_PASSWORD.")
def default_credentials(ctx: Context) -> None:
    if ctx.settings.get("default_credentials.lockout"):
        ctx.skip("default_credentials.lockout is true: a failed login could lock the account, so "
                 "no default login is tried")
    product, base = _split(ctx.subject)
    page = ctx.fetch(Probe.get(_join(base, product.recognise_path), follow_redirects=False))
    if not product.recognised(page):
        ctx.skip(f"no {product.name} at {_join(base, product.recognise_path)} ({page.status}): "
                 "nothing to try")
    attempt = ctx.fetch(product.login(base), rate_limit_is_answer=True)
    where = f"{product.name} at {_join(base, product.recognise_path)}"
    login = f"{product.user}/{product.password}"
    if product.logged_in(attempt):
        ctx.fail(f"{where} accepted the default login {login} ({attempt.status}, its success "
                 "marker in the answer): anyone can administer it", page, attempt)
    if attempt.status is not None and (attempt.status >= 500 or attempt.status == 429):
        raise CannotJudge(f"{where} answered the login attempt with {attempt.status}: neither "
                          "accepted nor refused")
    ctx.passed(f"{where} did not accept the default login {login}: it answered {attempt.status} "
               f"without {product.name}'s success marker")


FAMILY = Family(
    name="credentials",
    config={"default_credentials": schema.Table({
        "lockout": schema.boolean,            # true: never try a login (an account could lock)
        "paths": schema.list_of(schema.path),  # base paths where admin products live
    })},
)
