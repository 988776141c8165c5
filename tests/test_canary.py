"""The canary across every channel (issue 8): known secrets, echoed by the target in every
encoding a target or a report could produce, appear in no output at all.

One real echoing target; the configured token, the metrics token and an identity's
two-cookie session as the secrets; every channel a run writes: the terminal at
`-vv --tb=long -l -rA` with DEBUG logs, `--collect-only -q`, JUnit XML (properties,
system-out/err), the JSON, Markdown, HTML and SARIF reports, `$GITHUB_STEP_SUMMARY` and
`.pytest_cache`, and a user's own test that uses the fixtures and prints what it got.
"""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from pathlib import Path

import pytest
from flask import Flask, Response, request

from tests.targets.webapp import ALLOWED_ORIGIN, make_app, serve_app

TOKEN = "tokCANARY/ab+cd=Zq7Wd2Lx9Pv4"
METRICS = "metCANARY-Hn3Kc8Ry5Tb1"
SID = "sidCANARY5e0b7d2a91"
CSRF = "csrfCANARY81c4f7a0e2"
COOKIE = f"sid={SID}; csrftoken={CSRF}"
SECRETS = (TOKEN, METRICS, SID, CSRF)


def forms(secret: str) -> dict[str, str]:
    """The encodings a target or a report could show the secret in."""
    raw = secret.encode()
    return {
        "raw": secret,
        "base64": base64.b64encode(raw).decode(),
        "urlsafe-base64": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "percent": urllib.parse.quote(secret, safe=""),
        "percent-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(),
                                urllib.parse.quote(secret, safe="")),
        "json-escaped": json.dumps(secret)[1:-1].replace("/", "\\/"),
        "html-entities": html.escape(secret).replace("/", "&#x2F;").replace("+", "&#43;"),
    }


def echo_app() -> Flask:
    """The webapp with defects, plus /echo: every credential it got, in every form."""
    app = make_app(["cors_reflect", "version_disclosure", "no_csp", "metrics_public"])

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> Response:
        got = [request.headers.get("Authorization", "").partition(" ")[2]]
        got += [v for v in request.cookies.values()]
        lines = [f"{name}: {value}" for secret in got if secret for name, value in forms(secret).items()]
        basic = base64.b64encode(f"user:{got[0]}".encode()).decode() if got[0] else ""
        body = "error: echo\n" + "\n".join(lines) + f"\nbasic: {basic}\n"
        return Response(body, 200, mimetype="text/plain",
                        headers={"X-Echo": base64.b64encode(got[0].encode()).decode()})

    return app


USER_TEST = '''
import logging
import os

import pytest
from pytest_prodready.target import Probe


@pytest.mark.prodready(category="custom", severity="high", fix="do not echo credentials")
def test_my_own_check(prodready_target):
    token = os.environ["CANARY_TOKEN"]
    exchange = prodready_target.fetch(Probe.get("/echo", credential="auth.token_env"))
    print("the token is", token, "and the page said", exchange.text)
    logging.getLogger("mine").warning("token %s", token)
    assert "Bearer " + token is None
'''


def all_text(folder: Path) -> dict[str, str]:
    """Every file a run left behind, by relative path (binary files decoded loosely)."""
    return {str(path.relative_to(folder)): path.read_bytes().decode("utf-8", "replace")
            for path in folder.rglob("*") if path.is_file() and path.suffix != ".pyc"}


def test_no_secret_in_any_form_reaches_any_channel(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_TOKEN", TOKEN)
    monkeypatch.setenv("CANARY_METRICS", METRICS)
    monkeypatch.setenv("CANARY_COOKIE", COOKIE)
    summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    with serve_app(echo_app()) as url:
        pytester.makefile(".toml", prodready=f"""
base_url = "{url}"
allowed_origins = ["{ALLOWED_ORIGIN}"]
protected = ["/api/agents", "/echo", "POST /echo"]
health = ["/api/health", "/echo"]

[auth]
token_env = "CANARY_TOKEN"

[metrics]
path = "/echo"
token_env = "CANARY_METRICS"

[identities.alice]
cookie_env = "CANARY_COOKIE"

[[ownership]]
path = "/echo"
owner = "alice"
""")
        pytester.makepyfile(test_user=USER_TEST)
        pytester.makeini("[pytest]\njunit_logging = all\n")
        collect = pytester.runpytest("--prodready", "--collect-only", "-q")
        run = pytester.runpytest(
            "--prodready", "--prodready-suite", "test_user.py", "-vv", "--tb=long", "-l", "-rA",
            "-o", "log_cli=true", "--log-level=DEBUG", "--junitxml=junit.xml",
            "--prodready-report", "r.json", "--prodready-report", "r.md",
            "--prodready-report", "r.html", "--prodready-report", "r.sarif")
    outputs = {"terminal": "\n".join(run.outlines + run.errlines),
               "collect-only": "\n".join(collect.outlines + collect.errlines),
               **all_text(pytester.path)}
    # The material really was there: the echo reached the evidence (masked), the user's own
    # test ran and failed, and the step summary and the cache were written.
    assert "error: echo" in outputs["r.json"]
    assert "test_my_own_check" in outputs["junit.xml"]
    assert summary.exists() and "Production readiness" in outputs["step_summary.md"]
    assert any(name.startswith(".pytest_cache") for name in outputs)
    assert run.ret == pytest.ExitCode.TESTS_FAILED

    leaks = {(secret[:8], form, channel) for secret in SECRETS
             for form, shown in forms(secret).items() for channel, text in outputs.items()
             if shown in text and channel not in ("prodready.toml", "test_user.py", "tox.ini")}
    where = [line for line in outputs["terminal"].splitlines() if TOKEN in line][:5]
    assert not leaks, (sorted(leaks), where)
