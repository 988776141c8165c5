"""The pytest layer: options, markers, the built-in suite as items, fixtures, the scorecard.

Kept thin and cheap: nothing here imports the check families, cryptography or the
reporting stack until `--prodready` is given.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_prodready.checking import Result
    from pytest_prodready.config import Settings
    from pytest_prodready.registry import CheckSpec
    from pytest_prodready.report.scorecard import Scorecard
    from pytest_prodready.runtime import Runtime
    from pytest_prodready.target import Target

RUNTIME = pytest.StashKey["Runtime"]()
RUN_FOLDER = pytest.StashKey[Path]()
SUITE_NAME = "prodready"
from pytest_prodready.severity import SEVERITIES as SEVERITY_CHOICES  # noqa: E402


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
                    help="write the scorecard; format by suffix .json, .md or .html; repeatable")
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
    from pytest_prodready.runtime import Runtime

    try:
        settings = _load_settings(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not settings.base_url:
        raise pytest.UsageError(
            "prodready: no target; set base_url in prodready.toml or [tool.prodready], or pass "
            "--prodready-url URL (or PRODREADY_URL)")
    config.stash[RUNTIME] = Runtime(settings, share=_run_share(config))
    config.pluginmanager.register(InterruptPlugin(config.stash[RUNTIME]), "prodready-interrupt")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ScoreboardPlugin(config, settings), "prodready-scoreboard")


def _run_share(config: pytest.Config) -> Any:
    """The run folder: made by the controller (or a plain run), handed to xdist workers."""
    import tempfile

    from pytest_prodready.runshare import RunShare

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("prodready_run_dir"):
        return RunShare(Path(workerinput["prodready_run_dir"]))
    folder = Path(tempfile.mkdtemp(prefix="prodready-run-"))
    config.stash[RUN_FOLDER] = folder
    return RunShare(folder)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker shares the controller's run folder (one budget per run)."""
    config = node.config
    if RUNTIME in config.stash and config.stash[RUNTIME].share.folder is not None:
        node.workerinput["prodready_run_dir"] = str(config.stash[RUNTIME].share.folder)


def _load_settings(config: pytest.Config) -> Settings:
    from pytest_prodready.config import Overrides, Problems, load_settings
    from pytest_prodready.exceptions import ConfigError
    from pytest_prodready.registry import all_checks, categories
    from pytest_prodready.schema import key_path

    blame: dict[str, str] = {}  # setting -> its source, as an error about it names it

    def pick(field: str, option: str, env: str, ini: str | None = None) -> tuple[str | None, str]:
        value = config.getoption(option)
        if value:
            blame[field] = "--" + option.replace("_", "-")
            return value, "command line"
        if os.environ.get(env):
            blame[field] = f"{env} (env)"
            return os.environ[env], f"env {env}"
        if ini and config.getini(ini):
            blame[field] = f"{ini} (ini)"
            return str(config.getini(ini)), f"ini {ini}"
        return None, ""

    url, url_src = pick("url", "prodready_url", "PRODREADY_URL")
    config_path, _ = pick("config_path", "prodready_config", "PRODREADY_CONFIG", "prodready_config")
    profile, _ = pick("profile", "prodready_env", "PRODREADY_ENV")
    fail_on, fail_src = pick("fail_on", "prodready_fail_on", "PRODREADY_FAIL_ON", "prodready_fail_on")
    sensitive, _ = pick("sensitive_url", "prodready_sensitive_url", "PRODREADY_SENSITIVE_URL")
    problems = Problems()  # every problem of the run, reported at once
    only_raw = config.getoption("prodready_only") or ""
    only = tuple(c.strip() for c in only_raw.split(",") if c.strip())
    known = categories()
    for name in only:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.outside(ConfigError("--prodready-only", f"unknown category {name!r}; {hint}"
                                                             f"categories: {', '.join(known)}"))
    sources = {k: v for k, v in (("base_url", url_src), ("fail_on", fail_src)) if v}
    overrides = Overrides(
        url=url, config_path=config_path, profile=profile, fail_on=fail_on, only=only,
        active=bool(config.getoption("prodready_active")),
        force_active=bool(config.getoption("prodready_force_active")),
        sensitive_url=sensitive, fallback_url=_pytest_base_url(config), sources=sources, blame=blame)
    try:
        settings = load_settings(Path(config.rootpath), overrides)
    except ConfigError as exc:
        problems.absorb(exc)
        raise problems.error() from None
    # What needs the check registry is checked here, still before any request; these keys
    # are the file's, so the error names the file.
    problems.file, problems.prefix = settings.config_file, settings.config_prefix
    checks = all_checks()
    for check_id in settings.get("severity", {}) or {}:
        if check_id not in checks:
            problems.in_file(ConfigError(key_path("severity", check_id), _no_such_check(check_id, checks)))
    # Each family's own validation (a webhook table against its scheme's rules...).
    from pytest_prodready import family

    try:
        family.validate(settings)
    except ConfigError as exc:
        problems.in_file(exc)
    for i, waiver in enumerate(settings.get("waivers", []) or []):
        base_id = waiver["id"].split("[", 1)[0]
        if base_id not in checks:
            problems.in_file(ConfigError(f"waivers[{i}].id", _no_such_check(base_id, checks)))
    problems.raise_if_any()
    return settings


