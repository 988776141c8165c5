"""The pytest layer's hooks, and nothing else: options, markers, configure, the suite's
collection, the preflight and prefetch, the report wrapper, unconfigure.

The machinery lives beside it (loading.py, suite.py, fixtures.py, scoreboard.py) and is
imported only when `--prodready` is given: a project that has the plugin installed but does
not ask for it pays almost nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready.fixtures import prodready_settings, prodready_target
from pytest_prodready.severity import SEVERITIES as SEVERITY_CHOICES
from pytest_prodready.stash import RUN_FOLDER, RUNTIME, SUITE_NAME

__all__ = ["RUNTIME", "SUITE_NAME", "prodready_settings", "prodready_target"]


# -- options and markers ------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("prodready", "production-readiness checks against a live target")
    group.addoption("--prodready", action="store_true", default=False,
                    help="run live checks: the built-in suite from config, and tests marked "
                         "@pytest.mark.prodready (skipped otherwise)")
    group.addoption("--prodready-url", metavar="URL", default=None,
                    help="base URL of the target (env PRODREADY_URL); overrides config")
    group.addoption("--prodready-config", metavar="PATH", default=None,
                    help="config file (env PRODREADY_CONFIG); default prodready.toml, "
                         "else [tool.prodready] in pyproject.toml")
    group.addoption("--prodready-env", metavar="NAME", default=None,
                    help="config profile [tool.prodready.env.NAME] (env PRODREADY_ENV)")
    group.addoption("--prodready-active", action="store_true", default=False,
                    help="also run active checks (floods, lockouts, load); off by default")
    group.addoption("--prodready-force-active", action="store_true", default=False,
                    help="allow active checks on a target matching --prodready-sensitive-url")
    group.addoption("--prodready-sensitive-url", metavar="REGEX", default=None,
                    help="targets matching it refuse active checks (env PRODREADY_SENSITIVE_URL)")
    group.addoption("--prodready-fail-on", metavar="SEVERITY", default=None,
                    type=_severity_option,
                    help="lowest severity whose failure fails the run: critical, high, medium, "
                         "low (default low)")
    group.addoption("--prodready-report", metavar="PATH", action="append", default=[],
                    type=_report_option,
                    help="write the scorecard; format by suffix .json, .md, .html or .sarif; a .json "
                         "named *codequality*: GitLab Code Quality; repeatable")
    group.addoption("--prodready-suite", action="store_true", default=False,
                    help="run the built-in suite even when test paths are given (it joins by "
                         "itself when pytest is run without paths)")
    group.addoption("--prodready-only", metavar="LIST", default=None,
                    help="run only these categories of the built-in suite, e.g. 'cors,headers'")
    parser.addini("prodready_config", "prodready config file (like --prodready-config)", default=None)
    parser.addini("prodready_fail_on", "default for --prodready-fail-on", default=None)


def _severity_option(value: str) -> str:
    if value.lower() not in SEVERITY_CHOICES:
        raise pytest.UsageError(f"--prodready-fail-on: {value!r} is not a severity; use one of "
                                f"{', '.join(SEVERITY_CHOICES)}")
    return value.lower()


def _report_option(value: str) -> str:
    from pytest_prodready.report.render import FORMATS

    if Path(value).suffix.lower() not in FORMATS:
        raise pytest.UsageError(f"--prodready-report: {value!r} needs a suffix among "
                                f"{', '.join(FORMATS)}")
    return value


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Our own hooks (newhooks.py): observe each record and the scorecard, adjust the suite."""
    from pytest_prodready import newhooks

    pluginmanager.add_hookspecs(newhooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "prodready(category='custom', severity='high', fix=''): a live production-readiness "
        "check; runs only with --prodready and counts in the scorecard (fix: the remediation "
        "shown with a failure)")
    config.addinivalue_line(
        "markers", "prodready_active: a check that floods or mutates; needs --prodready-active")
    if not config.getoption("prodready"):
        return
    from pytest_prodready.exceptions import ConfigError
    from pytest_prodready.loading import load_run_settings, run_share
    from pytest_prodready.runtime import Runtime
    from pytest_prodready.scoreboard import InterruptPlugin, ScoreboardPlugin

    try:
        settings = load_run_settings(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not settings.base_url:
        raise pytest.UsageError(
            "prodready: no target; set base_url in prodready.toml or [tool.prodready], or pass "
            "--prodready-url URL (or PRODREADY_URL)")
    config.stash[RUNTIME] = Runtime(settings, share=run_share(config))
    config.pluginmanager.register(InterruptPlugin(config.stash[RUNTIME]), "prodready-interrupt")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ScoreboardPlugin(config, settings), "prodready-scoreboard")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker shares the controller's run folder (one budget per run)."""
    config = node.config
    if RUNTIME in config.stash and config.stash[RUNTIME].share.folder is not None:
        node.workerinput["prodready_run_dir"] = str(config.stash[RUNTIME].share.folder)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if RUNTIME not in config.stash:
        return None
    settings = config.stash[RUNTIME].settings
    masker = settings.masker()
    src = settings.sources
    lines = [f"prodready: target {masker.url(settings.base_url)} (from {src.get('base_url', 'config')})"]
    details = [f"config {settings.config_file.name if settings.config_file else 'none'}"]
    if settings.profile:
        details.append(f"profile {settings.profile}")
    details.append(f"fail-on {settings.get('fail_on')} (from {src.get('fail_on', 'default')})")
    details.append(f"budget {settings.get('request_budget')} requests, concurrency "
                   f"{settings.get('max_concurrency')}, timeout {settings.get('timeout_s'):g}s")
    lines.append("prodready: " + ", ".join(details))
    if settings.active_refused:
        lines.append(f"prodready: {settings.active_refused}")
    else:
        mode = ("ACTIVE (floods and lockouts allowed)" if settings.active
                else "passive (GET/HEAD/OPTIONS and must-be-refused requests only)")
        lines.append(f"prodready: mode {mode}")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    # tryfirst: our items exist before -k, -m and --lf filter the list.
    enabled = RUNTIME in config.stash
    if enabled:
        from pytest_prodready.suite import build_suite, suite_joins

    if enabled and suite_joins(config):
        suite = build_suite(session, config.stash[RUNTIME])
        config.hook.pytest_prodready_modify_suite(items=suite, config=config)
        items.extend(suite)
        if suite:
            # Report the suite like any collected module, so the terminal's "collected N
            # items" and --collect-only count it.
            report = pytest.CollectReport(suite[0].parent.nodeid if suite[0].parent else SUITE_NAME,
                                          "passed", None, list(suite))
            config.hook.pytest_collectreport(report=report)
    active = enabled and config.stash[RUNTIME].settings.active
    for item in items:
        if not enabled and item.get_closest_marker("prodready"):
            item.add_marker(pytest.mark.skip(reason="live check: run with --prodready"))
        elif item.get_closest_marker("prodready_active") and not active:
            reason = (config.stash[RUNTIME].settings.active_refused if enabled else "") \
                or "active check: needs --prodready-active"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before the first check: make sure the target answers, then prefetch every probe."""
    config = session.config
    if RUNTIME not in config.stash or config.option.collectonly or hasattr(config, "workerinput"):
        return
    # Under xdist this runs on the controller, which collects nothing itself: the workers
    # build the suite, so the target must be checked here, before they start on it.
    from pytest_prodready.suite import CheckItem

    distributed = (config.getoption("dist", "no") or "no") != "no"
    ours = [i for i in session.items if isinstance(i, CheckItem) or i.get_closest_marker("prodready")]
    if not ours and not distributed:
        return
    from concurrent.futures import ThreadPoolExecutor

    from pytest_prodready.exceptions import BudgetExceeded, TargetUnreachable

    runtime = config.stash[RUNTIME]
    target = runtime.target()
    # The preflight's round trip overlaps with building the probe list (which imports what
    # some checks need, e.g. pyjwt): neither waits for the other.
    with ThreadPoolExecutor(1, thread_name_prefix="prodready-preflight") as one:
        preflight = one.submit(target.preflight)
        probes = [] if distributed else [
            p for item in ours if isinstance(item, CheckItem)
            and not item.spec.missing_config(runtime.settings)
            for p in item.planned_probes()]
        try:
            preflight.result()
        except TargetUnreachable as exc:
            runtime.stopped = exc
            pytest.exit(str(exc), returncode=pytest.ExitCode.INTERRUPTED)
    if distributed:
        return  # under xdist each worker fetches what its own items need
    from pytest_prodready import progress

    line = progress.for_prefetch(config, target, probes)  # None off a terminal, in CI, under -q
    try:
        with contextlib.suppress(BudgetExceeded):  # reported by the first check that meets it
            target.prefetch(probes, on_done=line)
    finally:
        if line is not None:
            line.clear()  # before the first item's output


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if RUNTIME not in item.config.stash:
        return report
    from pytest_prodready.exceptions import BudgetExceeded

    if call.excinfo is not None and isinstance(call.excinfo.value, BudgetExceeded):
        item.session.shouldstop = f"prodready: {call.excinfo.value}"
    from pytest_prodready.scoreboard import mask_report, record_of

    record = record_of(item, call, report)
    if record is not None:
        report.prodready = record.to_dict()  # type: ignore[attr-defined]  # travels through xdist
        _junit_properties(item, report, record)
    mask_report(report, item.config.stash[RUNTIME].masker())
    return report


def _junit_properties(item: pytest.Item, report: pytest.TestReport, record: Any) -> None:
    """JUnit XML: every prodready test case (built-in or a team's marked test) carries
    prodready_id, category, severity and waived. Set on the item, so the teardown report,
    whose user_properties pytest's junitxml writes (also from xdist workers), has them."""
    props = {"prodready_id": record.id, "category": record.category, "severity": record.severity,
             "waived": "true" if record.outcome == "waived" else "false"}
    kept = [(k, v) for k, v in item.user_properties if k not in props]
    item.user_properties[:] = [*kept, *props.items()]
    report.user_properties = list(item.user_properties)


def pytest_unconfigure(config: pytest.Config) -> None:
    if RUNTIME in config.stash:
        config.stash[RUNTIME].close()
    if RUN_FOLDER in config.stash:
        import shutil

        shutil.rmtree(config.stash[RUN_FOLDER], ignore_errors=True)
