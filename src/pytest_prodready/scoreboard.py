"""The pytest layer's side of the verdicts: a Record for every prodready test (built-in
items carry theirs; a team's own marked tests get one from their report), reports masked,
and the controller-side scoreboard that gathers records (xdist included) into the scorecard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_prodready.severity import SEVERITIES
from pytest_prodready.stash import RUNTIME

if TYPE_CHECKING:
    from pytest_prodready.checking import Result
    from pytest_prodready.config import Settings
    from pytest_prodready.records import Record
    from pytest_prodready.report.scorecard import Scorecard
    from pytest_prodready.runtime import Runtime


def mask_report(report: pytest.TestReport, masker: Any) -> None:
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


def record_of(item: pytest.Item, call: pytest.CallInfo[None],
              report: pytest.TestReport) -> Record | None:
    """The Record of one prodready test, from the phase that decided its outcome.

    A built-in item decided its own (CheckItem.record); a team's own marked test, or a
    built-in item that never got to decide (a setup error, the budget spent), gets one from
    its pytest report: an xfail is 'waived', a plugin error 'error', never a false fail.
    """
    from dataclasses import replace

    from pytest_prodready.records import Record, Waiver
    from pytest_prodready.suite import CheckItem

    marker = item.get_closest_marker("prodready")
    if marker is None:
        return None
    if call.when == "setup" and report.passed:
        return None
    if call.when == "teardown" and not report.failed:
        return None
    duration = round(report.duration * 1000, 1)
    decided: Record | None = getattr(item, "record", None)
    if decided is not None and call.when == "call":
        return replace(decided, duration_ms=duration)
    runtime = item.config.stash[RUNTIME]
    masker = runtime.target().masker
    severity: str
    if isinstance(item, CheckItem):
        check_id, category, severity, remediation = (item.spec.id, item.spec.category,
                                                     item.severity, item.spec.remediation)
    else:
        check_id = item.nodeid
        category = str(marker.kwargs.get("category", "custom"))
        severity = str(marker.kwargs.get("severity", "high")).lower()
        if severity not in SEVERITIES:
            severity = "high"
        remediation = str(marker.kwargs.get("fix", marker.kwargs.get("remediation", "")))
    result: Result | None = getattr(item, "result", None)
    outcome: str = report.outcome
    waiver = None
    if hasattr(report, "wasxfail") and report.skipped:
        # A team's own xfail marker on a prodready test: an accepted risk too, with its
        # reason and no expiry. An xpass is a plain pass.
        outcome = "waived"
        waiver = runtime.policy.waiver_for(check_id, getattr(item, "subject", "")) or Waiver(
            str(report.wasxfail) or "expected to fail (xfail)", None, True)
    elif ((result is not None and result.outcome == "error")
          or (report.failed and call.when != "call")
          or (report.failed and _cannot_judge(call))):
        # Could not look (target error, rate limited, budget spent): never a false fail.
        outcome = "error"
    message = _message(report, result, masker, call)
    evidence = result.evidence() if result is not None else [ex.to_dict() for ex in _exchanges_of(call)]
    return Record(id=check_id, nodeid=item.nodeid, category=category,
                  severity=severity,  # type: ignore[arg-type]  # checked against SEVERITIES above
                  outcome=outcome,  # type: ignore[arg-type]  # one of pytest's, or ours above
                  message=message, remediation=remediation,
                  subject=getattr(item, "shown_subject", ""), waiver=waiver, duration_ms=duration,
                  evidence=tuple(evidence))


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
                                         fail_on=str(settings.get("fail_on")), profile=settings.profile,
                                         config_file=str(settings.config_file) if settings.config_file
                                         else None, config_prefix=settings.config_prefix,
                                         docs_url=settings.get("docs_url"))
        self.records: dict[str, dict[str, Any]] = {}
        self.other_failures = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "prodready", None)
        if record is not None:
            self.records[report.nodeid] = record
            self.config.hook.pytest_prodready_record(record=record, config=self.config)
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
        self.config.hook.pytest_prodready_scorecard(card=card, config=self.config)
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
