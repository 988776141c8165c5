"""The `prodready` console script, run as a real subprocess against real loopback servers.

Exit codes (docs/cli.md): 0 ready, 1 not ready, 2 usage or config error, 3 target
unreachable. What a person reads first is the verdict, the grade and the blockers with
their fixes, in a screen or two; `-v` adds the evidence; the reports keep everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready import __version__, cli
from pytest_prodready.demo.service import DEMO_TOKEN, DEMO_WEBHOOK_SECRET
from pytest_prodready.registry import all_checks
from tests.targets.webapp import VALID_TOKEN, Served
from tests.tls_certs import CA
from tests.tls_servers import Served as TLSServed
from tests.tls_servers import serve_https, server_context

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

TIMEOUT_S = 90
# What a message to the user of `check` must not contain: pytest's internals, class
# names, and the options of the pytest plugin that they never typed.
FOREIGN = re.compile(r"_pytest|\bExit\b|Traceback|[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:Error|Exception)\b"
                     r"|--prodready-|\bbase_url\b|PRODREADY_URL")


def prodready(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, isolated from the outer run's pytest settings."""
    exe = shutil.which("prodready")
    assert exe, "the `prodready` console script is not installed (pip install -e .)"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "PRODREADY_")) and k not in cli.CA_ENV}
    # Unrelated third-party plugins of this machine only slow the inner pytest run down.
    base["PYTEST_ADDOPTS"] = "-p no:hypothesispytest -p no:benchmark"
    return subprocess.run([exe, *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-3000:]}"


def assert_speaks_check(text: str) -> None:
    found = FOREIGN.search(text)
    assert found is None, f"{found[0]!r} in: {text}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def outcomes(report: Path, category: str | None = None) -> dict[str, tuple[str, str]]:
    data = json.loads(report.read_text(encoding="utf-8"))
    return {c["nodeid"]: (c["outcome"], c["message"]) for c in data["checks"]
            if category is None or c["category"] == category}


