"""The one registry of built-in checks: id, category, severity, mode, needs, remediation.

The built-in suite, `--prodready-only`, the docs catalogue and the scorecard weights all
read it. A check family is one module in `checks/` that registers its checks with
`@check(...)`, plus its name in `checks.FAMILIES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pytest_prodready.severity import SEVERITY_ORDER, SEVERITY_WEIGHT, Severity

__all__ = ["SEVERITY_ORDER", "SEVERITY_WEIGHT", "CheckSpec", "Severity", "all_checks", "check", "get_check"]

if TYPE_CHECKING:
    from pytest_prodready.checking import Context
    from pytest_prodready.config import Settings
    from pytest_prodready.target import Probe

Mode = Literal["passive", "active"]

Subjects = Callable[["Settings"], Sequence[str]]
Probes = Callable[["Settings", str], Sequence["Probe"]]
Judge = Callable[["Context"], None]


@dataclass(frozen=True)
class CheckSpec:
    """A built-in check and everything the suite, the docs and the scorecard know of it."""

    id: str
    title: str
    severity: Severity
    mode: Mode
    remediation: str
    judge: Judge
    needs: tuple[str, ...] = ()
    subjects: Subjects | None = None
    probes: Probes | None = None

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]

    def subjects_for(self, settings: Settings) -> list[str]:
        return list(dict.fromkeys(self.subjects(settings))) if self.subjects else [""]

    def probes_for(self, settings: Settings, subject: str) -> list[Probe]:
        return list(self.probes(settings, subject)) if self.probes else []

    def missing_config(self, settings: Settings) -> list[str]:
        return [key for key in self.needs if not settings.get(key)]


REGISTRY: dict[str, CheckSpec] = {}


def _origin(judge: Judge) -> tuple[str, str]:
    return getattr(judge, "__module__", ""), getattr(judge, "__qualname__", "")


def check(
    id: str,
    *,
    title: str,
    severity: Severity,
    remediation: str,
    mode: Mode = "passive",
    needs: Sequence[str] = (),
    subjects: Subjects | None = None,
    probes: Probes | None = None,
) -> Callable[[Judge], Judge]:
    """Register a check. The decorated function judges one subject from a Context."""

    def register(judge: Judge) -> Judge:
        known = REGISTRY.get(id)
        # The same function registering again is a re-import of its family (pytester, importlib
        # reload); a different function taking a known id is a real clash.
        if known is not None and _origin(known.judge) != _origin(judge):
            raise ValueError(f"check id {id!r} is registered twice")
        if "." not in id:
            raise ValueError(f"check id {id!r} must be 'category.name'")
        REGISTRY[id] = CheckSpec(id=id, title=title, severity=severity, mode=mode,
                                 remediation=remediation, judge=judge, needs=tuple(needs),
                                 subjects=subjects, probes=probes)
        return judge

    return register


def all_checks() -> dict[str, CheckSpec]:
    """Every registered check, loading the family modules on first use."""
    from pytest_prodready.checks import FAMILIES

    for family in FAMILIES:
        importlib.import_module(f"pytest_prodready.checks.{family}")
    return REGISTRY


def get_check(check_id: str) -> CheckSpec:
    checks = all_checks()
    if check_id not in checks:
        import difflib

        close = difflib.get_close_matches(check_id, list(checks), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"no check {check_id!r}{hint}")
    return checks[check_id]


def categories() -> list[str]:
    return sorted({spec.category for spec in all_checks().values()})
