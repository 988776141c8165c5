"""The scorecard's arithmetic: weights, grades, caps, the verdict, grouped blockers, the JSON."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_prodready.registry import SEVERITY_WEIGHT
from pytest_prodready.report.scorecard import (
    GRADE_CAPS,
    GRADES,
    Scorecard,
    grade_for,
    group_findings,
    weighted_score,
    worse_grade,
)
from tests.report.records import card_of, exchange, rec, tls_fact, validated


def many(prefix: str, n: int, severity: str, outcome: str = "passed") -> list[dict[str, Any]]:
    return [rec(f"{prefix}.c{i}", severity, outcome) for i in range(n)]


# -- weights and score ----------------------------------------------------------------------
def test_weights_are_the_documented_ones() -> None:
    assert SEVERITY_WEIGHT == {"critical": 10, "high": 5, "medium": 2, "low": 1}


@pytest.mark.parametrize(("records", "expected"), [
    ([], None),
    ([rec("a.x", outcome="skipped"), rec("a.y", outcome="waived")], None),  # nothing judged
    ([rec("a.x", "critical"), rec("a.y", "low", "failed")], round(100 * 10 / 11)),  # 91
    ([rec("a.x", "critical", "failed"), rec("a.y", "low")], round(100 * 1 / 11)),  # 9
    ([rec("a.x", "high"), rec("a.y", "high", "error")], 50),  # an error weighs like a failure
    ([rec("a.x", "medium"), rec("a.y", "medium", "skipped"), rec("a.z", "critical", "waived")], 100),
    ([rec("a.x", "high"), rec("a.y", "medium", "failed"), rec("a.z", "low", "failed")], round(100 * 5 / 8)),
])
def test_score_is_weight_passed_over_weight_judged(records: list[dict[str, Any]],
                                                   expected: int | None) -> None:
    assert weighted_score(records) == expected
    assert card_of(records).score == expected


def test_category_scores_and_counts() -> None:
    card = card_of([rec("cors.a", "critical"), rec("cors.b", "high", "failed"),
                    rec("cors.c", "low", "skipped"), rec("tls.a", "high", "error"),
                    rec("tls.b", "low", "waived")])
    assert card.categories() == [
        {"name": "cors", "passed": 1, "failed": 1, "error": 0, "skipped": 1, "waived": 0,
         "score": round(100 * 10 / 15)},
        {"name": "tls", "passed": 0, "failed": 0, "error": 1, "skipped": 0, "waived": 1, "score": 0},
    ]


# -- grades -------------------------------------------------------------------------------
@pytest.mark.parametrize(("score", "grade"), [
    (None, "-"), (100, "A+"), (99, "A"), (90, "A"), (89, "B"), (80, "B"), (79, "C"), (70, "C"),
    (69, "D"), (60, "D"), (59, "F"), (0, "F"),
])
def test_grade_thresholds(score: int | None, grade: str) -> None:
    assert grade_for(score) == grade


def test_grade_table_is_the_documented_one() -> None:
    assert GRADES == ((100, "A+"), (90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F"))
    assert GRADE_CAPS == {"critical": "F", "high": "C", "medium": "B"}


@pytest.mark.parametrize(("one", "other", "worse"), [
    ("A+", "C", "C"), ("F", "B", "F"), ("B", "B", "B"), ("-", "C", "C"), ("A", "-", "A")])
def test_worse_grade(one: str, other: str, worse: str) -> None:
    assert worse_grade(one, other) == worse


def test_issue_9_django_debug_91_is_capped_at_c_by_its_three_high_failures() -> None:
    """The report of issue 9: 91/100 (A) beside NOT READY with three HIGH blockers."""
    passing = many("headers", 10, "critical") + many("cors", 10, "high") + many("errors", 1, "medium")
    failing = [rec(check_id, "high", "failed")
               for check_id in ("errors.no_stack_traces", "headers.hsts", "cookies.flags")]
    card = card_of(passing + failing)
    assert card.score == 91  # 152 / 167
    assert card.raw_grade == "A"
    assert card.grade == "C"
    assert card.verdict == "NOT READY"
    assert card.grade_cap == {
        "grade": "C", "severity": "high", "failures": 3,
        "checks": ["cookies.flags", "errors.no_stack_traces", "headers.hsts"],
        "reason": "capped at C by 3 high failures"}
    report = validated(card)
    assert (report["score"], report["raw_grade"], report["grade"]) == (91, "A", "C")
    assert len(report["blocker_groups"]) == 3


def test_one_check_failing_on_two_paths_is_two_failures_of_one_check() -> None:
    passing = many("headers", 10, "critical") + many("cors", 10, "high") + many("errors", 1, "medium")
    failing = [rec("errors.no_stack_traces", "high", "failed", path) for path in ("/", "/api/chat")]
    failing += [rec(check_id, "high", "failed") for check_id in ("headers.hsts", "cookies.flags")]
    card = card_of(passing + failing)
    assert card.grade_cap is not None
    assert card.grade_cap["reason"] == "capped at C by 4 high failures (3 checks)"
    assert (len(card.blockers), len(card.blocker_groups)) == (4, 3)


@pytest.mark.parametrize(("severity", "capped"), [
    ("critical", "F"), ("high", "C"), ("medium", "B"), ("low", "A")])
def test_the_worst_failing_severity_caps_the_grade(severity: str, capped: str) -> None:
    # One failure among 100 critical passes: the score alone gives A (>= 90).
    card = card_of([*many("a", 100, "critical"), rec("b.x", severity, "failed")])
    assert card.raw_grade == "A"
    assert card.grade == capped
    assert (card.grade_cap is None) == (severity == "low")  # a low failure caps nothing


def test_the_worst_severity_wins_over_the_most_numerous() -> None:
    card = card_of([*many("a", 200, "critical"), *many("b", 5, "medium", "failed"),
                    rec("c.x", "high", "failed")])
    assert card.grade == "C"
    assert card.grade_cap is not None and card.grade_cap["severity"] == "high"
    assert card.grade_cap["failures"] == 1


def test_a_cap_that_does_not_lower_the_grade_is_not_reported() -> None:
    card = card_of([rec("a.x", "high"), rec("b.y", "high", "failed")])  # 50: F by the score
    assert (card.raw_grade, card.grade, card.grade_cap) == ("F", "F", None)
    card = card_of([*many("a", 3, "high"), rec("b.y", "medium", "failed")])  # 88: B by the score
    assert (card.raw_grade, card.grade, card.grade_cap) == ("B", "B", None)


def test_errors_and_waivers_do_not_cap_the_grade() -> None:
    records = [*many("a", 100, "critical"),
               rec("b.x", "critical", "error", message="cannot judge: connection reset"),
               rec("c.y", "critical", "waived", waiver={"reason": "r", "expires": None, "active": True})]
    card = card_of(records)
    assert card.raw_grade == "A" and card.grade == "A" and card.grade_cap is None
    assert card.verdict == "NOT READY"  # the error still blocks: it could not look
    assert [g["id"] for g in card.blocker_groups] == ["b.x"]


def test_the_grade_ignores_the_fail_on_gate() -> None:
    """The grade measures the target, the gate is the team's policy: a high failure under
    --prodready-fail-on critical does not fail the run, and still caps the grade."""
    card = card_of([*many("a", 100, "critical"), rec("b.x", "high", "failed")], fail_on="critical")
    assert card.verdict == "READY"
    assert card.grade == "C"


def test_nothing_judged_has_no_grade() -> None:
    card = card_of([rec("a.x", outcome="skipped")])
    assert (card.score, card.raw_grade, card.grade, card.grade_cap) == (None, "-", "-", None)
    assert validated(card)["grade"] == "-"


# -- verdict and gate ---------------------------------------------------------------------------
@pytest.mark.parametrize(("fail_on", "verdict", "blocking"), [
    ("low", "NOT READY", {"a.crit", "a.high", "a.med", "a.low"}),
    ("medium", "NOT READY", {"a.crit", "a.high", "a.med"}),
    ("high", "NOT READY", {"a.crit", "a.high"}),
    ("critical", "NOT READY", {"a.crit"}),
])
def test_blockers_are_findings_at_or_above_the_gate(fail_on: str, verdict: str, blocking: set[str]) -> None:
    records = [rec("a.crit", "critical", "failed"), rec("a.high", "high", "error"),
               rec("a.med", "medium", "failed"), rec("a.low", "low", "failed"), rec("a.ok", "critical")]
    card = card_of(records, fail_on=fail_on)
    assert card.verdict == verdict
    assert {r["id"] for r in card.blockers} == blocking
    assert {r["id"] for r in card.below_gate} == {"a.crit", "a.high", "a.med", "a.low"} - blocking


def test_only_passes_waivers_and_skips_are_ready() -> None:
    waiver = {"reason": "r", "expires": None, "active": True}
    card = card_of([rec("a.x"), rec("a.y", outcome="skipped"),
                    rec("a.z", "critical", "waived", waiver=waiver)])
    assert card.verdict == "READY" and card.blockers == [] and card.blocker_groups == []


# -- grouping -----------------------------------------------------------------------------
REFLECTED = ("cors.unknown_origin_rejected", "cors.null_origin_rejected", "cors.no_wildcard_with_credentials")
PATHS = ("/api/agents", "/api/chat")


def reflected_origin() -> list[dict[str, Any]]:
    """One root cause (any Origin reflected with credentials): 3 checks x 2 paths."""
    return [rec(check_id, "high" if "null" in check_id else "critical", "failed", path,
                message=f"CORS: https://evil.example was echoed (GET {path}).",
                remediation="Only allow listed origins; see allowed_origins.")
            for check_id in REFLECTED for path in PATHS]


def test_a_reflected_origin_is_three_blockers_not_six() -> None:
    card = card_of(reflected_origin())
    assert len(card.blockers) == 6
    groups = card.blocker_groups
    assert [g["id"] for g in groups] == ["cors.no_wildcard_with_credentials",
                                         "cors.unknown_origin_rejected", "cors.null_origin_rejected"]
    for group in groups:
        assert group["subjects"] == list(PATHS)
        assert group["count"] == 2
        assert group["nodeids"] == [f"prodready::{group['id']}[{p}]" for p in PATHS]
        assert group["message"] == "CORS: https://evil.example was echoed (GET /api/agents)."  # the first
        assert group["remediation"] == "Only allow listed origins; see allowed_origins."
        assert group["outcome"] == "failed" and group["category"] == "cors"


def test_failures_and_errors_of_one_check_are_separate_groups() -> None:
    groups = group_findings([
        rec("auth.required", "critical", "failed", "/api/a", message="open"),
        rec("auth.required", "critical", "error", "/api/b", message="cannot judge: 429"),
        rec("auth.required", "critical", "failed", "/api/c", message="open too"),
        rec("auth.required", "critical", "passed", "/api/d"),
        rec("headers.csp", "medium", "failed"),
        rec("tls.cert_valid", "critical", "error", message="cannot judge: reset"),
    ])
    assert [(g["id"], g["outcome"], g["subjects"]) for g in groups] == [
        ("auth.required", "failed", ["/api/a", "/api/c"]),
        ("auth.required", "error", ["/api/b"]),
        ("tls.cert_valid", "error", []),
        ("headers.csp", "failed", []),
    ]


def test_custom_tests_group_by_their_node_id() -> None:
    records = [rec("test_x.py::test_a", "critical", "failed", nodeid="test_x.py::test_a", category="custom"),
               rec("test_x.py::test_b", "critical", "failed", nodeid="test_x.py::test_b", category="custom")]
    assert [g["id"] for g in card_of(records).blocker_groups] == ["test_x.py::test_a", "test_x.py::test_b"]


# -- the JSON report ------------------------------------------------------------------------
def test_json_keeps_every_record_and_adds_the_groups() -> None:
    records = [*reflected_origin(), rec("headers.csp", "medium"),
               rec("headers.no_version_disclosure", "low", "failed", "/",
                   evidence=[exchange(headers=[["Server", "nginx/1.18.0"]])]),
               rec("tls.cert_expiry", "high", "error", evidence=[tls_fact()]),
               rec("cookies.flags", "high", "waived",
                   waiver={"reason": "tracked in SEC-1", "expires": "2999-01-01", "active": True}),
               rec("metrics.prometheus_valid", "medium", "skipped")]
    card = card_of(records, fail_on="medium", profile="staging")
    report = validated(card)
    assert [c["nodeid"] for c in report["checks"]] == sorted(r["nodeid"] for r in records)
    assert report["blockers"][0].startswith("prodready::cors.")
    assert len(report["blockers"]) == 7 and len(report["blocker_groups"]) == 4
    assert report["blocker_groups"][-1]["id"] == "tls.cert_expiry"
    assert report["blocker_groups"][-1]["outcome"] == "error"
    assert report["profile"] == "staging" and report["fail_on"] == "medium"
    assert report["verdict"] == "NOT READY" and report["grade"] == "F"


def test_json_carries_no_control_or_bidi_characters() -> None:
    hostile = "ok\x1b[2J\x07 \u202eevil\u202c \u200bzero\ufeff"
    card = card_of([rec("a.x", "high", "failed", hostile, message=hostile,
                        evidence=[exchange(headers=[["X-\x1b[31m", hostile]], body=hostile)])])
    report = validated(card)
    text = repr(report)
    assert "\x1b" not in text and "\x07" not in text
    for char in ("\u202e", "\u202c", "\u200b", "\ufeff"):
        assert char not in text, f"U+{ord(char):04X} in the JSON report"


def test_the_records_themselves_are_not_changed_by_a_report() -> None:
    record = rec("a.x", "high", "failed", message="x\x1b[2Jy")
    card_of([record]).to_json()
    assert record["message"] == "x\x1b[2Jy"


def test_scorecard_has_no_add_method() -> None:
    """Records are set by the plugin as a list; the unused add() is gone."""
    assert not hasattr(Scorecard, "add")


@pytest.mark.parametrize(("passed", "failed", "expected"), [
    (100 * [("critical")], ["low"], 99),  # 99.5% would round to 100: an A+ with a failure
    (["low"], 30 * ["critical"], 1),  # 0.3% would round to 0: as if nothing passed
    (["low"], [], 100), ([], ["low"], 0)])
def test_score_is_100_only_when_all_pass_and_0_only_when_none_does(
        passed: list[str], failed: list[str], expected: int) -> None:
    records = ([rec(f"a.p{i}", s) for i, s in enumerate(passed)]
               + [rec(f"a.f{i}", s, "failed") for i, s in enumerate(failed)])
    card = card_of(records)
    assert card.score == expected
    if failed:
        assert card.grade != "A+"
