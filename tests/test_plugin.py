"""The pytest layer, end to end: pytester runs of the plugin against the real webapp target.

Every run here hits a real Flask server on 127.0.0.1 (tests/targets/webapp.py) with the
defects each test switches on; nothing mocks requests.
"""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import pytest
from conftest import webapp_toml

from pytest_prodready import assertions, checking, runtime
from pytest_prodready.registry import all_checks
from pytest_prodready.report import render
from tests.targets.webapp import Served

# pytester forgets the modules first imported inside an in-process run, so each run would
# import (and assertion-rewrite) the plugin's lazily loaded parts again: load them once here.
assert assertions and checking and runtime and render and all_checks()

SCHEMA_PATH = Path(__file__).parents[1] / "src" / "pytest_prodready" / "report" / "report.schema.json"
SUITE_PREFIX = "prodready::"

# A test file a team would write: one plain unit test, one live check.
MIXED_TESTS = """
import pytest

def test_unit():
    assert 1 + 1 == 2

@pytest.mark.prodready(category="smoke", severity="high")
def test_live():
    assert True
"""

Webapp = Callable[..., Served]


@pytest.fixture(autouse=True)
def _lean_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep unrelated third-party plugins and the outer PRODREADY_* settings out of the runs.

    They play no part here, and hypothesis' plugin alone costs over a second per run (its
    import is repeated in every in-process run, see above). Set after pytester's own
    set-up, which clears PYTEST_ADDOPTS.
    """
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:benchmark")
    # The runs under test read these; the outer environment must not leak into them.
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON",
                 "PRODREADY_SENSITIVE_URL"):
        monkeypatch.delenv(name, raising=False)


# -- helpers -------------------------------------------------------------------------------
def write_config(pytester: pytest.Pytester, url: str, extra: str = "") -> Path:
    return pytester.makefile(".toml", prodready=webapp_toml(url, extra))


def suite_reports(result: pytest.RunResult) -> list[pytest.TestReport]:
    """The call-phase (or skip-at-setup) reports of the built-in suite's items."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return [r for r in reports if r.nodeid.startswith(SUITE_PREFIX)
            and (r.when == "call" or (r.when == "setup" and not r.passed))]


def ran_ids(result: pytest.RunResult) -> set[str]:
    return {r.nodeid for r in suite_reports(result)}


def failed_ids(result: pytest.RunResult) -> set[str]:
    return {r.nodeid for r in suite_reports(result) if r.failed}


def category_of(nodeid: str) -> str:
    return nodeid.removeprefix(SUITE_PREFIX).split(".", 1)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def record(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [c for c in report["checks"] if c["id"] == check_id]
    assert len(matches) == 1, f"{check_id}: {matches}"
    return matches[0]


# -- without --prodready: inert ---------------------------------------------------------------
def test_without_flag_suite_is_not_collected_and_live_tests_skip(
        pytester: pytest.Pytester, webapp: Webapp, webapp_env: None) -> None:
    app = webapp()
    write_config(pytester, app.url)
    pytester.makepyfile(MIXED_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["SKIPPED*live check: run with --prodready"])
    out = result.stdout.str()
    assert SUITE_PREFIX not in out
    assert "scorecard" not in out
    assert app.log == []  # not one request without --prodready


def test_plugin_can_be_disabled_even_with_a_config_present(pytester: pytest.Pytester) -> None:
    # Not valid TOML: proves the file is not even read when the plugin is off.
    pytester.makefile(".toml", prodready="base_url = [not toml")
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:prodready")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    plugins = [line for line in result.stdout.lines if line.startswith("plugins:")]
    assert all("prodready" not in line for line in plugins)
    assert not any(line.startswith("prodready") for line in result.stdout.lines)
    # Off means off: its options do not exist either.
    off = pytester.runpytest("-p", "no:prodready", "--prodready")
    assert off.ret == pytest.ExitCode.USAGE_ERROR
    assert "unrecognized arguments: --prodready" in off.stderr.str()


def test_markers_are_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.prodready
        def test_bare():
            pass

        @pytest.mark.prodready(category="security", severity="critical")
        def test_with_args():
            pass

        @pytest.mark.prodready_active
        def test_active():
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-W", "error")
    result.assert_outcomes(skipped=3)
    assert result.ret == pytest.ExitCode.OK
    assert "warning" not in result.stdout.str().lower()
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.prodready(category=*severity=*",
                                  "@pytest.mark.prodready_active*"])


