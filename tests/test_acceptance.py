"""Acceptance: the example QA engineers copy (examples/test_launch_checklist.py), run by
pytest in a fresh project against the real webapp, passes on a well-configured service and
fails with evidence on a misconfigured one."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import webapp_toml

from pytest_prodready.registry import all_checks, get_check
from tests.targets.webapp import METRICS_TOKEN, VALID_TOKEN, Served

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE = EXAMPLES / "test_launch_checklist.py"
MODULE = EXAMPLE.stem

# Each checklist test of the example, and what its failure must show on the misconfigured
# webapp: the request sent, the status seen, and the check whose verdict and fix appear.
CHECKLIST: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "test_cors_rejects_unknown_origin":
        ("GET /api/agents", 200, ("cors.unknown_origin_rejected", "cors.no_wildcard_with_credentials")),
    "test_agents_refuse_anonymous_callers": ("GET /api/agents", 200, ("auth.required",)),
    "test_env_file_not_served": ("GET /.env", 200, ("exposure.sensitive_paths",)),
    "test_health_endpoint_is_healthy": ("GET /api/health", 503, ("health.endpoint_ok",)),
    "test_security_headers_present": ("GET /", 200, ("headers.hsts", "headers.csp")),
    "test_malformed_json_gets_4xx_without_stack_trace":
        ("POST /api/chat", 500, ("errors.malformed_input_is_4xx",)),
}
MISCONFIGURED = ("cors_reflect", "open_api", "env_served", "health_500", "no_hsts", "no_csp",
                 "stack_trace")


@pytest.fixture(autouse=True)
def _isolated_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs are driven by the temp project's config alone, not by the caller's shell.

    The check families are imported here, outside the in-process runs: pytester drops the
    modules a run imported when it ends, and re-importing a family in the next run would
    register its checks a second time (ValueError: check id ... is registered twice).
    """
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON",
                 "PRODREADY_SENSITIVE_URL"):
        monkeypatch.delenv(name, raising=False)
    all_checks()


def run_example(pytester: pytest.Pytester, config: str, *args: str) -> pytest.RunResult:
    """Copy the example and a prodready.toml into a fresh project and run pytest on it.

    `-k` keeps the run to the example's own tests: `--prodready` also runs the built-in
    suite, whose items are not what this test is about. The plugin itself loads from its
    entry point, as it does for a user; hypothesis' plugin is left out because it
    re-imports hypothesis in every in-process run (about 2 s each), benchmark's because it
    warns under xdist.
    """
    pytester.makefile(".toml", prodready=config)
    pytester.makepyfile(**{MODULE: EXAMPLE.read_text(encoding="utf-8")})
    return pytester.runpytest("-v", "-k", MODULE, "-p", "no:cacheprovider",
                              "-p", "no:hypothesispytest", "-p", "no:benchmark", *args)


def failure_sections(output: str) -> dict[str, str]:
    """The FAILURES section of each failed test, by test name."""
    failures = output.split(" FAILURES ", 1)[-1]
    failures = re.split(r"^=+ ", failures, maxsplit=1, flags=re.MULTILINE)[0]  # up to the next section
    parts = re.split(r"^_{3,} (\w+) _{3,}$", failures, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def assert_no_secret(output: str) -> None:
    # The tokens the config names, and the password in the .env the bad webapp serves:
    # a failure must not re-publish a leaked credential in the CI log.
    for secret in (VALID_TOKEN, METRICS_TOKEN, "hunter2hunter2"):
        assert secret not in output, f"secret {secret[:4]}… in the pytest output"


def test_example_passes_on_a_well_configured_service(
        pytester: pytest.Pytester, good_app: Served, webapp_env: None) -> None:
    result = run_example(pytester, webapp_toml(good_app.url), "--prodready")
    result.assert_outcomes(passed=len(CHECKLIST))
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"*{MODULE}.py::{name} PASSED*" for name in CHECKLIST],
                                consecutive=True)
    result.stdout.fnmatch_lines(["*verdict: READY*"])
    assert_no_secret(result.stdout.str())


def test_example_fails_on_a_misconfigured_service_with_evidence(
        pytester: pytest.Pytester, webapp: Callable[..., Served], webapp_env: None) -> None:
    bad = webapp(*MISCONFIGURED)
    result = run_example(pytester, webapp_toml(bad.url), "--prodready")
    result.assert_outcomes(failed=len(CHECKLIST))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert_no_secret(output)
    sections = failure_sections(output)
    assert sorted(sections) == sorted(CHECKLIST)
    for name, (request, status, checks) in CHECKLIST.items():
        method, _, path = request.partition(" ")
        section = sections[name]
        assert re.search(rf"^E\s+> {method} {re.escape(bad.url + path)}$", section, re.MULTILINE), \
            f"{name}: no request line '> {method} {bad.url}{path}'\n{section}"
        assert re.search(rf"^E\s+< {status} ", section, re.MULTILINE), \
            f"{name}: no response line '< {status}'\n{section}"
        for check_id in checks:
            assert f"[{check_id}]" in section, f"{name}: no verdict of {check_id}\n{section}"
            assert f"Fix: {get_check(check_id).remediation}" in section, \
                f"{name}: no fix of {check_id}\n{section}"
    # The token the malformed-JSON probe carried is shown masked, never in clear.
    assert "> Authorization: Bearer ****" in sections["test_malformed_json_gets_4xx_without_stack_trace"]
    result.stdout.fnmatch_lines(["*verdict: NOT READY*", "blockers (6):"])


def test_example_config_as_shipped_drives_the_example(
        pytester: pytest.Pytester, good_app: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/prodready.toml, verbatim: the URL comes from the command line, the token
    from the env var the file names."""
    monkeypatch.setenv("PRODREADY_TOKEN", VALID_TOKEN)
    config = (EXAMPLES / "prodready.toml").read_text(encoding="utf-8")
    result = run_example(pytester, config, "--prodready", "--prodready-url", good_app.url)
    result.assert_outcomes(passed=len(CHECKLIST))
    assert result.ret == pytest.ExitCode.OK


def test_example_is_skipped_without_prodready(pytester: pytest.Pytester) -> None:
    """Dropped into a unit-test suite, the live checks never run by accident."""
    config = (EXAMPLES / "prodready.toml").read_text(encoding="utf-8")
    result = run_example(pytester, config, "-rs")
    result.assert_outcomes(skipped=len(CHECKLIST))
    result.stdout.fnmatch_lines(["*live check: run with --prodready*"])
