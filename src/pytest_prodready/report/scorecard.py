"""The scorecard: per-category scores, the overall score and grade, the verdict, the blockers.

Built from check records (plain dicts that travel in pytest reports, so xdist workers'
results aggregate on the controller exactly like a serial run's). docs/scorecard.md
explains every rule here with worked examples.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pytest_prodready.masking import strip_control
from pytest_prodready.severity import SEVERITY_ORDER, SEVERITY_WEIGHT

OUTCOMES = ("passed", "failed", "error", "skipped", "waived")
# Outcomes that weigh in the score: what was looked at. A check that could not look
# ("error") weighs like a failure: a gate that could not see is not a pass.
JUDGED = ("passed", "failed", "error")
# Outcomes that are findings (blockers at or above the fail-on gate).
FINDINGS = ("failed", "error")
GRADES = ((100, "A+"), (90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F"))
GRADE_ORDER = tuple(letter for _, letter in GRADES)  # best first
# The best grade a target may have with a failure of this severity, whatever its score
# (MDN's Observatory caps its grade the same way). Low failures cap nothing: they already
# keep the score under 100, so the grade under A+. "error" records cap nothing either:
# what could not be judged is not known to be bad (it blocks the verdict instead).
GRADE_CAPS: dict[str, str] = {"critical": "F", "high": "C", "medium": "B"}
SCHEMA_VERSION = 1


def grade_for(score: int | None) -> str:
    if score is None:
        return "-"
    return next(letter for floor, letter in GRADES if score >= floor)


def worse_grade(one: str, other: str) -> str:
    """The worse of two letter grades ('-', no grade, yields to any letter)."""
    if one == "-":
        return other
    if other == "-":
        return one
    return max(one, other, key=GRADE_ORDER.index)


def weighted_score(records: list[dict[str, Any]]) -> int | None:
    """Weight passed over weight judged (passed, failed, error), in percent; None when
    nothing was judged.

    Rounded to the nearest integer, but 100 only when everything judged passed and 0 only
    when nothing did: one low failure among 100 critical passes is 99.5%, which rounding
    alone would show as 100 (an A+ with a failure)."""
    judged = [r for r in records if r["outcome"] in JUDGED]
    total = sum(SEVERITY_WEIGHT[r["severity"]] for r in judged)
    if not total:
        return None
    passed = sum(SEVERITY_WEIGHT[r["severity"]] for r in judged if r["outcome"] == "passed")
    return min(max(round(100 * passed / total), 1 if passed else 0), 99 if passed < total else 100)


def grade_cap(records: list[dict[str, Any]], raw_grade: str) -> dict[str, Any] | None:
    """The cap that lowered the grade, or None when no failure made the grade worse.

    The worst failing severity decides; `failures` counts the failed records at that
    severity and `checks` names their distinct checks (one check failing on three paths is
    three failures of one check: "capped at C by 3 high failures (1 check)")."""
    failing = [r for r in records if r["outcome"] == "failed" and r["severity"] in GRADE_CAPS]
    if not failing:
        return None
    worst = max((r["severity"] for r in failing), key=SEVERITY_ORDER.__getitem__)
    cap = GRADE_CAPS[worst]
    if worse_grade(raw_grade, cap) == raw_grade:
        return None  # the score already puts the grade at or below the cap
    worst_records = [r for r in failing if r["severity"] == worst]
    checks = sorted({r["id"] for r in worst_records})
    count = len(worst_records)
    reason = f"capped at {cap} by {count} {worst} failure{'s' if count != 1 else ''}"
    if len(checks) != count:
        reason += f" ({len(checks)} check{'s' if len(checks) != 1 else ''})"
    return {"grade": cap, "severity": worst, "failures": count, "checks": checks, "reason": reason}


def _group_order(group: dict[str, Any]) -> tuple[int, int, str]:
    return (-SEVERITY_ORDER[group["severity"]], FINDINGS.index(group["outcome"]), group["id"])


def group_findings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per check id and outcome: its subjects, its first message, its fix.

    A reflected Origin fails three CORS checks on every configured path: six records, three
    groups, one per check, each listing its paths. Failures and "cannot judge" errors of
    one check are separate groups (a fault found, and a place that could not be looked at,
    are not one root cause). Order: severity (worst first), failures before errors, id."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["nodeid"]):
        if record["outcome"] in FINDINGS:
            by_key[(record["id"], record["outcome"])].append(record)
    groups = []
    for (check_id, outcome), members in by_key.items():
        first = members[0]
        groups.append({
            "id": check_id,
            "category": first["category"],
            "severity": max((m["severity"] for m in members), key=SEVERITY_ORDER.__getitem__),
            "outcome": outcome,
            "count": len(members),
            "subjects": list(dict.fromkeys(m.get("subject") or "" for m in members if m.get("subject"))),
            "nodeids": [m["nodeid"] for m in members],
            "message": first.get("message") or "",
            "remediation": first.get("remediation") or "",
        })
    return sorted(groups, key=_group_order)


def clean(value: Any) -> Any:
    """A copy of a JSON-ready value with every string (and key) through strip_control."""
    if isinstance(value, str):
        return strip_control(value)
    if isinstance(value, dict):
        return {strip_control(k) if isinstance(k, str) else k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


@dataclass
class Scorecard:
    target: str
    fail_on: str = "low"
    records: list[dict[str, Any]] = field(default_factory=list)
    profile: str | None = None
    # Where the run's config came from (SARIF anchors its results there); not in the JSON.
    config_file: str | None = None
    config_prefix: str = ""
    # The root of the team's docs site (config `docs_url`): reports link checks there.
    docs_url: str | None = None

    def docs_link(self, check_id: str) -> str | None:
        """The check's entry on the team's docs site, when `docs_url` is set."""
        from pytest_prodready.catalogue import docs_link

        return docs_link(self.docs_url, check_id)

    def sorted_records(self) -> list[dict[str, Any]]:
        return sorted(self.records, key=lambda r: r["nodeid"])

    def gating(self, record: dict[str, Any]) -> bool:
        """True when this record's severity is at or above the fail-on gate."""
        return SEVERITY_ORDER[record["severity"]] >= SEVERITY_ORDER[self.fail_on]

    # -- the verdict ----------------------------------------------------------------------
    @property
    def blockers(self) -> list[dict[str, Any]]:
        """Every record that fails the run: failed or error, at or above the gate."""
        bad = [r for r in self.sorted_records() if r["outcome"] in FINDINGS and self.gating(r)]
        return sorted(bad, key=lambda r: -SEVERITY_ORDER[r["severity"]])

    @property
    def blocker_groups(self) -> list[dict[str, Any]]:
        """The blockers, one entry per check (and outcome) with the subjects it failed on."""
        return group_findings(self.blockers)

    @property
    def below_gate(self) -> list[dict[str, Any]]:
        return [r for r in self.sorted_records()
                if r["outcome"] in FINDINGS and not self.gating(r)]

    @property
    def below_gate_groups(self) -> list[dict[str, Any]]:
        return group_findings(self.below_gate)

    @property
    def waived(self) -> list[dict[str, Any]]:
        return [r for r in self.sorted_records() if r["outcome"] == "waived"]

    @property
    def verdict(self) -> str:
        return "NOT READY" if self.blockers else "READY"

    # -- score and grade ------------------------------------------------------------------
    @property
    def score(self) -> int | None:
        return weighted_score(self.records)

    @property
    def raw_grade(self) -> str:
        """The grade the score alone gives."""
        return grade_for(self.score)

    @property
    def grade_cap(self) -> dict[str, Any] | None:
        """What lowered the grade below the score's ({'grade', 'severity', 'failures',
        'checks', 'reason'}), or None."""
        return grade_cap(self.records, self.raw_grade)

    @property
    def grade(self) -> str:
        """The grade shown: the score's, capped by the worst failing severity."""
        cap = self.grade_cap
        return cap["grade"] if cap else self.raw_grade

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
        data = {
            "schema_version": SCHEMA_VERSION,
            "target": self.target,
            "profile": self.profile,
            "fail_on": self.fail_on,
            "verdict": self.verdict,
            "score": self.score,
            "grade": self.grade,
            "raw_grade": self.raw_grade,
            "grade_cap": self.grade_cap,
            "categories": self.categories(),
            "blockers": [r["nodeid"] for r in self.blockers],
            "blocker_groups": self.blocker_groups,
            "checks": self.sorted_records(),
        }
        return dict(clean(data))
