"""A faithful reproduction of Grafana's login surface in Flask (Grafana itself does not
install from Debian's archive here), for exposure.default_credentials.

What it reproduces, from Grafana 10/11 (pkg/api/login.go, pkg/api/dtos/login.go and the
login page template):
- GET /login: 200 text/html, `<title>Grafana</title>` and `window.grafanaBootData = {...}`;
- POST /login with JSON {"user", "password"}: on success 200
  {"message": "Logged in", "redirectUrl": "/"} and a `grafana_session` cookie (HttpOnly,
  SameSite=Lax, 30 days); on failure 401 {"message": "Invalid username or password",
  "messageId": "password-auth.failed", "statusCode": 401, "traceID": ""};
- GET /api/health: {"commit", "database": "ok", "version"}.
`admin_password` plays Grafana's [security] admin_password: "admin" is the default.
Every login attempt is recorded, to show the check makes exactly one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request

from tests.targets.webapp import serve_app

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Grafana</title>
    <base href="/" />
    <link rel="icon" type="image/png" href="public/img/fav32.png" />
  </head>
  <body class="theme-dark app-grafana">
    <div id="reactRoot"></div>
    <script nonce="">
      window.grafanaBootData = {"user": {"isSignedIn": false, "login": ""},
        "settings": {"appSubUrl": "", "buildInfo": {"version": "10.4.1", "commit": "d94d597d84"}}};
    </script>
  </body>
</html>
"""


@dataclass
class Grafana:
    url: str
    attempts: list[dict[str, str]] = field(default_factory=list)


def make_app(admin_password: str, attempts: list[dict[str, str]], prefix: str = "") -> Flask:
    app = Flask("grafana")

    @app.get(f"{prefix}/login")
    def login_page() -> Response:
        return Response(LOGIN_PAGE, content_type="text/html; charset=UTF-8")

    @app.get(f"{prefix}/api/health")
    def health() -> Response:
        return jsonify({"commit": "d94d597d84", "database": "ok", "version": "10.4.1"})

    @app.post(f"{prefix}/login")
    def login() -> Response:
        body = request.get_json(silent=True) or {}
        attempts.append({"user": str(body.get("user")), "password": str(body.get("password"))})
        if body.get("user") == "admin" and body.get("password") == admin_password:
            response = jsonify({"message": "Logged in", "redirectUrl": f"{prefix}/"})
            response.set_cookie("grafana_session", secrets.token_hex(16), max_age=2592000,
                                httponly=True, samesite="Lax", path="/")
            return response
        response = jsonify({"message": "Invalid username or password",
                            "messageId": "password-auth.failed", "statusCode": 401, "traceID": ""})
        response.status_code = 401
        return response

    return app


@contextmanager
def serve_grafana(admin_password: str = "admin", prefix: str = "") -> Iterator[Grafana]:
    attempts: list[dict[str, str]] = []
    with serve_app(make_app(admin_password, attempts, prefix)) as url:
        yield Grafana(url, attempts)


@contextmanager
def serve_yes_to_everything() -> Iterator[str]:
    """A site that answers 200 with a Grafana-looking page to every path and method: its
    200 to a login is no success marker."""
    app = Flask("yes")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def anything(path: str) -> Response:
        return Response(LOGIN_PAGE, content_type="text/html")

    with serve_app(app) as url:
        yield url
