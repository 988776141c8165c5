"""exposure.default_credentials: well-known default logins of admin products are refused.

PRODUCTS is a table: for each admin product, how it is recognised at a base path (a GET of
its login page or of an API that answers anonymously, judged by the product's own marker),
the one default login tried there, and the success marker judged in the answer to it. A
product is tried only where it is recognised first, with one login attempt per product and
base path per run (`Probe.once`: never retried, one delivery even under xdist), and the
attempt is judged by the product's success marker, never by the status alone: a site that
answers 200 to everything does not "accept" a login. Nothing is sent when
`default_credentials.lockout = true` says that a failed login could lock an account.

Subjects are 'product at base path' (`grafana@/`, `tomcat@/tomcat`), for every product and
every `default_credentials.paths` entry (default: the site root). The secrets a product
hands out on success (session cookies, tokens) are masked in the evidence by the client.

The table (product: recognised by -> the one attempt -> the success marker):
- Grafana: GET /login with `grafanaBootData` or its title -> POST /login JSON admin/admin
  -> 200 `{"message": "Logged in"}`;
- RabbitMQ management: GET /api/overview, 401 in realm "RabbitMQ Management" -> GET
  /api/whoami with Basic guest/guest -> 200 JSON naming "guest";
- MinIO console: GET /api/v1/login answering `loginStrategy` -> POST /api/v1/login
  minioadmin/minioadmin -> 2xx with a non-empty `token` cookie;
- Tomcat manager: GET /manager/html, 401 in realm "Tomcat Manager Application" -> the same
  with Basic tomcat/tomcat -> 200 "Tomcat Web Application Manager" (one pair only: admin/admin
  is not tried as well, to keep one attempt per product);
- Jenkins: an `X-Jenkins` header on GET /login -> POST /j_spring_security_check (before
  2.266: /j_acegi_security_check) admin/admin -> a redirect not to /loginError;
- ActiveMQ classic console: GET /admin/, 401 in realm "ActiveMQRealm" -> the same with Basic
  admin/admin -> 200 "Welcome to the Apache ActiveMQ Console".
- SonarQube: GET /api/system/status answering {id, version, status} anonymously -> POST
  /api/authentication/login login=admin&password=admin -> 200 with a JWT-SESSION cookie.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

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
    # The one login attempt, from the base path and the recognising answer (Jenkins' version).
    login: Callable[[str, Exchange], Probe]
    logged_in: Callable[[Exchange], bool]
    user: str
    password: str
    marker: str  # the success marker, in words, for the verdict


def _join(base: str, path: str) -> str:
    return (base.rstrip("/") + path) if base != "/" else path


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _realm(ex: Exchange, realm: str) -> bool:
    """A 401 asking for Basic auth in the product's own realm."""
    wanted = f'realm="{realm}"'.lower()
    return ex.status == 401 and any(
        v.strip().lower().startswith("basic") and wanted in v.lower()
        for v in ex.header_all("WWW-Authenticate"))


def _json_dict(ex: Exchange) -> dict[str, object]:
    answer = ex.json()
    return answer if isinstance(answer, dict) else {}


# -- Grafana (pkg/api/login.go) -------------------------------------------------------------
def _grafana_page(ex: Exchange) -> bool:
    return ex.status == 200 and ("grafanaBootData" in ex.text or "<title>Grafana</title>" in ex.text)


def _grafana_login(base: str, _page: Exchange) -> Probe:
    # What Grafana's own login form sends (public/app/core/components/Login: POST /login).
    body = json.dumps({"user": "admin", "password": "admin"}).encode()
    return Probe.of("POST", _join(base, "/login"), {"Content-Type": "application/json"}, body,
                    follow_redirects=False, once=True)


def _grafana_logged_in(ex: Exchange) -> bool:
    return ex.status == 200 and _json_dict(ex).get("message") == "Logged in"


# -- RabbitMQ management plugin (rabbit_mgmt_util: AUTH_REALM, rabbit_mgmt_wm_whoami) --------
def _rabbitmq_api(ex: Exchange) -> bool:
    return _realm(ex, "RabbitMQ Management") or (
        ex.status == 200 and "rabbitmq_version" in _json_dict(ex))


def _rabbitmq_login(base: str, _page: Exchange) -> Probe:
    return Probe.get(_join(base, "/api/whoami"), _basic("guest", "guest"),
                     follow_redirects=False, once=True)


