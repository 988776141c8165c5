"""Hooks pytest-prodready adds (pytest_addhooks): a conftest or plugin observes each record,
the finished scorecard, and may adjust the planned built-in suite."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest


def pytest_prodready_modify_suite(items: list[pytest.Item], config: pytest.Config) -> None:
    """Called with the built-in suite's items before they join the session's; remove or
    reorder items in place (e.g. drop a check your organisation does not use)."""


def pytest_prodready_record(record: dict[str, Any], config: pytest.Config) -> None:
    """Called on the controller (xdist included) for each prodready test's record: its id,
    nodeid, category, severity, outcome, message, remediation, subject, waiver, evidence
    (masked). Records are read-only."""


def pytest_prodready_scorecard(card: Any, config: pytest.Config) -> None:
    """Called once with the finished Scorecard (report.scorecard.Scorecard), before the
    reports are written: e.g. to post it to a dashboard."""
