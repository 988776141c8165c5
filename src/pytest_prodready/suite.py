"""The built-in suite as pytest items: one item per check and subject, under 'prodready::'.

An item runs its check (checking.execute), has the verdict decided once (records.decide),
and maps that Record to a pytest outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_prodready.stash import RUNTIME, SUITE_NAME

if TYPE_CHECKING:
    from pytest_prodready.checking import CheckSpec, Result
    from pytest_prodready.records import Record
    from pytest_prodready.runtime import Runtime


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
        self.severity = runtime.policy.severity_of(spec.id, spec.severity)
        self.add_marker(pytest.mark.prodready(category=spec.category, severity=self.severity))
        self.keywords[spec.category] = True
        self.user_properties += [("prodready_id", spec.id), ("prodready_category", spec.category),
                                 ("prodready_severity", self.severity),
                                 ("prodready_remediation", spec.remediation)]
        self.result: Result | None = None
        self.record: Record | None = None

    def planned_probes(self) -> list[Any]:
        """This item's probes, as the run planned them once (Target.planned)."""
        runtime = self.config.stash[RUNTIME]
        target, settings = runtime.target(), runtime.settings
        plan = target.planned(self.spec.id, self.subject,
                              lambda: self.spec.named_probes(settings, self.subject))
        return list(plan.values())

    def runtest(self) -> None:
        from pytest_prodready.checking import execute
        from pytest_prodready.exceptions import CannotJudge, CheckFailure
        from pytest_prodready.records import decide

        runtime = self.config.stash[RUNTIME]
        if self.spec.mode == "active" and not runtime.settings.active:
            pytest.skip(runtime.settings.active_refused or "active check: needs --prodready-active")
        self.result = result = execute(self.spec, runtime.target(), self.subject)
        # The verdict, decided once; this method only maps it to a pytest outcome.
        self.record = record = decide(self.spec, result, runtime.policy, nodeid=self.nodeid,
                                      subject=self.subject, shown_subject=self.shown_subject)
        if record.outcome == "skipped":
            pytest.skip(record.message)
        if record.outcome == "waived" and record.waiver is not None:
            pytest.xfail(f"waived: {record.waiver.reason} (until {record.waiver.expires or 'no expiry'})")
        if record.outcome == "error":
            raise CannotJudge(record.detail)
        if record.outcome == "failed":
            raise CheckFailure(record.message, result.exchanges, rendered=record.detail)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from pytest_prodready.exceptions import CheckFailure, ProdreadyError

        # Our failures carry their own masked, readable explanation; a traceback through
        # the plugin's internals would only hide it.
        if isinstance(excinfo.value, CheckFailure):
            return self._once_per_run(str(excinfo.value), excinfo.value.exchanges)
        if isinstance(excinfo.value, ProdreadyError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def _once_per_run(self, text: str, exchanges: Any) -> str:
        """The failure text with each exchange already shown by an earlier failure of this run
        replaced by a one-line reference: one page probe feeds a dozen header checks, and its
        13 KB excerpt printed under each of them buried the messages. Reports keep it all."""
        shown: dict[str, str] = self.config.stash[RUNTIME].shown_exchanges
        for exchange in exchanges:
            rendered = exchange.render()
            if rendered not in text:
                continue
            first = shown.setdefault(rendered, self.nodeid)
            if first != self.nodeid:
                text = text.replace(rendered, f"  ({exchange.request_line} -> {exchange.status_line}: "
                                              f"the same exchange as under {first} above)", 1)
        return text

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # The headline of a failure section. Not the tail of the node id: pytest would then
        # print `pytest -v` lines with the id's dot as '::' (prodready::auth::required),
        # which is not the id -k, --lf and the reports use (prodready::auth.required).
        return self.path, None, f"{SUITE_NAME} {self.name}"


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


def suite_joins(config: pytest.Config) -> bool:
    """The built-in suite runs when pytest is given no paths (`pytest --prodready`), or when
    asked for (`--prodready-suite`): `pytest --prodready tests/test_smoke.py` runs that file."""
    if config.getoption("prodready_suite"):
        return True
    return bool(config.args_source != pytest.Config.ArgsSource.ARGS)