def _rabbitmq_logged_in(ex: Exchange) -> bool:
    return ex.status == 200 and _json_dict(ex).get("name") == "guest"


# -- MinIO console (console's restapi: GET/POST /api/v1/login) ------------------------------
def _minio_api(ex: Exchange) -> bool:
    return ex.status == 200 and "loginStrategy" in _json_dict(ex)


def _minio_login(base: str, _page: Exchange) -> Probe:
    body = json.dumps({"accessKey": "minioadmin", "secretKey": "minioadmin"}).encode()
    return Probe.of("POST", _join(base, "/api/v1/login"), {"Content-Type": "application/json"},
                    body, follow_redirects=False, once=True)


def _minio_logged_in(ex: Exchange) -> bool:
    return ex.status is not None and 200 <= ex.status < 300 and any(
        re.match(r"\s*token=[^;\s]+", cookie) for cookie in ex.header_all("Set-Cookie"))


# -- Tomcat manager (webapps/manager: BASIC realm, manager-gui role) -------------------------
def _tomcat_manager(ex: Exchange) -> bool:
    return _realm(ex, "Tomcat Manager Application")


def _tomcat_login(base: str, _page: Exchange) -> Probe:
    return Probe.get(_join(base, "/manager/html"), _basic("tomcat", "tomcat"),
                     follow_redirects=False, once=True)


def _tomcat_logged_in(ex: Exchange) -> bool:
    return ex.status == 200 and "Tomcat Web Application Manager" in ex.text


# -- Jenkins (hudson.security: j_spring_security_check since 2.266, j_acegi_ before) --------
def _jenkins(ex: Exchange) -> bool:
    return ex.status is not None and ex.header("X-Jenkins") is not None


def _jenkins_version(ex: Exchange) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", ex.header("X-Jenkins") or "")
    return tuple(int(n) for n in numbers[:2]) or (9999,)


def _jenkins_login(base: str, page: Exchange) -> Probe:
    action = "/j_spring_security_check" if _jenkins_version(page) >= (2, 266) else "/j_acegi_security_check"
    body = urlencode({"j_username": "admin", "j_password": "admin", "from": "",
                      "Submit": "Sign in"}).encode()
    return Probe.of("POST", _join(base, action),
                    {"Content-Type": "application/x-www-form-urlencoded"}, body,
                    follow_redirects=False, once=True)


def _jenkins_logged_in(ex: Exchange) -> bool:
    location = ex.header("Location")
    return (ex.status in (301, 302, 303, 307) and bool(location)
            and "loginError" not in urlsplit(location or "").path)


# -- ActiveMQ classic web console (conf/jetty.xml ActiveMQRealm, jetty-realm.properties) ----
def _activemq(ex: Exchange) -> bool:
    return _realm(ex, "ActiveMQRealm")


def _activemq_login(base: str, _page: Exchange) -> Probe:
    return Probe.get(_join(base, "/admin/"), _basic("admin", "admin"),
                     follow_redirects=False, once=True)


def _activemq_logged_in(ex: Exchange) -> bool:
    return ex.status == 200 and "Welcome to the Apache ActiveMQ Console" in ex.text


# -- SonarQube (web API: api/system/status is public; api/authentication/login) -----------
SONARQUBE_STATES = {"STARTING", "UP", "DOWN", "RESTARTING", "DB_MIGRATION_NEEDED",
                    "DB_MIGRATION_RUNNING"}


def _sonarqube(ex: Exchange) -> bool:
    status = _json_dict(ex)
    return ex.status == 200 and {"id", "version", "status"} <= set(status) and \
        status.get("status") in SONARQUBE_STATES


def _sonarqube_login(base: str, _page: Exchange) -> Probe:
    body = urlencode({"login": "admin", "password": "admin"}).encode()
    return Probe.of("POST", _join(base, "/api/authentication/login"),
                    {"Content-Type": "application/x-www-form-urlencoded"}, body,
                    follow_redirects=False, once=True)


def _sonarqube_logged_in(ex: Exchange) -> bool:
    return ex.status == 200 and any(re.match(r"\s*JWT-SESSION=[^;\s]+", cookie)
                                    for cookie in ex.header_all("Set-Cookie"))


