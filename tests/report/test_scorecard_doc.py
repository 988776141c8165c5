"""docs/scorecard.md's worked examples are what the scorecard computes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_prodready.report.render import terminal
from tests.report.records import card_of, rec

DOC = (Path(__file__).parents[2] / "docs" / "scorecard.md").read_text(encoding="utf-8")


def passes(critical: int = 0, high: int = 0, medium: int = 0) -> list[dict[str, Any]]:
    counts = {"critical": critical, "high": high, "medium": medium}
    return [rec(f"{severity}.p{i}", severity) for severity, n in counts.items() for i in range(n)]


WAIVER = {"reason": "tracked in SEC-7", "expires": "2999-01-01", "active": True}
# (records, fail_on) -> (score, raw grade, grade, cap reason, verdict, blocking records, blockers)
EXAMPLES: dict[str, tuple[list[dict[str, Any]], str, tuple[Any, ...]]] = {
    "1. Django": (passes(10, 10, 1) + [rec(c, "high", "failed") for c in
                                       ("errors.no_stack_traces", "headers.hsts", "cookies.flags")],
                  "low", (91, "A", "C", "capped at C by 3 high failures", "NOT READY", 3, 3)),
    "1. Django, two paths": (passes(10, 10, 1) + [rec("errors.no_stack_traces", "high", "failed", p)
                                                  for p in ("/", "/api/chat")]
                             + [rec(c, "high", "failed") for c in ("headers.hsts", "cookies.flags")],
                             "low", (88, "B", "C", "capped at C by 4 high failures (3 checks)",
                                     "NOT READY", 4, 3)),
    "2. Reflected origin": ([rec(c, s, "failed", p) for c, s in (
        ("cors.unknown_origin_rejected", "critical"), ("cors.no_wildcard_with_credentials", "critical"),
        ("cors.null_origin_rejected", "high")) for p in ("/api/agents", "/api/health")],
        "low", (0, "F", "F", None, "NOT READY", 6, 3)),
    "3. low, gate low": ([*passes(high=40), rec("headers.no_version_disclosure", "low", "failed")],
                         "low", (99, "A", "A", None, "NOT READY", 1, 1)),
    "3. low, gate medium": ([*passes(high=40), rec("headers.no_version_disclosure", "low", "failed")],
                            "medium", (99, "A", "A", None, "READY", 0, 0)),
    "4. cannot judge": ([*passes(20), rec("tls.cert_valid", "critical", "error")],
                        "low", (95, "A", "A", None, "NOT READY", 1, 1)),
    "5. critical gate": ([*passes(20), rec("headers.hsts", "high", "failed")],
                         "critical", (98, "A", "C", "capped at C by 1 high failure", "READY", 0, 0)),
    "6. medium": ([*passes(20), rec("headers.csp", "medium", "failed")],
                  "low", (99, "A", "B", "capped at B by 1 medium failure", "NOT READY", 1, 1)),
    "7. waived": ([*passes(20), rec("headers.hsts", "high", "waived", waiver=WAIVER)],
                  "low", (100, "A+", "A+", None, "READY", 0, 0)),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_worked_example(name: str) -> None:
    records, fail_on, expected = EXAMPLES[name]
    card = card_of(records, fail_on=fail_on)
    cap = card.grade_cap
    assert (card.score, card.raw_grade, card.grade, cap["reason"] if cap else None, card.verdict,
            len(card.blockers), len(card.blocker_groups)) == expected
    if cap:
        assert cap["reason"] in DOC, f"the doc does not show {cap['reason']!r}"
    if name not in ("1. Django, two paths", "2. Reflected origin"):  # the doc gives their grade only
        assert f"**{card.score}**" in DOC


def test_the_terminal_sample_is_the_terminal_format() -> None:
    records, fail_on, _ = EXAMPLES["1. Django"]
    headline = terminal(card_of(records, fail_on=fail_on))[1]
    assert headline in DOC
    assert "\nblockers (3):\n" in DOC
    assert "\ncategory     passed failed errors skipped waived score\n" in DOC
