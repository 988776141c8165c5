"""`prodready init [--from-openapi URL|FILE]`: from a realistic spec (the demo service's API,
as its team would describe it), a prodready.toml that passes validation (protected
operations from the spec, health guessed and marked, auth/webhooks stubbed with *_env
names) and tests/prodready/test_smoke.py that runs against the demo service; never
overwriting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready.config import Overrides, load_settings
from pytest_prodready.demo.service import CA_BUNDLE, DEMO_TOKEN_ENV, DemoServer
from pytest_prodready.init import InitError, init, plan_from_spec, spec_reference

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

SPEC_YAML = """
openapi: 3.0.3
info: {title: Acme Agents API, version: 1.4.2}
servers:
  - url: https://staging.acme.example
security:
  - bearerAuth: []
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer, bearerFormat: JWT}
paths:
  /api/agents:
    get:
      summary: List agents
      responses: {"200": {description: ok}, "401": {description: no token}}
  /api/agents/{agentId}:
    parameters:
      - {name: agentId, in: path, required: true, schema: {type: string, example: agt_42}}
    get:
      responses: {"200": {description: ok}}
    delete:
      responses: {"204": {description: gone}}
  /api/chat:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {message: {type: string}}}
      responses: {"200": {description: ok}}
  /api/health:
    get:
      security: []
      responses: {"200": {description: healthy}}
  /version:
    get:
      security: []
      responses: {"200": {description: the build}}
  /metrics:
    get:
      security: []
      responses: {"200": {description: prometheus}}
  /api/stripe/webhook:
    post:
      security: []
      responses: {"200": {description: accepted}}