def test_options_and_ini_show_in_help(pytester: pytest.Pytester) -> None:
    out = pytester.runpytest("--help").stdout.str()
    for option in ("--prodready", "--prodready-url", "--prodready-config", "--prodready-env",
                   "--prodready-active", "--prodready-force-active", "--prodready-sensitive-url",
                   "--prodready-fail-on", "--prodready-report", "--prodready-only"):
        assert option in out, option
    assert "production-readiness checks against a live target" in out
    for ini in ("prodready_config (string)", "prodready_fail_on (string)"):
        assert ini in out


# -- with --prodready: the suite as items -------------------------------------------------
def test_suite_items_have_stable_ids_and_collecting_sends_nothing(
        pytester: pytest.Pytester, webapp: Webapp, webapp_env: None) -> None:
    app = webapp()
    write_config(pytester, app.url)
    result = pytester.runpytest("--prodready", "--collect-only", "-q")
    ids = set(result.stdout.lines)
    for expected in ("prodready::cors.unknown_origin_rejected[/api/agents]",
                     "prodready::cors.unknown_origin_rejected[/]",
                     "prodready::auth.required[POST /api/chat]",
                     "prodready::headers.hsts",
                     "prodready::health.endpoint_ok[/api/health]"):
        assert expected in ids, expected
    assert app.log == []  # collection does no network I/O


def test_k_and_m_select_suite_items(pytester: pytest.Pytester, good_app: Served,
                                    webapp_env: None) -> None:
    write_config(pytester, good_app.url)
    pytester.makepyfile(MIXED_TESTS)

    by_k = pytester.runpytest("--prodready", "-k", "cors")
    assert by_k.ret == pytest.ExitCode.OK
    ids = ran_ids(by_k)
    assert ids and {category_of(i) for i in ids} == {"cors"}
    assert "prodready::cors.unknown_origin_rejected[/api/agents]" in ids
    outcomes = by_k.parseoutcomes()
    assert outcomes["passed"] == len(ids)
    assert outcomes["deselected"] > 2  # the other categories and both tests of the file

    by_m = pytester.runpytest("--prodready", "-m", "prodready")
    assert by_m.ret == pytest.ExitCode.OK
    outcomes = by_m.parseoutcomes()
    assert outcomes["deselected"] == 1  # test_unit only
    # The suite plus test_live; families the webapp's config does not cover (tls on an
    # http:// target, webhooks) are skipped items, by contract never silent passes.
    assert len(ran_ids(by_m)) + 1 == outcomes["passed"] + outcomes.get("skipped", 0)
    assert {category_of(i) for i in ran_ids(by_m)} >= {"cors", "headers", "auth", "health"}


def test_last_failed_reruns_only_failed_checks(pytester: pytest.Pytester, webapp: Webapp,
                                                webapp_env: None) -> None:
    app = webapp("cors_reflect")
    write_config(pytester, app.url)
    first = pytester.runpytest("--prodready")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    failed = failed_ids(first)
    assert "prodready::cors.unknown_origin_rejected[/api/agents]" in failed
    assert len(ran_ids(first)) > len(failed)

    again = pytester.runpytest("--prodready", "--lf")
    assert again.ret == pytest.ExitCode.TESTS_FAILED
    assert ran_ids(again) == failed
    assert failed_ids(again) == failed
    again.assert_outcomes(failed=len(failed), deselected=len(ran_ids(first)) - len(failed))


