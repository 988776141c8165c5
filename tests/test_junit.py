"""JUnit XML under xdist (`-n 2`): every prodready test case, built-in or a team's own
marked test, carries prodready_id, category, severity and waived as properties (through
item.user_properties: no warning with the default JUnit family)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from pytest_prodready.demo.service import DemoServer

CUSTOM_TESTS = '''
import pytest


@pytest.mark.prodready(category="smoke", severity="medium", fix="Serve the API.")
def test_api_answers(prodready_target):
    assert prodready_target.get("/api/health").status == 200


@pytest.mark.prodready(category="smoke", severity="low")
@pytest.mark.xfail(reason="accepted: legacy endpoint", strict=False)
def test_legacy_is_gone(prodready_target):
    assert prodready_target.get("/api/health").status == 418


def test_plain_unit_test():
    assert True
'''

WAIVER = '''
[[waivers]]
id = "headers.csp"
reason = "CSP rollout tracked in SEC-142"
expires = "2999-01-31"
'''


Run = tuple[ET.Element, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def junit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("junit")
    with DemoServer(workdir) as server:
        config = server.write_config()
        config.write_text(config.read_text(encoding="utf-8") + WAIVER, encoding="utf-8")
        (workdir / "test_custom.py").write_text(CUSTOM_TESTS, encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PRODREADY_") and k not in ("GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS")}
        env.update(server.env)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "--prodready", "--prodready-suite", "--prodready-only",
             "headers,cors", "-n", "2", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
             "-p", "no:benchmark", "-W", "error::pytest.PytestWarning", "--junitxml=junit.xml",
             "test_custom.py"],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=180, check=False)
        assert (workdir / "junit.xml").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
        yield ET.parse(workdir / "junit.xml").getroot(), run


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_every_prodready_case_carries_id_category_severity_waived(
        junit: Run) -> None:
    root, run = junit
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout[-3000:]  # the demo is NOT READY
    assert "created: 2/2 workers" in run.stdout or "2 workers" in run.stdout, run.stdout[:2000]
    assert "PytestWarning" not in run.stdout + run.stderr
    cases = list(root.iter("testcase"))
    builtin = [c for c in cases if c.get("classname", "").startswith("prodready")]
    custom = [c for c in cases if c.get("name", "").startswith(("test_api", "test_legacy"))]
    assert len(builtin) >= 10 and len(custom) == 2
    for case in [*builtin, *custom]:
        props = properties(case)
        assert {"prodready_id", "category", "severity", "waived"} <= set(props), (case.attrib, props)
        assert props["severity"] in ("critical", "high", "medium", "low")
        assert props["waived"] in ("true", "false")
    by_id = {properties(c)["prodready_id"]: properties(c) for c in builtin}
    assert by_id["headers.hsts"] == {**by_id["headers.hsts"], "category": "headers", "severity": "high",
                                     "waived": "false"}
    assert by_id["headers.csp"]["waived"] == "true"  # the config's waiver
    assert by_id["cors.unknown_origin_rejected"]["severity"] == "critical"
    api, legacy = sorted(custom, key=lambda c: c.get("name", ""))
    assert properties(api)["category"] == "smoke" and properties(api)["severity"] == "medium"
    assert properties(api)["prodready_id"].endswith("test_custom.py::test_api_answers")
    assert properties(legacy)["waived"] == "true" and properties(legacy)["severity"] == "low"
    # A plain unit test is no prodready case.
    plain = next(c for c in cases if c.get("name") == "test_plain_unit_test")
    assert "prodready_id" not in properties(plain)
