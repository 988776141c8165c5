"""Severity: the one definition used by the registry, the config, the options and the scorecard.

Kept free of imports so the pytest entry point can validate `--prodready-fail-on` for free.
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
# Higher is worse: the fail-on gate and the grade caps compare these.
SEVERITY_ORDER: dict[str, int] = {"critical": 4, "high": 3, "medium": 2, "low": 1}
# What a check weighs in the score (docs/scorecard.md).
SEVERITY_WEIGHT: dict[str, int] = {"critical": 10, "high": 5, "medium": 2, "low": 1}
DEFAULT_SEVERITY: Severity = "high"


def is_severity(value: object) -> bool:
    return isinstance(value, str) and value in SEVERITIES