def test_only_keeps_the_named_categories(pytester: pytest.Pytester, good_app: Served,
                                         webapp_env: None) -> None:
    write_config(pytester, good_app.url)
    result = pytester.runpytest("--prodready", "--prodready-only", "cors,headers")
    assert result.ret == pytest.ExitCode.OK
    assert {category_of(i) for i in ran_ids(result)} == {"cors", "headers"}
    assert "deselected" not in result.stdout.str()  # not collected at all, not deselected


def test_only_with_unknown_category_is_a_usage_error(pytester: pytest.Pytester, good_app: Served,
                                                     webapp_env: None) -> None:
    write_config(pytester, good_app.url)
    result = pytester.runpytest("--prodready", "--prodready-only", "cors,headerz")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors
    assert "unknown category 'headerz'" in errors[0]
    assert "did you mean 'headers'?" in errors[0]
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


# -- severity gating ------------------------------------------------------------------------
LOW_ONLY = ("version_disclosure", "no_referrer_policy")  # headers.no_version_disclosure, .referrer_policy


def test_fail_on_high_ignores_low_failures_but_shows_them(
        pytester: pytest.Pytester, webapp: Webapp, webapp_env: None) -> None:
    app = webapp(*LOW_ONLY)
    write_config(pytester, app.url)
    expected = {"prodready::headers.no_version_disclosure", "prodready::headers.referrer_policy"}

    gated = pytester.runpytest("--prodready", "--prodready-fail-on", "high", "-rf")
    assert gated.ret == pytest.ExitCode.OK
    assert failed_ids(gated) == expected
    out = gated.stdout.str()
    assert "verdict: READY" in out
    assert "below the fail-on gate (2, not failing the run)" in out
    gated.stdout.fnmatch_lines(["*software versions disclosed: X-Powered-By: Express 4.17.1*",
                                "FAILED prodready::headers.no_version_disclosure*"])

    default = pytester.runpytest("--prodready")
    assert default.ret == pytest.ExitCode.TESTS_FAILED
    assert failed_ids(default) == expected
    assert "verdict: NOT READY" in default.stdout.str()

    # The ini option sets the same default.
    pytester.makeini("[pytest]\nprodready_fail_on = high\n")
    by_ini = pytester.runpytest("--prodready")
    assert by_ini.ret == pytest.ExitCode.OK
    assert "fail-on high (from ini prodready_fail_on)" in by_ini.stdout.str()


@pytest.mark.parametrize("fail_on", ["high", "critical"])
def test_critical_failure_fails_whatever_the_gate(pytester: pytest.Pytester, webapp: Webapp,
                                                  webapp_env: None, fail_on: str) -> None:
    app = webapp("cors_reflect", *LOW_ONLY)
    write_config(pytester, app.url)
    result = pytester.runpytest("--prodready", "--prodready-fail-on", fail_on)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "verdict: NOT READY" in result.stdout.str()
    assert "prodready::cors.unknown_origin_rejected[/api/agents]" in failed_ids(result)