def _no_such_check(check_id: str, checks: Any) -> str:
    import difflib

    close = difflib.get_close_matches(check_id, list(checks), n=1)
    return f"no check {check_id!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def _pytest_base_url(config: pytest.Config) -> str | None:
    """pytest-base-url's --base-url / base_url ini, honoured when no prodready URL is given."""
    try:
        value = config.getoption("base_url")
    except ValueError:
        return None
    return str(value) if value else None


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


# -- the built-in suite as pytest items ---------------------------------------------------
class SuiteCollector(pytest.Collector):
    """The parent of the built-in checks' items, so their node ids read 'prodready::<id>[subject]'."""

    def collect(self) -> Iterator[pytest.Item]:
        return iter(())


class CheckItem(pytest.Item):
    """One built-in check on one subject."""

    def __init__(self, *, spec: CheckSpec, subject: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.subject = subject
        # What reports show of the subject (masked like the node id).
        self.shown_subject = self.name.partition("[")[2].removesuffix("]")
        runtime = self.config.stash[RUNTIME]
        self.severity = runtime.severity_of(spec.id, spec.severity)
        self.add_marker(pytest.mark.prodready(category=spec.category, severity=self.severity))
        self.keywords[spec.category] = True
        self.user_properties += [("prodready_id", spec.id), ("prodready_category", spec.category),
                                 ("prodready_severity", self.severity),
                                 ("prodready_remediation", spec.remediation)]
        self.result: Result | None = None

    def runtest(self) -> None:
        from pytest_prodready.checking import execute
        from pytest_prodready.exceptions import CannotJudge, CheckFailure

        runtime = self.config.stash[RUNTIME]
        if self.spec.mode == "active" and not runtime.settings.active:
            pytest.skip(runtime.settings.active_refused or "active check: needs --prodready-active")
        self.result = result = execute(self.spec, runtime.target(), self.subject)
        if result.outcome == "skipped":
            pytest.skip(result.message)
        if result.outcome in ("failed", "error"):
            waiver = runtime.waiver_for(self.spec.id, self.subject)
            if waiver and waiver["active"]:
                pytest.xfail(f"waived: {waiver['reason']} (until {waiver['expires'] or 'no expiry'})")
            detail = result.detail
            if waiver:
                detail = (f"the waiver for {self.spec.id} expired on {waiver['expires']}; "
                          f"renew it or fix the finding\n{detail}")
            if result.outcome == "error":
                raise CannotJudge(detail)
            raise CheckFailure(result.message, result.exchanges, rendered=detail)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from pytest_prodready.exceptions import CheckFailure, ProdreadyError

        # Our failures carry their own masked, readable explanation; a traceback through
        # the plugin's internals would only hide it.
        if isinstance(excinfo.value, (CheckFailure, ProdreadyError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{SUITE_NAME}::{self.name}"


def build_suite(session: pytest.Session, runtime: Runtime) -> list[pytest.Item]:
    from pytest_prodready.registry import all_checks

    settings = runtime.settings
    masker = runtime.masker()
    parent = SuiteCollector.from_parent(session, name=SUITE_NAME, nodeid=SUITE_NAME)
    items: list[pytest.Item] = []
    names: set[str] = set()
    for spec in all_checks().values():
        if settings.only and spec.category not in settings.only:
            continue
        subjects = spec.subjects_for(settings) if not spec.missing_config(settings) else [""]
        for subject in subjects or [""]:
            # Node ids are printed, cached (.pytest_cache) and written to JUnit: a subject
            # with a key in its query shows masked, and stays the same from run to run (--lf).
            shown = masker.text(subject)
            name = f"{spec.id}[{shown}]" if subject else spec.id
            while name in names:
                name = f"{name}#2" if not name.endswith("]") else f"{name[:-1]}#2]"
            names.add(name)
            # The nodeid is given as a string so pytest parses it like the ids it stores (--lf):
            # pytest >= 9.2 keeps structured ids where "[...]" are the item's params.
            items.append(CheckItem.from_parent(parent, name=name, nodeid=f"{SUITE_NAME}::{name}",
                                               spec=spec, subject=subject))
    return items


def _suite_joins(config: pytest.Config) -> bool:
    """The built-in suite runs when pytest is given no paths (`pytest --prodready`), or when
    asked for (`--prodready-suite`): `pytest --prodready tests/test_smoke.py` runs that file."""
    if config.getoption("prodready_suite"):
        return True
    return bool(config.args_source != pytest.Config.ArgsSource.ARGS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    # tryfirst: our items exist before -k, -m and --lf filter the list.
    enabled = RUNTIME in config.stash
    if enabled and _suite_joins(config):
        suite = build_suite(session, config.stash[RUNTIME])
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
            for p in item.spec.probes_for(runtime.settings, item.subject)]
        try:
            preflight.result()
        except TargetUnreachable as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.INTERRUPTED)
    if distributed:
        return  # under xdist each worker fetches what its own items need
    with contextlib.suppress(BudgetExceeded):  # reported by the first check that meets it
        target.prefetch(probes)


# -- fixtures -----------------------------------------------------------------------------
def _runtime(request: pytest.FixtureRequest) -> Runtime:
    if RUNTIME not in request.config.stash:
        pytest.skip("live check: run with --prodready")
    return request.config.stash[RUNTIME]


@pytest.fixture(scope="session")
def prodready_settings(request: pytest.FixtureRequest) -> Settings:
    """The validated settings of this run (base URL, config values, no secret values shown)."""
    return _runtime(request).settings


@pytest.fixture(scope="session")
def prodready_target(request: pytest.FixtureRequest) -> Target:
    """The target: base URL plus the safe client (timeouts, allowlist, budget, masking)."""
    return _runtime(request).target()


# -- reporting ----------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if RUNTIME not in item.config.stash:
        return report
    from pytest_prodready.exceptions import BudgetExceeded

    if call.excinfo is not None and isinstance(call.excinfo.value, BudgetExceeded):
        item.session.shouldstop = f"prodready: {call.excinfo.value}"
    record = _record(item, call, report)
    if record is not None:
        report.prodready = record  # type: ignore[attr-defined]  # travels through xdist
    _mask_report(report, item.config.stash[RUNTIME].masker())
    return report


def _mask_report(report: pytest.TestReport, masker: Any) -> None:
    """Mask what pytest prints of ANY test in a --prodready run: a user's assertion that
    quotes a token, `-l` locals, captured output and logs (`-rA`), JUnit's copies of them.

    The plugin knows the configured secrets (and those discovered in responses), so it
    masks them wherever pytest would show them. pytest's failure representations are
    dataclasses (traceback entries, locals, the crash line): they are masked in place, so
    the one-line headline (`-r`, JUnit's message) and xdist's transport keep working."""
    report.longrepr = _masked(report.longrepr, masker, set())
    if report.sections:
        report.sections = [(title, masker.text(content)) for title, content in report.sections]


def _masked(value: Any, masker: Any, seen: set[int]) -> Any:
    import dataclasses

    if isinstance(value, str):
        return masker.text(value)
    if isinstance(value, list):
        return [_masked(item, masker, seen) for item in value]
    if isinstance(value, tuple):
        return tuple(_masked(item, masker, seen) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and id(value) not in seen:
        seen.add(id(value))
        for f in dataclasses.fields(value):
            object.__setattr__(value, f.name, _masked(getattr(value, f.name), masker, seen))
    return value


def _record(item: pytest.Item, call: pytest.CallInfo[None],
            report: pytest.TestReport) -> dict[str, Any] | None:
    """The scorecard record of one check, from the phase that decided its outcome."""
    marker = item.get_closest_marker("prodready")
    if marker is None:
        return None
    if call.when == "setup" and report.passed:
        return None
    if call.when == "teardown" and not report.failed:
        return None
    runtime = item.config.stash[RUNTIME]
    masker = runtime.target().masker
    if isinstance(item, CheckItem):
        check_id, category, severity, remediation = (item.spec.id, item.spec.category,
                                                     item.severity, item.spec.remediation)
    else:
        check_id = item.nodeid
        category = str(marker.kwargs.get("category", "custom"))
        severity = str(marker.kwargs.get("severity", "high")).lower()
        if severity not in SEVERITY_CHOICES:
            severity = "high"
        remediation = str(marker.kwargs.get("fix", marker.kwargs.get("remediation", "")))
    result: Result | None = getattr(item, "result", None)
    outcome: str = report.outcome
    waiver = None
    if hasattr(report, "wasxfail") and report.skipped:
        # An xfail: a config waiver of a built-in check, or a team's own xfail marker on a
        # prodready test (an accepted risk too, with its reason and no expiry). An xpass is
        # a plain pass.
        outcome = "waived"
        waiver = runtime.waiver_for(check_id, getattr(item, "subject", "")) or {
            "reason": str(report.wasxfail) or "expected to fail (xfail)", "expires": None,
            "active": True}
    elif ((result is not None and result.outcome == "error")
          or (report.failed and call.when != "call")
          or (report.failed and _cannot_judge(call))):
        # Could not look (target error, rate limited, budget spent): never a false fail.
        outcome = "error"
    message = _message(report, result, masker, call)
    evidence = result.evidence() if result is not None else [ex.to_dict() for ex in _exchanges_of(call)]
    return {
        "id": check_id, "nodeid": item.nodeid, "category": category, "severity": severity,
        "outcome": outcome, "message": message, "remediation": remediation,
        "subject": getattr(item, "shown_subject", ""), "waiver": waiver,
        "duration_ms": round(report.duration * 1000, 1),
        "evidence": evidence,
    }


def shorten(text: str, limit: int = 500) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis."""
    text = str(text)
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _cannot_judge(call: pytest.CallInfo[None]) -> bool:
    from pytest_prodready.exceptions import CheckFailure, ProdreadyError

    exc = call.excinfo.value if call.excinfo is not None else None
    return isinstance(exc, ProdreadyError) and not isinstance(exc, CheckFailure)


def _message(report: pytest.TestReport, result: Result | None, masker: Any,
             call: pytest.CallInfo[None]) -> str:
    from pytest_prodready.exceptions import CheckFailure, ProdreadyError

    if result is not None and (result.outcome != "failed" or report.failed):
        return str(result.message)
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, CheckFailure):
        return str(masker.text(exc.message))
    if isinstance(exc, ProdreadyError):
        return shorten(masker.text(str(exc).split("\n", 1)[0]))
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(masker.text(str(report.longrepr[2]).removeprefix("Skipped: ")))
    if hasattr(report, "wasxfail"):
        return str(masker.text(str(report.wasxfail)))
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
        return shorten(masker.text(text.split("\n", 1)[0]))
    return "passed"


def _exchanges_of(call: pytest.CallInfo[None]) -> tuple[Any, ...]:
    from pytest_prodready.exceptions import CheckFailure

    if call.excinfo is not None and isinstance(call.excinfo.value, CheckFailure):
        return call.excinfo.value.exchanges
    return ()


class ScoreboardPlugin:
    """Controller-side: gathers records (also from xdist workers), prints and writes the scorecard."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from pytest_prodready.report.scorecard import Scorecard

        self.config = config
        self.card: Scorecard = Scorecard(target=settings.masker().url(settings.base_url),
                                         fail_on=str(settings.get("fail_on")), profile=settings.profile)
        self.records: dict[str, dict[str, Any]] = {}
        self.other_failures = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "prodready", None)
        if record is not None:
            self.records[report.nodeid] = record
        elif report.failed:
            self.other_failures += 1

    def _card(self) -> Scorecard:
        self.card.records = list(self.records.values())
        return self.card

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from pytest_prodready.report.render import write, write_step_summary

        card = self._card()
        if not card.records:
            return
        for path in self.config.getoption("prodready_report") or []:
            write(card, Path(path))
        write_step_summary(card)  # GitHub Actions' job summary, when $GITHUB_STEP_SUMMARY is set
        gated_out = [r for r in card.records if r["outcome"] in ("failed", "error") and not card.gating(r)]
        # Failures below the gate still show; only they failing must not fail the run.
        if (session.exitstatus == pytest.ExitCode.TESTS_FAILED and gated_out
                and not card.blockers and not self.other_failures):
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_prodready.report.render import terminal

        card = self._card()
        if not card.records:
            return
        terminalreporter.section("prodready scorecard", bold=True,
                                 red=card.verdict != "READY", green=card.verdict == "READY")
        for line in terminal(card):
            terminalreporter.write_line(line)
        for path in self.config.getoption("prodready_report") or []:
            terminalreporter.write_line(f"report written: {path}")


class InterruptPlugin:
    """Ctrl-C: cut the in-flight exchanges now instead of waiting for their deadlines."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.runtime.cancel()


def pytest_unconfigure(config: pytest.Config) -> None:
    if RUNTIME in config.stash:
        config.stash[RUNTIME].close()
    if RUN_FOLDER in config.stash:
        import shutil

        shutil.rmtree(config.stash[RUN_FOLDER], ignore_errors=True)
