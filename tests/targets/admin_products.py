"""Faithful Flask reproductions of the login surfaces of admin products, for
exposure.default_credentials (none of these products installs from Debian's archive here).
Each records every login attempt (to show the check makes exactly one) and takes the
password its admin account really has: the product's default reproduces the defect.

- RabbitMQ management plugin, 3.12/3.13 (rabbit_mgmt_util.erl, rabbit_mgmt_wm_whoami.erl):
  an unauthenticated API call is 401 `{"error":"not_authorized","reason":"Not_Authorized"}`
  with `www-authenticate: Basic realm="RabbitMQ Management"`; GET /api/whoami with Basic
  auth answers `{"name":"guest","tags":["administrator"]}`; a wrong password is 401
  "Login failed"; `loopback_users` (guest by default, since 3.3) refuses guest from a
  non-loopback peer with "User can only log in via localhost" (`remote=True` plays a
  checker that is not on the broker's host).
- MinIO console (the one embedded in MinIO server, RELEASE.2024; console restapi
  user_login.go): GET /api/v1/login answers `{"loginStrategy":"form"}` anonymously; POST
  /api/v1/login {"accessKey","secretKey"} is 204 with a `token` cookie (HttpOnly,
  SameSite=Lax) on success, 401 `{"code":401,"detailedMessage":...,"message":"invalid
  Login"}` otherwise.
- Tomcat 9/10 manager webapp (webapps/manager/WEB-INF/web.xml: BASIC, realm "Tomcat Manager
  Application", role manager-gui; 401.jsp/403.jsp): no or wrong credentials are 401 with
  `WWW-Authenticate: Basic realm="Tomcat Manager Application"`; a user without manager-gui
  is 403 "Access Denied"; a manager is 200 "Tomcat Web Application Manager".
- Jenkins 2.x (hudson.security.SecurityRealm, Spring Security since 2.266): every answer
  has `X-Jenkins: <version>`, `X-Hudson` and `X-Jenkins-Session`; the login form posts
  j_username/j_password to /j_spring_security_check (/j_acegi_security_check before 2.266),
  answered 302 to the root with a new JSESSIONID.<hash> cookie on success, 302 to
  /loginError otherwise; Location is absolute, as Jenkins' root URL makes it.
- SonarQube 10.4 (web API): GET /api/system/status answers `{"id", "version", "status":
  "UP"}` anonymously; POST /api/authentication/login (form: login, password) is 200 with
  `JWT-SESSION` and `XSRF-TOKEN` cookies on success, a bare 401 otherwise.
- ActiveMQ classic 5.18 web console (conf/jetty.xml: BASIC, realm "ActiveMQRealm",
  conf/jetty-realm.properties admin: admin, admin): Jetty's 401 carries
  `WWW-Authenticate: basic realm="ActiveMQRealm"`; the console's index is "Welcome to the
  Apache ActiveMQ Console of <b>localhost</b>".
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request

from tests.targets.webapp import serve_app


@dataclass
class Served:
    url: str
    attempts: list[tuple[str, str]] = field(default_factory=list)


def _basic() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


# -- RabbitMQ -------------------------------------------------------------------------------
def _rabbit_error(reason: str) -> Response:
    response = jsonify({"error": "not_authorized", "reason": reason})
    response.status_code = 401
    response.headers["www-authenticate"] = 'Basic realm="RabbitMQ Management"'
    return response


def rabbitmq_app(password: str, attempts: list[tuple[str, str]], remote: bool = False) -> Flask:
    app = Flask("rabbitmq")

    def authorised() -> Response | None:
        given = _basic()
        if given is None:
            return _rabbit_error("Not_Authorized")
        attempts.append(given)
        if given != ("guest", password):
            return _rabbit_error("Login failed")
        if remote:  # loopback_users = [<<"guest">>]
            return _rabbit_error("User can only log in via localhost")
        return None

    @app.get("/")
    def ui() -> Response:
        return Response("<!DOCTYPE html><html><head><title>RabbitMQ Management</title>"
                        '<script src="js/ejs-1.0.min.js"></script></head><body><div id="outer">'
                        "</div></body></html>", content_type="text/html")

    @app.get("/api/overview")
    def overview() -> Response:
        return authorised() or jsonify({"management_version": "3.13.1", "rabbitmq_version": "3.13.1",
                                        "cluster_name": "rabbit@broker", "node": "rabbit@broker"})

    @app.get("/api/whoami")
    def whoami() -> Response:
        return authorised() or jsonify({"name": "guest", "tags": ["administrator"]})

    return app


# -- MinIO console --------------------------------------------------------------------------
def minio_app(password: str, attempts: list[tuple[str, str]]) -> Flask:
    app = Flask("minio")

    @app.get("/")
    def console() -> Response:
        return Response('<!doctype html><html lang="en"><head><meta charset="utf-8"/>'
                        "<title>MinIO Console</title></head><body><div id=\"root\"></div></body>"
                        "</html>", content_type="text/html")

    @app.get("/api/v1/login")
    def strategy() -> Response:
        return jsonify({"loginStrategy": "form"})

    @app.post("/api/v1/login")
    def login() -> Response:
        body = request.get_json(silent=True) or {}
        attempts.append((str(body.get("accessKey")), str(body.get("secretKey"))))
        if body.get("accessKey") == "minioadmin" and body.get("secretKey") == password:
            response = Response(status=204)
            response.set_cookie("token", secrets.token_urlsafe(96), httponly=True,
                                samesite="Lax", path="/")
            return response
        response = jsonify({"code": 401, "detailedMessage": "The request signature we calculated "
                            "does not match the signature you provided. Check your key and signing "
                            "method.", "message": "invalid Login"})
        response.status_code = 401
        return response

    return app


# -- Tomcat manager -------------------------------------------------------------------------
TOMCAT_401 = """<!doctype html><html lang="en"><head><title>401 Unauthorized</title></head>
<body><h1>401 Unauthorized</h1><p>You are not authorized to view this page. If you have not
changed any configuration files, please examine the file <tt>conf/tomcat-users.xml</tt> in
your installation.</p><pre>&lt;role rolename="manager-gui"/&gt;
&lt;user username="tomcat" password="s3cret" roles="manager-gui"/&gt;</pre></body></html>"""
TOMCAT_403 = """<!doctype html><html lang="en"><head><title>403 Access Denied</title></head>
<body><h1>403 Access Denied</h1><p>You are not authorized to view this page.</p></body></html>"""
TOMCAT_MANAGER = """<!DOCTYPE html><html><head><title>/manager</title></head><body>
<table><tr><td class="page-title">Tomcat Web Application Manager</td></tr></table>
<table><tr><td class="title" colspan="6">Applications</td></tr></table></body></html>"""


def tomcat_app(users: dict[str, tuple[str, tuple[str, ...]]],
               attempts: list[tuple[str, str]]) -> Flask:
    app = Flask("tomcat")

    @app.get("/manager/html")
    def manager() -> Response:
        given = _basic()
        if given is not None:
            attempts.append(given)
        user = users.get(given[0]) if given else None
        if given is None or user is None or user[0] != given[1]:
            return Response(TOMCAT_401, status=401, content_type="text/html;charset=UTF-8",
                            headers={"WWW-Authenticate": 'Basic realm="Tomcat Manager Application"'})
        if "manager-gui" not in user[1]:
            return Response(TOMCAT_403, status=403, content_type="text/html;charset=UTF-8")
        return Response(TOMCAT_MANAGER, content_type="text/html;charset=utf-8")

    return app


# -- Jenkins --------------------------------------------------------------------------------
JENKINS_LOGIN = """<!DOCTYPE html><html><head><title>Sign in [Jenkins]</title></head><body>
<form method="post" name="login" action="{action}"><input name="j_username" id="j_username">
<input name="j_password" type="password"><input name="from" type="hidden" value="">
<button type="submit" name="Submit">Sign in</button></form></body></html>"""


def jenkins_app(password: str, attempts: list[tuple[str, str]], version: str = "2.440.3") -> Flask:
    app = Flask("jenkins")
    numbers = tuple(int(n) for n in version.split(".")[:2])
    action = "j_spring_security_check" if numbers >= (2, 266) else "j_acegi_security_check"
    session = secrets.token_hex(4)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["X-Jenkins"] = version
        response.headers["X-Hudson"] = "1.395"
        response.headers["X-Jenkins-Session"] = session
        return response

    @app.get("/login")
    def login_page() -> Response:
        return Response(JENKINS_LOGIN.format(action=action), content_type="text/html;charset=utf-8")

    @app.post(f"/{action}")
    def login() -> Response:
        user, given = request.form.get("j_username", ""), request.form.get("j_password", "")
        attempts.append((user, given))
        root = request.host_url
        if user == "admin" and given == password:
            response = Response(status=302, headers={"Location": root})
            response.set_cookie(f"JSESSIONID.{session}", "node0" + secrets.token_hex(12) + ".node0",
                                httponly=True, path="/")
            return response
        return Response(status=302, headers={"Location": root + "loginError"})

    @app.get("/")
    def root() -> Response:
        return Response("Authentication required", status=403, content_type="text/html")

    return app


# -- ActiveMQ -------------------------------------------------------------------------------
ACTIVEMQ_INDEX = """<!DOCTYPE html><html><head><title>localhost : ActiveMQ Console</title></head>
<body><h2>Welcome!</h2><p>Welcome to the Apache ActiveMQ Console of <b>localhost</b>
(ID:broker-40661-1717000000000-0:1)</p></body></html>"""
JETTY_401 = """<html><head><meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>
<title>Error 401 Unauthorized</title></head><body><h2>HTTP ERROR 401 Unauthorized</h2>
<table><tr><th>URI:</th><td>/admin/</td></tr><tr><th>STATUS:</th><td>401</td></tr></table>
</body></html>"""


def activemq_app(password: str, attempts: list[tuple[str, str]]) -> Flask:
    app = Flask("activemq")

    @app.get("/admin/")
    def console() -> Response:
        given = _basic()
        if given is not None:
            attempts.append(given)
        if given != ("admin", password):
            return Response(JETTY_401, status=401, content_type="text/html;charset=iso-8859-1",
                            headers={"WWW-Authenticate": 'basic realm="ActiveMQRealm"'})
        return Response(ACTIVEMQ_INDEX, content_type="text/html;charset=utf-8")

    return app


# -- SonarQube ------------------------------------------------------------------------------
def sonarqube_app(password: str, attempts: list[tuple[str, str]]) -> Flask:
    app = Flask("sonarqube")

    @app.get("/api/system/status")
    def status() -> Response:
        return jsonify({"id": "147B411E-AY1mUBMWAlnNs-Lbzm8A", "version": "10.4.1.88267",
                        "status": "UP"})

    @app.post("/api/authentication/login")
    def login() -> Response:
        user, given = request.form.get("login", ""), request.form.get("password", "")
        attempts.append((user, given))
        if user == "admin" and given == password:
            response = Response(status=200)
            response.set_cookie("JWT-SESSION", "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(48),
                                max_age=259200, httponly=True, path="/")
            response.set_cookie("XSRF-TOKEN", secrets.token_hex(16), max_age=259200, path="/")
            return response
        return Response(status=401)

    return app


@contextmanager
def serve_product(name: str, password: str, **options: object) -> Iterator[Served]:
    """Serve one product's reproduction (rabbitmq, minio, tomcat, jenkins, activemq, sonarqube) whose
    admin account has `password` (for tomcat: the password of the manager-gui user tomcat)."""
    attempts: list[tuple[str, str]] = []
    if name == "rabbitmq":
        app = rabbitmq_app(password, attempts, remote=bool(options.get("remote")))
    elif name == "minio":
        app = minio_app(password, attempts)
    elif name == "tomcat":
        roles = tuple(str(r) for r in options.get("roles", ("manager-gui",)))  # type: ignore[attr-defined]
        app = tomcat_app({"tomcat": (password, roles)}, attempts)
    elif name == "jenkins":
        app = jenkins_app(password, attempts, version=str(options.get("version", "2.440.3")))
    elif name == "activemq":
        app = activemq_app(password, attempts)
    elif name == "sonarqube":
        app = sonarqube_app(password, attempts)
    else:
        raise ValueError(name)
    with serve_app(app) as url:
        yield Served(url, attempts)