"""


def spec() -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped, unused-ignore]

    loaded: dict[str, Any] = yaml.safe_load(SPEC_YAML)
    return loaded


def test_the_plan_takes_protected_operations_health_and_webhooks_from_the_spec() -> None:
    plan = plan_from_spec(spec())
    assert plan.base_url == "https://staging.acme.example" and not plan.base_url_guessed
    assert [e for e, _ in plan.protected] == ["/api/agents", "/api/agents/agt_42",
                                              "DELETE /api/agents/agt_42", "POST /api/chat"]
    assert dict(plan.protected)["/api/agents/agt_42"].startswith("REVIEW: {agentId}=agt_42")
    assert [p for p, _ in plan.health] == ["/api/health"]
    assert all("REVIEW" in note for _, note in plan.health)
    assert plan.version_paths == ["/version"] and plan.metrics_path == "/metrics"
    assert plan.webhooks == [("stripe", "/api/stripe/webhook")]
    assert plan.json_endpoint == "POST /api/chat" and plan.bearer


def test_init_from_a_file_writes_a_config_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "openapi.yaml"
    source.write_text(SPEC_YAML, encoding="utf-8")
    written = init(tmp_path, str(source))
    assert written == [tmp_path / "prodready.toml", tmp_path / "tests" / "prodready" / "test_smoke.py"]
    text = written[0].read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["protected"] == ["/api/agents", "/api/agents/agt_42", "DELETE /api/agents/agt_42",
                                   "POST /api/chat"]
    assert config["health"] == ["/api/health"]
    assert config["openapi"] == "openapi.yaml"  # the sweep reads the same spec, beside the config
    assert '"/api/health",  # REVIEW' in text
    # Secrets stubbed by variable name only, commented out so the file loads as written.
    for stub in ('# token_env = "PRODREADY_TOKEN"', '# token_env = "ALICE_TOKEN"',
                 "# [webhooks.stripe]", '# path = "/api/stripe/webhook"',
                 '# secret_env = "STRIPE_WEBHOOK_SECRET"'):
        assert stub in text, stub
    assert "auth" not in config and "webhooks" not in config
    # The plugin's own loader accepts it (schema, families' validation, no env needed).
    settings = load_settings(tmp_path, Overrides(config_path=str(written[0])), environ={})
    assert settings.base_url == "https://staging.acme.example"
    # ... and the stubs, once uncommented, are valid too.
    uncommented = "\n".join(line[2:] if line.startswith(("# [", "# token_env", "# tenant", "# path",
                                                         "# scheme", "# header", "# secret_env"))
                            else line for line in text.splitlines())
    env = {"PRODREADY_TOKEN": "t", "ALICE_TOKEN": "a", "BOB_TOKEN": "b", "STRIPE_WEBHOOK_SECRET": "s"}
    (tmp_path / "full.toml").write_text(uncommented, encoding="utf-8")
    full = load_settings(tmp_path, Overrides(config_path=str(tmp_path / "full.toml")), environ=env)
    assert full.get("webhooks")["stripe"]["path"] == "/api/stripe/webhook"
    # Never overwritten: a second init refuses and leaves both files as they were.
    before = [p.read_bytes() for p in written]
    with pytest.raises(InitError, match="already exist; not overwriting"):
        init(tmp_path, str(source))
    assert [p.read_bytes() for p in written] == before


def test_the_sweep_gets_the_spec_only_where_the_run_may_read_it(tmp_path: Path) -> None:
    plan = plan_from_spec(spec())
    on_target = "https://staging.acme.example/openapi.json?v=2"
    assert spec_reference(plan, on_target, tmp_path) == "/openapi.json?v=2"
    assert spec_reference(plan, "https://docs.acme.example/openapi.json", tmp_path) is None
    assert spec_reference(plan, str(tmp_path / "api" / "spec.yaml"), tmp_path) == "api/spec.yaml"
    assert spec_reference(plan, None, tmp_path) is None


def test_init_into_a_new_directory_makes_it(tmp_path: Path) -> None:
    written = init(tmp_path / "new" / "project")
    assert all(p.is_file() for p in written)


def test_init_refuses_when_only_the_test_file_exists(tmp_path: Path) -> None:
    tests = tmp_path / "tests" / "prodready" / "test_smoke.py"
    tests.parent.mkdir(parents=True)
    tests.write_text("# mine\n", encoding="utf-8")
    with pytest.raises(InitError, match=r"test_smoke\.py already exists"):
        init(tmp_path)
    assert not (tmp_path / "prodready.toml").exists() and tests.read_text() == "# mine\n"


def test_init_without_a_spec_writes_a_starter_marked_for_review(tmp_path: Path) -> None:
    init(tmp_path)
    text = (tmp_path / "prodready.toml").read_text(encoding="utf-8")
    assert 'base_url = "https://staging.example.com"  # REVIEW' in text
    load_settings(tmp_path, Overrides(config_path=str(tmp_path / "prodready.toml")), environ={})
    compile((tmp_path / "tests/prodready/test_smoke.py").read_text(encoding="utf-8"), "smoke", "exec")


class SpecHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/openapi.json":
            self.send_error(404)
            return
        body = json.dumps(spec()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def spec_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SpecHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRODREADY_") and k not in ("GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS")}
    return {**env, **extra}


def prodready(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_prodready.cli", *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)


# What the smoke tests find on the demo service (its planted defects fail).
EXPECTED = {
    "test_protected_endpoints_refuse_anonymous_callers[/api/agents]": "passed",
    "test_protected_endpoints_refuse_anonymous_callers[POST /api/chat]": "passed",
    "test_protected_endpoints_refuse_an_invalid_token[/api/agents]": "passed",
    "test_protected_endpoints_refuse_an_invalid_token[POST /api/chat]": "passed",
    "test_health_endpoint_is_healthy[/api/health]": "passed",
    "test_cors_does_not_grant_unknown_or_null_origins": "failed",  # the reflected origin
    "test_no_dotfiles_backups_or_dumps_are_served": "failed",  # the served /.env
    "test_security_headers": "failed",  # no HSTS, no CSP, a version in Server
    "test_errors_are_clean": "failed",  # with a token the malformed POST reaches the trace
    "test_malformed_json_is_a_4xx": "failed",  # the stack trace on malformed JSON
}


def test_init_from_a_url_then_the_smoke_tests_run_against_the_demo(spec_url: str, tmp_path: Path) -> None:
    made = prodready("init", "--from-openapi", f"{spec_url}/openapi.json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "wrote prodready.toml" in made.stdout.replace(str(tmp_path) + "/", "")
    again = prodready("init", "--from-openapi", f"{spec_url}/openapi.json", cwd=tmp_path)
    assert again.returncode == 2 and "not overwriting" in again.stderr
    missing = prodready("init", "--from-openapi", f"{spec_url}/nope.json", "--dir", "other", cwd=tmp_path)
    assert missing.returncode == 2 and "answered 404" in missing.stderr

    config = tmp_path / "prodready.toml"
    text = config.read_text(encoding="utf-8")
    assert '# openapi = "/openapi.json"' in text  # served by another host than the target
    # The edits the demo's team makes: the ids the spec's examples do not know are dropped,
    # the auth stub is uncommented (its variable exported below), its private CA is trusted.
    text = text.replace('  "/api/agents/agt_42",', "").replace('  "DELETE /api/agents/agt_42",', "")
    assert '# [auth]\n# token_env = "PRODREADY_TOKEN"' in text
    text = text.replace('# [auth]\n# token_env = "PRODREADY_TOKEN"', '[auth]\ntoken_env = "PRODREADY_TOKEN"')
    smoke = tmp_path / "tests" / "prodready" / "test_smoke.py"
    smoke.write_text(smoke.read_text(encoding="utf-8").replace(
        '"/api/agents/agt_42", "DELETE /api/agents/agt_42", ', ""), encoding="utf-8")
    with DemoServer(tmp_path) as server:
        config.write_text(text + f'\n[tls]\nca_bundle = "{CA_BUNDLE}"\n', encoding="utf-8")
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "--prodready", "--prodready-url", server.url,
             "tests/prodready", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark",
             "--junitxml=smoke.xml", "-q"],
            cwd=tmp_path, env=clean_env(PRODREADY_TOKEN=server.env[DEMO_TOKEN_ENV]), capture_output=True,
            text=True, timeout=120, check=False)
    assert (tmp_path / "smoke.xml").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    outcomes = {}
    for case in ET.parse(tmp_path / "smoke.xml").getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcomes[case.get("name", "")] = ("failed" if "failure" in kinds else "error" if "error" in kinds
                                          else "skipped" if "skipped" in kinds else "passed")
    assert outcomes == EXPECTED, run.stdout[-4000:]
    assert run.returncode == 1
