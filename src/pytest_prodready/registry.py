"""Where the checks are: every family's registered checks, looked up by id or category.

A check is defined in checking.py (CheckSpec, the @check decorator, Context, Result,
execute); a family is declared in family.py. This module loads the families and answers
"which checks exist": the built-in suite, `--prodready-only`, the docs catalogue and the
scorecard weights all read it.
"""

from __future__ import annotations

from pytest_prodready.checking import REGISTRY, CheckSpec, check, run_check
from pytest_prodready.severity import SEVERITY_ORDER, SEVERITY_WEIGHT, Severity

__all__ = ["SEVERITY_ORDER", "SEVERITY_WEIGHT", "CheckSpec", "Severity", "all_checks", "categories",
           "check", "get_check", "run_check"]


def all_checks() -> dict[str, CheckSpec]:
    """Every registered check, loading the families (built-in and installed) on first use."""
    from pytest_prodready.family import families

    families()
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
