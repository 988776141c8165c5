"""The scorecard: per-category scores, the overall score and grade, the verdict, the blockers.

Built from check records (plain dicts that travel in pytest reports, so xdist workers'
results aggregate on the controller exactly like a serial run's).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pytest_prodready.registry import SEVERITY_ORDER, SEVERITY_WEIGHT

OUTCOMES = ("passed", "failed", "error", "skipped", "waived")
GRADES = ((100, "A+"), (90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F"))
SCHEMA_VERSION = 1


def grade_for(score: int | None) -> str:
    if score is None:
        return "-"
    return next(letter for floor, letter in GRADES if score >= floor)


def weighted_score(records: list[dict[str, Any]]) -> int | None:
    """Weight passed over weight judged (passed, failed, error); None when nothing was judged."""
    judged = [r for r in records if r["outcome"] in ("passed", "failed", "error")]
    total = sum(SEVERITY_WEIGHT[r["severity"]] for r in judged)
    if not total:
        return None
    passed = sum(SEVERITY_WEIGHT[r["severity"]] for r in judged if r["outcome"] == "passed")
    return round(100 * passed / total)


@dataclass
class Scorecard:
    target: str
    fail_on: str = "low"
    records: list[dict[str, Any]] = field(default_factory=list)
    profile: str | None = None

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def sorted_records(self) -> list[dict[str, Any]]:
        return sorted(self.records, key=lambda r: r["nodeid"])

    def gating(self, record: dict[str, Any]) -> bool:
        """True when this record's severity is at or above the fail-on gate."""
        return SEVERITY_ORDER[record["severity"]] >= SEVERITY_ORDER[self.fail_on]

    @property
    def blockers(self) -> list[dict[str, Any]]:
        bad = [r for r in self.sorted_records() if r["outcome"] in ("failed", "error") and self.gating(r)]
        return sorted(bad, key=lambda r: -SEVERITY_ORDER[r["severity"]])

    @property
    def below_gate(self) -> list[dict[str, Any]]:
        return [r for r in self.sorted_records()
                if r["outcome"] in ("failed", "error") and not self.gating(r)]

    @property
    def verdict(self) -> str:
        return "NOT READY" if self.blockers else "READY"

    @property
    def score(self) -> int | None:
        return weighted_score(self.records)

    @property
    def grade(self) -> str:
        return grade_for(self.score)

    def categories(self) -> list[dict[str, Any]]:
        by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in self.records:
            by_name[record["category"]].append(record)
        rows = []
        for name in sorted(by_name):
            records = by_name[name]
            counts = {o: sum(1 for r in records if r["outcome"] == o) for o in OUTCOMES}
            rows.append({"name": name, **counts, "score": weighted_score(records)})
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "target": self.target,
            "profile": self.profile,
            "fail_on": self.fail_on,
            "verdict": self.verdict,
            "score": self.score,
            "grade": self.grade,
            "categories": self.categories(),
            "blockers": [r["nodeid"] for r in self.blockers],
            "checks": self.sorted_records(),
        }