# -- demo ---------------------------------------------------------------------------------
def test_demo_shows_a_short_not_ready_scorecard_with_fixes(tmp_path: Path) -> None:
    # Relative report paths: written where the command runs, not in the demo's temp folder.
    done = prodready("demo", "--report", "demo.md", "--report", "out/demo.json", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    out = done.stdout
    lines = out.splitlines()
    assert len(lines) < 80, f"{len(lines)} lines:\n{out}"
    assert "NOT READY" in out
    assert "prodready scorecard" in out
    assert re.search(r"^category +passed +failed", out, re.MULTILINE)
    assert re.search(r"\bfix: ", out, re.IGNORECASE)
    assert "blockers (" in out
    # The scorecard is what a person reads first: right after the two intro lines and the
    # progress line, not after pages of evidence.
    assert next(i for i, line in enumerate(lines) if "prodready scorecard" in line) < 5, out
    assert "FAILURES" not in out and "\n> GET " not in out  # no evidence dumps by default
    assert "Traceback (most recent call last)" not in done.stderr
    # Over HTTPS with the demo's own CA; TLS and webhooks are demonstrated, not skipped.
    assert "target: https://localhost:" in out
    assert re.search(r"^tls +5 +2 +0 +0 ", out, re.MULTILINE), out
    assert re.search(r"^webhook +3 +1 +0 +0 ", out, re.MULTILINE), out
    # The skips are the checks the demo does not configure (families added since); the
    # failures and passes are its planted defects and good settings, pinned by test_demo.py.
    assert re.search(r"^prodready demo: done: 16 failed, 24 passed, \d+ skipped in [\d.]+s\.", out,
                     re.MULTILINE), out
    report = (tmp_path / "demo.md").read_text(encoding="utf-8")
    assert "NOT READY" in report
    assert json.loads((tmp_path / "out" / "demo.json").read_text(encoding="utf-8"))["verdict"] == "NOT READY"
    assert f"report written: {tmp_path / 'demo.md'}" in out
    # The demo's secrets reach the run by env var only: never in its output or reports.
    outputs = (out, done.stderr, report, (tmp_path / "out" / "demo.json").read_text(encoding="utf-8"))
    for secret in (DEMO_TOKEN, DEMO_WEBHOOK_SECRET):
        assert not [text for text in outputs if secret in text]
    assert not (tmp_path / "prodready.toml").exists()  # the demo works in its own temp dir
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.md", "out"]


def test_demo_verbose_shows_the_config_and_the_evidence(tmp_path: Path) -> None:
    done = prodready("demo", "-v", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    out = done.stdout
    assert "[webhooks.stripe]" in out  # its prodready.toml
    assert "FAILURES" in out and "> GET https://localhost:" in out  # request and response of each failure
    assert "prodready scorecard" in out
    assert DEMO_TOKEN not in out and DEMO_WEBHOOK_SECRET not in out


# -- check: verdicts and exit codes -------------------------------------------------------
def test_check_a_good_url_without_config(tmp_path: Path, good_app: Served) -> None:
    assert not list(tmp_path.iterdir())  # no config file anywhere near
    done = prodready("check", f"{good_app.url}/api/agents", cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, shown(done)
    assert "prodready scorecard" in out
    assert "verdict: READY" in out
    assert re.search(r"^category +passed +failed", out, re.MULTILINE)
    for category in ("cors", "headers", "exposure"):
        assert f"\n{category} " in out
    closing = r"^prodready check: READY: \d+ passed, \d+ skipped in [\d.]+s\.$"
    assert re.search(closing, out, re.MULTILINE), out
    assert len(out.splitlines()) < 30, out
    assert done.stderr == ""
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the caller's directory


def test_check_where_nothing_applies_says_nothing_was_judged(tmp_path: Path, good_app: Served) -> None:
    """Without a config there are no protected endpoints: the auth checks all skip, and the
    closing line says nothing was judged instead of READY (the exit code stays 0: no blocker)."""
    done = prodready("check", f"{good_app.url}/api/agents", "--only", "auth", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert re.search(r"^prodready check: nothing judged: 2 skipped in [\d.]+s\. No check applied "
                     r"to this target as configured: add -- -rs", done.stdout, re.MULTILINE), done.stdout
    rs = prodready("check", f"{good_app.url}/api/agents", "--only", "auth", "--", "-rs", cwd=tmp_path)
    assert "not configured: set protected" in rs.stdout


def test_check_a_defective_url_fails(tmp_path: Path, webapp: Callable[..., Served]) -> None:
    served = webapp("cors_reflect")
    done = prodready("check", f"{served.url}/api/agents", "--only", "cors", cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    assert "verdict: NOT READY" in done.stdout
    assert "cors.unknown_origin_rejected" in done.stdout
    assert re.search(r"^prodready check: NOT READY: 3 failed, 1 skipped in ", done.stdout, re.MULTILINE)
    assert "-v shows the requests and responses" in done.stdout
    assert "> GET" not in done.stdout  # the evidence only with -v...
    verbose = prodready("check", f"{served.url}/api/agents", "--only", "cors", "-v", cwd=tmp_path)
    assert verbose.returncode == 1
    assert "> GET" in verbose.stdout and "< Access-Control-Allow-Origin: " in verbose.stdout


def test_fail_on_gates_the_verdict(tmp_path: Path, webapp: Callable[..., Served]) -> None:
    served = webapp("no_nosniff")  # a medium finding
    assert prodready("check", served.url, "--only", "headers", cwd=tmp_path).returncode == 1
    done = prodready("check", served.url, "--only", "headers", "--fail-on", "high", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert "verdict: READY" in done.stdout
    assert "headers.content_type_options" in done.stdout  # still shown, below the gate
    bad = prodready("check", served.url, "--fail-on", "severe", cwd=tmp_path)
    assert bad.returncode == 2
    assert "invalid choice: 'severe'" in bad.stderr


def test_relative_reports_land_in_the_working_directory(tmp_path: Path, good_app: Served) -> None:
    done = prodready("check", good_app.url, "--only", "headers", "--report", "out.json",
                     "--report", "reports/out.md", "--report", "out.html", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    for name in ("out.json", "reports/out.md", "out.html"):
        assert (tmp_path / name).is_file(), name
        assert f"report written: {tmp_path / name}" in done.stdout
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data["verdict"] == "READY" and data["checks"]
    bad = prodready("check", good_app.url, "--report", "out.txt", cwd=tmp_path)
    assert bad.returncode == 2 and "use one of .json, .md, .html" in bad.stderr


def test_arguments_after_a_double_dash_go_to_pytest(tmp_path: Path, good_app: Served) -> None:
    done = prodready("check", good_app.url, "--report", "all.json", "--", "-k", "cors",
                     "--junitxml=junit.xml", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    assert {nodeid.split("::")[1].split(".")[0] for nodeid in outcomes(tmp_path / "all.json")} == {"cors"}
    assert "prodready_id" in (tmp_path / "junit.xml").read_text(encoding="utf-8")  # relative: in the cwd
    bad = prodready("check", good_app.url, "--", "--no-such-pytest-option", cwd=tmp_path)
    assert bad.returncode == 2, shown(bad)
    assert "unrecognized arguments: --no-such-pytest-option" in bad.stderr
    assert_speaks_check(bad.stderr)
    nothing = prodready("check", good_app.url, "--", "-k", "no_such_check", cwd=tmp_path)
    assert nothing.returncode == 2, shown(nothing)
    assert "nothing was checked" in nothing.stderr


def test_version(tmp_path: Path) -> None:
    done = prodready("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"prodready {__version__}"


# -- check: the URL, taken whole ------------------------------------------------------------
def test_query_string_quote_and_backslash_reach_the_target(tmp_path: Path,
                                                           webapp: Callable[..., Served]) -> None:
    served = webapp()
    url = f'{served.url}/api/agents?name="a\\b"&q=%26'
    done = prodready("check", url, "--only", "cors", "--report", "r.json", cwd=tmp_path)
    assert done.returncode == 0, shown(done)
    page = "/api/agents?name=%22a%5Cb%22&q=%26"  # as a browser sends it; typed escapes kept
    assert f"cors.unknown_origin_rejected[{page}]" in "".join(outcomes(tmp_path / "r.json"))
    missing = "/prodready-nonexistent-3f9c1a7e"  # the preflight's unknown path
    assert {seen.path for seen in served.log if seen.method == "GET"} == {page, missing}
    assert {seen.path for seen in served.log if seen.method == "OPTIONS"} == {page}


def test_a_url_with_a_password_is_refused_and_nothing_is_sent(tmp_path: Path,
                                                              webapp: Callable[..., Served]) -> None:
    served = webapp()
    netloc = served.url.removeprefix("http://")
    done = prodready("check", f"http://alice:hunter2-pw@{netloc}/api", cwd=tmp_path)
    assert done.returncode == 2, shown(done)
    assert "hunter2-pw" not in done.stdout + done.stderr
    assert "carries a password" in done.stderr
    assert "end up in shell history, logs and reports" in done.stderr
    assert "--header" in done.stderr and "--token-env" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert served.log == []
    user_only = prodready("check", f"http://alice@{netloc}/", cwd=tmp_path)
    assert user_only.returncode == 2 and "carries a user name" in user_only.stderr


@pytest.mark.parametrize("arg", ["not-a-url", "ftp://example.com/x", "http://", "http://[::1/x",
                                 "http://127.0.0.1:99999/", "http://a\\@127.0.0.1/"])
def test_check_rejects_a_non_url_clearly(tmp_path: Path, arg: str) -> None:
    done = prodready("check", arg, cwd=tmp_path)
    assert done.returncode == 2, shown(done)
    assert done.stderr.startswith("prodready check: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert_speaks_check(done.stderr + done.stdout)


def test_split_target_keeps_the_page_whole() -> None:
    assert cli.split_target("https://Staging.example.com") == ("https://Staging.example.com", "/")
    assert cli.split_target("HTTPS://x.example/a/b?c=1&d=2#frag") == ("https://x.example", "/a/b?c=1&d=2")
    assert cli.split_target("http://x.example/?") == ("http://x.example", "/")
    assert cli.split_target('http://x.example/a b/"c"\\d?e="f g"') == \
        ("http://x.example", "/a%20b/%22c%22%5Cd?e=%22f%20g%22")
    assert cli.split_target("http://x.example/caf\u00e9") == ("http://x.example", "/caf%C3%A9")
    assert cli.split_target("http://[::1]:8080/x") == ("http://[::1]:8080", "/x")
    for refused, why in (("https://u:p@x.example/", "carries a password"),
                         ("https://u@x.example/", "carries a user name"),
                         ("https://x.example\\@y.example/", "contains a backslash"),
                         ("mailto:a@b.example", "is not an http(s) URL")):
        with pytest.raises(cli.UsageProblem, match=re.escape(why)) as info:
            cli.split_target(refused)
        assert ":p@" not in str(info.value)


# -- check: run-level problems in check's own words -------------------------------------------
def test_an_unreachable_target_is_exit_3_in_checks_words(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = prodready("check", f"{url}/api", cwd=tmp_path)
    assert done.returncode == 3, shown(done)
    assert done.stderr.strip() == (f"prodready check: {url} is unreachable: connection refused (nothing "
                                   "listens on that port). Check the URL, and that the service is up.")
    assert_speaks_check(done.stdout + done.stderr)
    assert "prodready scorecard" not in done.stdout


def test_config_errors_are_exit_2_and_name_the_users_file(tmp_path: Path, good_app: Served) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "prodready.toml").write_text('timeout_s = "soon"\nprotectd = ["/x"]\n',
                                                      encoding="utf-8")
    done = prodready("check", good_app.url, "--config", "conf/prodready.toml", cwd=tmp_path)
    assert done.returncode == 2, shown(done)
    assert done.stderr.startswith("prodready check: --config conf/prodready.toml: "), done.stderr
    assert "timeout_s" in done.stderr and "protectd" in done.stderr
    assert_speaks_check(done.stderr)
    # A problem the plugin finds once the run starts (a waiver of no check) is worded alike.
    (tmp_path / "conf" / "waived.toml").write_text('[[waivers]]\nid = "headers.nope"\nreason = "x"\n',
                                                   encoding="utf-8")
    waived = prodready("check", good_app.url, "--config", "conf/waived.toml", cwd=tmp_path)
    assert waived.returncode == 2, shown(waived)
    assert waived.stderr.startswith("prodready check: --config conf/waived.toml: waivers[0].id: ")
    assert "'headers.nope'" in waived.stderr
    assert_speaks_check(waived.stderr)
    for args, fragment in ((["--only", "corz"], "--only: no category 'corz'; did you mean 'cors'?"),
                           (["--token-env", "NO_SUCH_VAR"], "environment variable NO_SUCH_VAR is not set"),
                           (["--token-env", "eyJhbGciOi.x.y"], "takes the NAME of the environment variable"),
                           (["--config", "missing.toml"], "--config missing.toml: no such file"),
                           (["--ca-bundle", "nope.pem"], "--ca-bundle: nope.pem is not a file"),
                           (["--header", "X-Gate"], "is not 'Name: value'"),
                           (["--header", "Bad Name: v"], "not a valid header name"),
                           (["--header", "Host: evil.example"], "sets this header itself"),
                           (["--header", "X-A: 1", "--header", "x-a: 2"], "given twice")):
        bad = prodready("check", good_app.url, *args, cwd=tmp_path)
        assert bad.returncode == 2, (args, shown(bad))
        assert fragment in bad.stderr, (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert_speaks_check(bad.stderr)
        assert "eyJhbGciOi" not in bad.stderr


def test_not_a_ca_bundle_from_the_environment_is_named(tmp_path: Path, good_app: Served) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n", encoding="utf-8")
    done = prodready("check", good_app.url, cwd=tmp_path, env={"REQUESTS_CA_BUNDLE": "junk.pem"})
    assert done.returncode == 2, shown(done)
    assert "REQUESTS_CA_BUNDLE (environment)" in done.stderr and "is not a PEM CA bundle" in done.stderr


JSON_ENDPOINTS = '[errors]\njson_endpoints = ["POST /api/chat"]\n'


# -- check: a config file, headers and tokens ----------------------------------------------------
def test_config_settings_apply_and_the_url_overrides_them(tmp_path: Path,
                                                          webapp: Callable[..., Served]) -> None:
    served = webapp("open_api")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "pyproject.toml").write_text(
        '[tool.prodready]\nbase_url = "https://elsewhere.example"\nprotected = ["/api/agents"]\n',
        encoding="utf-8")
    done = prodready("check", served.url, "--config", "team/pyproject.toml", "--only", "auth",
                     "--report", "r.json", cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    found = outcomes(tmp_path / "r.json")
    assert found["prodready::auth.required[GET /api/agents]"][0] == "failed"
    assert f"target: {served.url}" in done.stdout  # the URL, not the file's base_url
    assert "elsewhere.example" not in done.stdout


def test_headers_go_on_every_probe_and_are_never_shown(tmp_path: Path, webapp: Callable[..., Served]) -> None:
    served = webapp("debug_page")  # malformed JSON gets a debug page that echoes the request headers
    secret = "gate-key-5d1e8a0c77"
    (tmp_path / "prodready.toml").write_text(JSON_ENDPOINTS, encoding="utf-8")
    done = prodready("check", served.url, "--config", "prodready.toml", "--header", f"X-Gate: {secret}",
                     "--header", "X-Team:  platform ", "--token-env", "MY_TOKEN", "--report", "r.json",
                     "--report", "r.html", "-v", cwd=tmp_path, env={"MY_TOKEN": VALID_TOKEN})
    assert done.returncode == 1, shown(done)
    found = outcomes(tmp_path / "r.json")
    assert found["prodready::errors.malformed_input_is_4xx[POST /api/chat]"][0] == "failed", found
    assert served.log
    for seen in served.log:
        assert seen.headers.get("X-Gate") == secret, seen
        assert seen.headers.get("X-Team") == "platform", seen
    everything = done.stdout + done.stderr + "".join(
        p.read_text(encoding="utf-8") for p in tmp_path.iterdir() if p.is_file())
    assert secret not in everything
    assert "X-Gate: ****" in done.stdout  # the evidence shows it was sent (and echoed), masked
    exchanges = [ex for c in json.loads((tmp_path / "r.json").read_text())["checks"]
                 for ex in c["evidence"] if "request" in ex]
    assert exchanges and all(ex["request"]["headers"].get("X-Gate") == "****" for ex in exchanges)
    echoed = [ex["response"]["body_excerpt"] for ex in exchanges if ex["request"]["method"] == "POST"]
    assert echoed and all("X-Gate: ****" in body for body in echoed), echoed


def test_the_header_value_never_reaches_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    args = argparse.Namespace(config=None, ca_bundle=None, token_env=None,
                              header=['X-Gate: "quoted" \\ value'])
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    table, env = cli.check_config(args, "https://x.example", "/a")
    text = cli.toml_dumps(table)
    assert "quoted" not in text
    assert tomllib.loads(text)["request_headers"] == [{"name": "X-Gate",
                                                       "value_env": "PRODREADY_CHECK_HEADER_0"}]
    assert env == {"PRODREADY_CHECK_HEADER_0": '"quoted" \\ value'}


def test_token_env_is_the_bearer_token_of_the_checks_that_need_one(tmp_path: Path,
                                                                   webapp: Callable[..., Served]) -> None:
    served = webapp()
    (tmp_path / "prodready.toml").write_text(JSON_ENDPOINTS, encoding="utf-8")
    done = prodready("check", served.url, "--config", "prodready.toml", "--token-env", "MY_TOKEN",
                     "--only", "errors", "--report", "r.json", cwd=tmp_path, env={"MY_TOKEN": VALID_TOKEN})
    assert done.returncode == 0, shown(done)
    posts = [seen for seen in served.log if seen.method == "POST" and seen.path == "/api/chat"]
    assert posts and all(seen.headers.get("Authorization") == f"Bearer {VALID_TOKEN}" for seen in posts)
    assert VALID_TOKEN not in done.stdout + (tmp_path / "r.json").read_text(encoding="utf-8")


# -- check: TLS with a private CA ------------------------------------------------------------------
@pytest.fixture(scope="module")
def private_ca_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TLSServed, Path]]:
    """An HTTPS server for localhost whose certificate a private CA signed (not in any store)."""
    folder = tmp_path_factory.mktemp("private-ca")
    ca = CA("prodready cli private CA")
    ca_file = Path(ca.write(folder / "ca.pem"))
    certfile, keyfile = ca.issue(("localhost", "127.0.0.1")).write(folder, "leaf")
    with serve_https(server_context(certfile, keyfile)) as served:
        yield served, ca_file


TLS_NEEDS_HTTP_URL = "prodready::tls.http_redirects_to_https"  # where plain HTTP answers: config only


def assert_tls_judged(report: Path) -> dict[str, tuple[str, str]]:
    tls = outcomes(report, "tls")
    assert len(tls) >= 6, tls
    for nodeid, (outcome, message) in tls.items():
        if nodeid == TLS_NEEDS_HTTP_URL:
            assert outcome == "skipped" and "tls.http_url" in message
        else:
            assert outcome in ("passed", "failed"), (nodeid, outcome, message)
    return {nodeid.split("::")[1].split("[")[0]: value for nodeid, value in tls.items()}


def test_check_a_private_ca_with_ca_bundle(tmp_path: Path, private_ca_server: tuple[TLSServed, Path]) -> None:
    served, ca_file = private_ca_server
    shutil.copy(ca_file, tmp_path / "ca.pem")
    done = prodready("check", served.url, "--ca-bundle", "ca.pem", "--report", "r.json", cwd=tmp_path)
    assert done.returncode in (0, 1), shown(done)
    assert "prodready scorecard" in done.stdout
    tls = assert_tls_judged(tmp_path / "r.json")
    assert tls["tls.cert_valid"][0] == "passed", tls
    assert tls["tls.https_reachable"][0] == "passed", tls
    assert f"verifies against the system trust store and {tmp_path / 'ca.pem'}" in tls["tls.cert_valid"][1]


def test_check_a_private_ca_from_requests_ca_bundle(tmp_path: Path,
                                                    private_ca_server: tuple[TLSServed, Path]) -> None:
    served, ca_file = private_ca_server
    done = prodready("check", served.url, "--only", "tls", "--report", "r.json", cwd=tmp_path,
                     env={"REQUESTS_CA_BUNDLE": str(ca_file)})
    assert done.returncode in (0, 1), shown(done)
    assert assert_tls_judged(tmp_path / "r.json")["tls.cert_valid"][0] == "passed"


def test_check_a_private_ca_without_ca_bundle_is_a_failed_cert_valid(
        tmp_path: Path, private_ca_server: tuple[TLSServed, Path]) -> None:
    """A private CA never aborts the run: tls.cert_valid fails, and every other check judges."""
    served, _ = private_ca_server
    done = prodready("check", served.url, "--report", "r.json", cwd=tmp_path)
    assert done.returncode == 1, shown(done)
    assert "prodready scorecard" in done.stdout and "verdict: NOT READY" in done.stdout
    tls = assert_tls_judged(tmp_path / "r.json")
    assert tls["tls.cert_valid"][0] == "failed"
    assert "does not verify" in tls["tls.cert_valid"][1]
    assert tls["tls.https_reachable"][0] == "passed"
    assert not [k for k, (outcome, _) in outcomes(tmp_path / "r.json").items() if outcome == "error"]


def test_headers_go_only_to_the_targets_own_origin(tmp_path: Path, private_ca_server: tuple[TLSServed, Path],
                                                   webapp: Callable[..., Served]) -> None:
    """tls.http_url is another origin (plain HTTP here, another host): it never gets them."""
    served, ca_file = private_ca_server
    plain = webapp()
    (tmp_path / "prodready.toml").write_text(f'[tls]\nhttp_url = "{plain.url}"\n', encoding="utf-8")
    done = prodready("check", served.url, "--config", "prodready.toml", "--ca-bundle", str(ca_file),
                     "--header", "X-Gate: gate-key-5d1e8a0c77", "--only", "tls", cwd=tmp_path)
    assert done.returncode == 1, shown(done)  # the plain-HTTP site does not redirect to HTTPS
    assert plain.log, "tls.http_redirects_to_https did not ask the plain-HTTP URL"
    assert not [seen for seen in plain.log if "X-Gate" in seen.headers]


def test_headers_are_not_sent_over_unverified_tls(tmp_path: Path,
                                                  private_ca_server: tuple[TLSServed, Path]) -> None:
    served, _ = private_ca_server
    done = prodready("check", served.url, "--header", "X-Gate: gate-key-5d1e8a0c77", cwd=tmp_path)
    assert done.returncode == 2, shown(done)
    assert "its certificate does not verify" in done.stderr
    assert "--ca-bundle PATH" in done.stderr
    assert_speaks_check(done.stderr)


# -- the TOML writer --------------------------------------------------------------------------------
HOSTILE = ['"', "\\", '\\"', "a\"b\\c", "\n\r\t\b\f", "\x00\x01\x1f\x7f", "\u0085\u2028", "é 雪 🎉",
           "'''", '"""', "${x}", "#not a comment", "= [ ] { }"]


@pytest.mark.parametrize("text", HOSTILE)
def test_toml_strings_round_trip(text: str) -> None:
    table = {"page": text, text: {text: [text, {"k": text}]}}
    assert tomllib.loads(cli.toml_dumps(table)) == table


def test_toml_values_round_trip() -> None:
    table: dict[str, Any] = {
        "a": 1, "b": -2.5, "c": True, "d": [1, 2], "e": {}, "f": [], "g": 1e300, "h": float("inf"),
        "waivers": [{"id": "headers.csp", "reason": "x", "expires": dt.date(2027, 1, 31)}],
        "at": dt.datetime(2027, 1, 31, 7, 30, tzinfo=dt.timezone.utc), "t": dt.time(7, 30, 1),
        "env": {"production": {"tls": {"min_days": 30}}},
    }
    assert tomllib.loads(cli.toml_dumps(table)) == table


def test_toml_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        cli.toml_dumps({"page": "/\udcff"})
    with pytest.raises(TypeError):
        cli.toml_dumps({"page": object()})


# -- the other commands -------------------------------------------------------------------------
def test_catalogue_lists_every_registered_check(tmp_path: Path) -> None:
    done = prodready("catalogue", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ids = list(all_checks())
    assert len(ids) > 20
    for check_id in ids:
        assert f'| <a id="{check_id}"></a>`{check_id}` |' in done.stdout, check_id


def test_module_entry_point_matches_the_script(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_prodready.cli", "catalogue"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0
    assert "# Check catalogue" in done.stdout