PRODUCTS: dict[str, Product] = {
    "grafana": Product("Grafana", "/login", _grafana_page, _grafana_login, _grafana_logged_in,
                       "admin", "admin", '{"message": "Logged in"}'),
    "rabbitmq": Product("RabbitMQ management", "/api/overview", _rabbitmq_api, _rabbitmq_login,
                        _rabbitmq_logged_in, "guest", "guest", 'whoami naming "guest"'),
    "minio": Product("MinIO console", "/api/v1/login", _minio_api, _minio_login,
                     _minio_logged_in, "minioadmin", "minioadmin", "a token cookie"),
    "tomcat": Product("Tomcat manager", "/manager/html", _tomcat_manager, _tomcat_login,
                      _tomcat_logged_in, "tomcat", "tomcat", '"Tomcat Web Application Manager"'),
    "jenkins": Product("Jenkins", "/login", _jenkins, _jenkins_login, _jenkins_logged_in,
                       "admin", "admin", "a redirect not to /loginError"),
    "activemq": Product("ActiveMQ console", "/admin/", _activemq, _activemq_login,
                        _activemq_logged_in, "admin", "admin",
                        '"Welcome to the Apache ActiveMQ Console"'),
    "sonarqube": Product("SonarQube", "/api/system/status", _sonarqube, _sonarqube_login,
                         _sonarqube_logged_in, "admin", "admin", "a JWT-SESSION cookie"),
}


def _bases(settings: Settings) -> list[str]:
    return [str(p) for p in settings.get("default_credentials.paths") or ["/"]]


def _subjects(settings: Settings) -> list[str]:
    return [f"{key}@{base}" for key in PRODUCTS for base in _bases(settings)]


def _split(subject: str) -> tuple[Product, str]:
    key, _, base = subject.partition("@")
    return PRODUCTS[key], base or "/"


def _recognise(product: Product, base: str) -> Probe:
    return Probe.get(_join(base, product.recognise_path), follow_redirects=False)


def _probes(settings: Settings, subject: str) -> dict[str, Probe]:
    if settings.get("default_credentials.lockout"):
        return {}
    product, base = _split(subject)
    return {"recognise": _recognise(product, base)}


@check("exposure.default_credentials", title="well-known default logins (e.g. Grafana admin/admin) "
                                             "are refused",
       severity="critical", subjects=_subjects, probes=_probes,
       remediation="Change the product's default password (or disable the account) before it is "
                   "reachable, e.g. Grafana: set [security] admin_password, or "
                   "GF_SECURITY_ADMIN_PASSWORD; RabbitMQ: delete the guest user; MinIO: set "
                   "MINIO_ROOT_USER/MINIO_ROOT_PASSWORD; Tomcat: edit conf/tomcat-users.xml; "
                   "Jenkins: change the admin password; ActiveMQ: edit conf/jetty-realm.properties; "
                   "SonarQube: change the admin password.")
def default_credentials(ctx: Context) -> None:
    if ctx.settings.get("default_credentials.lockout"):
        ctx.skip("default_credentials.lockout is true: a failed login could lock the account, so "
                 "no default login is tried")
    product, base = _split(ctx.subject)
    page = ctx.fetch(_recognise(product, base))
    where = f"{product.name} at {_join(base, product.recognise_path)}"
    if not product.recognised(page):
        ctx.skip(f"no {where} ({page.status}): nothing to try")
    attempt = ctx.fetch(product.login(base, page), rate_limit_is_answer=True)
    login = f"{product.user}/{product.password}"
    if product.logged_in(attempt):
        ctx.fail(f"{where} accepted the default login {login} ({attempt.status}, its success "
                 f"marker in the answer: {product.marker}): anyone can administer it", page, attempt)
    if attempt.status is not None and (attempt.status >= 500 or attempt.status == 429):
        raise CannotJudge(f"{where} answered the login attempt with {attempt.status}: neither "
                          "accepted nor refused")
    ctx.passed(f"{where} did not accept the default login {login}: it answered {attempt.status} "
               f"without {product.name}'s success marker ({product.marker})")


FAMILY = Family(
    name="credentials",
    config={"default_credentials": schema.Table({
        "lockout": schema.boolean,            # true: never try a login (an account could lock)
        "paths": schema.list_of(schema.path),  # base paths where admin products live
    })},
)
