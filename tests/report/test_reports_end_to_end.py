"""The scorecard of a real run (pytester, the real webapp target): blockers grouped by check
in the terminal, the Markdown and the JSON; the grade capped; the Markdown inert."""

from __future__ import annotations

import pytest
from conftest import webapp_toml

from tests.report.records import SCHEMA_PATH
from tests.report.test_render import OUR_TAGS, cmark, parsed
from tests.targets.webapp import Served


@pytest.fixture(autouse=True)
def _lean_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # Unrelated plugins cost seconds per in-process run; the outer PRODREADY_* must not leak.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:benchmark")
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON",
                 "PRODREADY_SENSITIVE_URL", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


def test_a_reflected_origin_is_one_blocker_per_check_listing_its_paths(
        pytester: pytest.Pytester, webapp: object, webapp_env: None) -> None:
    import json

    import jsonschema  # type: ignore[import-untyped]

    app: Served = webapp("cors_reflect", "version_disclosure")  # type: ignore[operator]
    # Two CORS paths: every CORS check fails on both.
    pytester.makefile(".toml", prodready=webapp_toml(app.url).replace(
        'protected = ["/api/agents", "POST /api/chat"]',
        'protected = ["/api/agents", "POST /api/chat"]\ncors_paths = ["/api/agents", "/api/health"]'))
    result = pytester.runpytest("--prodready", "--prodready-only", "cors,headers", "-p", "no:cacheprovider",
                                "--prodready-report=out.json", "--prodready-report=out.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(report)

    failed = [c for c in report["checks"] if c["outcome"] == "failed" and c["category"] == "cors"]
    cors_groups = [g for g in report["blocker_groups"] if g["category"] == "cors"]
    assert len(failed) > len(cors_groups) >= 2  # many records, one group per check
    assert sorted(report["blockers"]) == sorted(c["nodeid"] for c in report["checks"]
                                                if c["outcome"] in ("failed", "error"))
    for group in cors_groups:
        mine = [c for c in failed if c["id"] == group["id"]]
        assert group["count"] == len(mine) and group["nodeids"] == sorted(c["nodeid"] for c in mine)
        assert group["subjects"] == sorted(c["subject"] for c in mine)
    assert any(len(g["subjects"]) == 2 for g in cors_groups), cors_groups
    # Critical CORS failures: the grade is F (here the score alone says so already).
    assert report["grade"] == report["raw_grade"] == "F" and report["grade_cap"] is None

    out = result.stdout.str()
    lines = out.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("blockers (")))
    checks, findings = len(report["blocker_groups"]), len(report["blockers"])
    assert lines[start] == f"blockers ({checks} checks, {findings} findings):"
    for group in cors_groups:
        head = f"  {group['severity'].upper():<8} {group['id']}"
        entries = [line for line in lines if line.startswith(head)]
        assert len(entries) == 1, (group["id"], entries)
        assert entries[0].endswith(", ".join(group["subjects"]))
    assert out.index("verdict: NOT READY") < out.index("blockers (") < out.index("category     passed")
    assert f"score: {report['score']}/100   grade: F   fail-on: low" in out

    md = (pytester.path / "out.md").read_text(encoding="utf-8")
    assert f"## Blockers ({checks} checks, {findings} findings)" in md
    page = parsed(cmark(md))
    assert {tag for tag, _ in page.tags} <= OUR_TAGS
    for group in cors_groups:
        assert page.cells.count(group["id"]) == 1