def test_fail_on_rejects_an_unknown_severity(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--prodready", "--prodready-fail-on", "severe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'severe' is not a severity" in result.stderr.str()


# -- profiles and precedence ----------------------------------------------------------------
def test_profile_picks_its_base_url(pytester: pytest.Pytester, webapp: Webapp,
                                   webapp_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    base, staging = webapp(), webapp("no_hsts")
    write_config(pytester, base.url, f'\n[env.staging]\nbase_url = "{staging.url}"\n')

    plain = pytester.runpytest("--prodready", "-k", "hsts")
    assert plain.ret == pytest.ExitCode.OK
    assert f"prodready: target {base.url} (from prodready.toml)" in plain.stdout.str()

    by_option = pytester.runpytest("--prodready", "-k", "hsts", "--prodready-env", "staging")
    assert by_option.ret == pytest.ExitCode.TESTS_FAILED
    out = by_option.stdout.str()
    assert f"prodready: target {staging.url} (from profile staging)" in out
    assert "profile staging" in out
    assert failed_ids(by_option) == {"prodready::headers.hsts"}

    monkeypatch.setenv("PRODREADY_ENV", "staging")
    by_env = pytester.runpytest("--prodready", "-k", "hsts")
    assert by_env.ret == pytest.ExitCode.TESTS_FAILED
    assert f"prodready: target {staging.url}" in by_env.stdout.str()
    assert any(s.path == "/" for s in staging.log)


def test_unknown_profile_is_a_usage_error_listing_profiles(
        pytester: pytest.Pytester, good_app: Served, webapp_env: None) -> None:
    write_config(pytester, good_app.url, '\n[env.staging]\nbase_url = "http://127.0.0.1:1"\n'
                                         '[env.production]\nbase_url = "http://127.0.0.1:2"\n')
    result = pytester.runpytest("--prodready", "--prodready-env", "prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "profile 'prod'" in err
    assert "profiles: production, staging" in err
    assert "Traceback" not in err


def test_url_precedence_option_then_env_then_config(
        pytester: pytest.Pytester, webapp: Webapp, webapp_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from_config, from_env, from_option = webapp(), webapp(), webapp()
    write_config(pytester, from_config.url)
    monkeypatch.setenv("PRODREADY_URL", from_env.url)

    env_wins = pytester.runpytest("--prodready", "-k", "hsts")
    assert env_wins.ret == pytest.ExitCode.OK
    assert f"prodready: target {from_env.url} (from env PRODREADY_URL)" in env_wins.stdout.str()

    option_wins = pytester.runpytest("--prodready", "-k", "hsts", "--prodready-url", from_option.url)
    assert option_wins.ret == pytest.ExitCode.OK
    assert f"prodready: target {from_option.url} (from command line)" in option_wins.stdout.str()

    assert from_config.log == []  # the config's URL was never used
    assert from_env.log and from_option.log


# -- reports ----------------------------------------------------------------------------------
def test_reports_json_md_html(pytester: pytest.Pytester, webapp: Webapp, webapp_env: None) -> None:
    app = webapp("cors_reflect", "version_disclosure")
    write_config(pytester, app.url)
    out = {suffix: pytester.path / "reports" / f"out.{suffix}" for suffix in ("json", "md", "html")}
    result = pytester.runpytest("--prodready", *(f"--prodready-report={p}" for p in out.values()))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for path in out.values():
        assert f"report written: {path}" in result.stdout.str()

    report = load_report(out["json"])
    assert report["verdict"] == "NOT READY"
    assert report["target"] == app.url
    assert report["fail_on"] == "low"
    assert isinstance(report["score"], int) and 0 < report["score"] < 100

    # The report agrees with what pytest ran.
    reports = suite_reports(result)
    assert sorted(c["nodeid"] for c in report["checks"]) == sorted(r.nodeid for r in reports)
    assert set(report["blockers"]) == failed_ids(result)
    assert "prodready::cors.unknown_origin_rejected[/api/agents]" in report["blockers"]
    by_category: dict[str, dict[str, int]] = {}
    for r in reports:
        counts = by_category.setdefault(category_of(r.nodeid),
                                        {"passed": 0, "failed": 0, "skipped": 0})
        counts[r.outcome] += 1
    assert {c["name"]: {k: c[k] for k in ("passed", "failed", "skipped")}
            for c in report["categories"]} == by_category
    cors = next(c for c in report["categories"] if c["name"] == "cors")
    assert cors["failed"] > 0 and cors["score"] < 100
    headers = next(c for c in report["categories"] if c["name"] == "headers")
    assert headers["failed"] == 1  # no_version_disclosure only
    check = record(report, "headers.no_version_disclosure")
    assert check["outcome"] == "failed" and check["severity"] == "low"
    assert check["evidence"] and check["evidence"][0]["response"]["status"] == 200

    md = out["md"].read_text(encoding="utf-8")
    assert "NOT READY" in md
    assert "| category | passed | failed |" in md
    assert "| cors |" in md
    assert "prodready::cors.unknown_origin_rejected[/api/agents]" in md

    page = out["html"].read_text(encoding="utf-8")
    assert '<h1 id="verdict">NOT READY</h1>' in page
    assert "cors.unknown_origin_rejected" in page


def test_report_option_rejects_an_unknown_suffix(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--prodready", "--prodready-report", "out.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "needs a suffix among .json, .md, .html" in result.stderr.str()


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what legitimately differs between two runs (timings, Date)."""
    for check in report["checks"]:
        check.pop("duration_ms", None)
        for exchange in check["evidence"]:
            exchange["response"].pop("elapsed_ms", None)
            exchange["response"]["headers"] = [h for h in exchange["response"]["headers"]
                                               if h[0].lower() != "date"]
        check["message"] = re.sub(r"\d+ ms\b", "N ms", check["message"])  # 'healthy in 3 ms'
    return report


def test_xdist_gives_the_same_scorecard_as_a_serial_run(
        pytester: pytest.Pytester, webapp: Webapp, webapp_env: None) -> None:
    app = webapp("cors_reflect", "version_disclosure", "env_served", "stack_trace")
    write_config(pytester, app.url)
    pytester.makepyfile(MIXED_TESTS)
    serial = pytester.runpytest_subprocess("--prodready", "-p", "no:cacheprovider",
                                           "--prodready-report=serial.json")
    parallel = pytester.runpytest_subprocess("--prodready", "-p", "no:cacheprovider",
                                             "-p", "xdist", "-n", "2",
                                             "--prodready-report=parallel.json")
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    assert "created: 2/2 workers" in parallel.stdout.str()
    one = _comparable(load_report(pytester.path / "serial.json"))
    two = _comparable(load_report(pytester.path / "parallel.json"))
    assert one["verdict"] == "NOT READY"
    assert any(c["id"].endswith("test_live") for c in one["checks"])
    assert one == two
    assert serial.parseoutcomes() == parallel.parseoutcomes()


def test_xdist_with_a_target_down_is_one_message(pytester: pytest.Pytester,
                                                 webapp_env: None) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    write_config(pytester, url)
    result = pytester.runpytest_subprocess("--prodready", "-p", "xdist", "-n", "2")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert f"target {url} is unreachable" in out
    assert "FAILED" not in out and "Traceback" not in out


# -- JUnit XML ----------------------------------------------------------------------------
def test_junit_xml_carries_check_properties(pytester: pytest.Pytester, webapp: Webapp,
                                            webapp_env: None) -> None:
    app = webapp("no_hsts")
    write_config(pytester, app.url)
    result = pytester.runpytest("--prodready", "--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    seen = 0
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        check_id = case.get("name", "").split("[", 1)[0]
        assert props["prodready_id"] == check_id
        assert props["prodready_category"] == check_id.split(".", 1)[0]
        assert props["prodready_severity"] in ("critical", "high", "medium", "low")
        seen += 1
        if check_id == "headers.hsts":
            assert props["prodready_severity"] == "high"
            assert case.find("failure") is not None
        if check_id == "cors.unknown_origin_rejected":
            assert props["prodready_severity"] == "critical"
    assert seen == len(ran_ids(result)) > 20


# -- custom tests, waivers ----------------------------------------------------------------------
def test_custom_failing_test_counts_in_its_category_and_severity(
        pytester: pytest.Pytester, good_app: Served, webapp_env: None) -> None:
    write_config(pytester, good_app.url)
    pytester.makepyfile(test_custom="""
        import pytest

        @pytest.mark.prodready(category="custom", severity="critical")
        def test_backup_restored_recently():
            assert False, "last restore drill was 400 days ago"

        @pytest.mark.prodready(category="custom", severity="low")
        def test_runbook_linked():
            pass
    """)
    result = pytester.runpytest("--prodready", "--prodready-fail-on", "high",
                                "--prodready-report=out.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = load_report(pytester.path / "out.json")
    assert report["verdict"] == "NOT READY"
    nodeid = "test_custom.py::test_backup_restored_recently"
    assert report["blockers"] == [nodeid]
    failed = record(report, nodeid)
    assert (failed["category"], failed["severity"], failed["outcome"]) == ("custom", "critical", "failed")
    assert "400 days" in failed["message"]
    custom = next(c for c in report["categories"] if c["name"] == "custom")
    assert (custom["passed"], custom["failed"], custom["score"]) == (1, 1, round(100 * 1 / 11))
    assert f"CRITICAL {nodeid}" in result.stdout.str()


def test_xfail_on_a_live_test_is_waived_and_an_xpass_passes(
        pytester: pytest.Pytester, good_app: Served, webapp_env: None) -> None:
    write_config(pytester, good_app.url)
    pytester.makepyfile(test_known="""
        import pytest

        @pytest.mark.prodready(severity="critical")
        @pytest.mark.xfail(reason="SSO rollout, tracked in SEC-9")
        def test_sso_enforced():
            assert False

        @pytest.mark.prodready(severity="critical")
        @pytest.mark.xfail(reason="flaky probe")
        def test_fixed_already():
            pass
    """)
    result = pytester.runpytest("--prodready", "--prodready-only", "headers",
                                "--prodready-report=out.json")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["waived (1):",
                                 "  test_known.py::test_sso_enforced: SSO rollout, tracked in SEC-9*"])
    report = load_report(pytester.path / "out.json")
    assert report["verdict"] == "READY"
    waived = record(report, "test_known.py::test_sso_enforced")
    assert waived["outcome"] == "waived"
    assert waived["waiver"]["reason"] == "SSO rollout, tracked in SEC-9"
    assert record(report, "test_known.py::test_fixed_already")["outcome"] == "passed"


def test_active_waiver_turns_a_failure_into_waived(pytester: pytest.Pytester, webapp: Webapp,
                                                   webapp_env: None) -> None:
    app = webapp("version_disclosure")
    write_config(pytester, app.url, """
[[waivers]]
id = "headers.no_version_disclosure"
reason = "the CDN adds it, tracked in OPS-7"
expires = 2999-12-31
""")
    result = pytester.runpytest("--prodready", "--prodready-report=out.json")
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str()
    assert "verdict: READY" in out
    assert "the CDN adds it, tracked in OPS-7 (until 2999-12-31)" in out
    report = load_report(pytester.path / "out.json")
    waived = record(report, "headers.no_version_disclosure")
    assert waived["outcome"] == "waived"
    assert waived["waiver"] == {"reason": "the CDN adds it, tracked in OPS-7",
                                "expires": "2999-12-31", "active": True}
    headers = next(c for c in report["categories"] if c["name"] == "headers")
    assert (headers["waived"], headers["failed"]) == (1, 0)


def test_expired_waiver_fails_and_says_so(pytester: pytest.Pytester, webapp: Webapp,
                                          webapp_env: None) -> None:
    app = webapp("version_disclosure")
    write_config(pytester, app.url, """
[[waivers]]
id = "headers.no_version_disclosure"
reason = "the CDN adds it"
expires = "2020-01-31"
""")
    result = pytester.runpytest("--prodready")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert failed_ids(result) == {"prodready::headers.no_version_disclosure"}
    result.stdout.fnmatch_lines(["*waiver for headers.no_version_disclosure expired on 2020-01-31*"])


def test_waiver_for_an_unknown_check_is_a_usage_error(pytester: pytest.Pytester, good_app: Served,
                                                      webapp_env: None) -> None:
    write_config(pytester, good_app.url, '\n[[waivers]]\nid = "headers.hstss"\nreason = "x"\n')
    result = pytester.runpytest("--prodready")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "did you mean 'headers.hsts'?" in result.stderr.str()


# -- a target that is down, or none at all ---------------------------------------------------
@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "unused-port"])
def test_target_down_is_one_clear_message(pytester: pytest.Pytester, good_app: Served,
                                          webapp_env: None, url: str) -> None:
    if url == "unused-port":
        url = f"http://127.0.0.1:{free_port()}"
    write_config(pytester, good_app.url)
    pytester.makepyfile(MIXED_TESTS)
    result = pytester.runpytest("--prodready", "--prodready-url", url)
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    out = result.stdout.str() + result.stderr.str()
    assert f"target {url} is unreachable" in out
    assert out.count("unreachable") == 1
    assert "Traceback" not in out
    assert "FAILED" not in out and "ERROR" not in out


def test_no_base_url_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXED_TESTS)
    result = pytester.runpytest("--prodready")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "no target" in err and "--prodready-url" in err
    assert "Traceback" not in err


def test_invalid_url_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--prodready", "--prodready-url", "staging.example.com")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not an http(s) URL" in result.stderr.str()


# -- the fixtures in a user's own tests ------------------------------------------------------
USER_TESTS = """
import pytest

from pytest_prodready.assertions import assert_healthy, assert_security_headers
from pytest_prodready.target import Probe

@pytest.mark.prodready(category="smoke")
def test_health_body(prodready_target, prodready_settings):
    exchange = prodready_target.fetch(Probe.get("/api/health"))
    assert exchange.status == 200
    assert exchange.json()["status"] == "ok"
    assert prodready_settings.base_url == prodready_target.base_url

@pytest.mark.prodready(category="smoke")
def test_healthy_helper(prodready_target):
    assert_healthy(prodready_target, "/api/health")

@pytest.mark.prodready(category="smoke", severity="medium")
def test_headers_helper(prodready_target):
    assert_security_headers(prodready_target)
"""


def test_prodready_target_fixture_and_helpers_in_user_tests(
        pytester: pytest.Pytester, webapp: Webapp, webapp_env: None) -> None:
    app = webapp("no_hsts")
    write_config(pytester, app.url)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("--prodready", "--prodready-only", "health",
                                "--prodready-report=out.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    reports = [r for r in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
               if r.when == "call" and r.nodeid.startswith("test_user.py")]
    assert {r.nodeid.split("::")[1]: r.outcome for r in reports} == {
        "test_health_body": "passed", "test_healthy_helper": "passed",
        "test_headers_helper": "failed"}
    out = result.stdout.str()
    assert "Strict-Transport-Security" in out and "Fix:" in out
    assert f"> GET {app.url}/" in out  # the evidence: the request that was sent
    smoke = next(c for c in load_report(pytester.path / "out.json")["categories"]
                 if c["name"] == "smoke")
    assert (smoke["passed"], smoke["failed"]) == (2, 1)


def test_fixture_skips_without_prodready(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_unmarked_uses_target(prodready_target):
            raise AssertionError("must not run")
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*--prodready*"])


def test_a_shared_exchange_is_shown_once_in_the_terminal(pytester: pytest.Pytester, webapp: Any,
                                                         webapp_env: None) -> None:
    """One page probe feeds every header check: its evidence is printed under the first
    failure only, the others refer to it; the JSON report keeps it for each."""
    served = webapp("no_hsts", "no_csp", "no_nosniff")
    pytester.makefile(".toml", prodready=webapp_toml(served.url))
    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "--prodready-only", "headers",
                                "--prodready-report", "r.json")
    # The failures section (with CI set, pytest's short summary repeats whole messages).
    out = result.stdout.str().partition("short test summary info")[0]
    page_line = f"> GET {served.url}/"
    assert out.count(page_line + "\n") == 1, out
    assert "the same exchange as under prodready::headers." in out
    report = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    failed = [c for c in report["checks"] if c["outcome"] == "failed"]
    assert len(failed) >= 3 and all(c["evidence"] for c in failed)


def test_verbose_lines_show_the_node_id_users_select_with(
        pytester: pytest.Pytester, webapp: Webapp, webapp_env: None) -> None:
    """`pytest -v` prints each check by the id -k, --lf and the reports use (the check id's
    dot kept, not turned into '::'), and a failure's section is headed by it."""
    write_config(pytester, webapp(*LOW_ONLY).url)
    result = pytester.runpytest("--prodready", "-v", "--prodready-only", "headers")
    result.stdout.fnmatch_lines(["prodready::headers.no_version_disclosure FAILED*",
                                 "*_ prodready headers.no_version_disclosure _*"])
    assert "prodready::headers::" not in result.stdout.str()
