"""The CI recipes, run locally: every step of the composite GitHub Action (action.yml) and
the GitLab CI template (ci/gitlab-ci.yml) as their runners would run it, against the demo
service: the install step installs this repository into a fresh virtualenv, the suite runs,
the job summary and the reports are written, the uploads find their files, and the job
fails because the demo is NOT READY.

A runner's own steps (actions/setup-python, the artifact and SARIF uploads) are not run:
the test checks what they are given (the files exist, the SARIF validates)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from pytest_prodready.demo.service import DemoServer
from tests.report.test_codequality import validate as validate_codequality
from tests.report.test_sarif import validate as validate_sarif

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
GITLAB = ROOT / "ci" / "gitlab-ci.yml"
# How GitHub runs a `shell: bash` step.
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


@pytest.fixture(scope="module")
def runner_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv, as on a runner; the test extras' packages are reachable through
    a .pth (no download of the whole dependency tree), pytest-prodready itself is not: the
    install steps put it there."""
    venv = tmp_path_factory.mktemp("runner") / "venv"
    # Without its own pip: the dev venv's, reachable through the .pth, installs into this one.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with DemoServer(tmp_path_factory.mktemp("demo")) as server:
        yield server


def runner_env(venv: Path, demo: DemoServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRODREADY_", "GITHUB_", "VIRTUAL_ENV")) and k != "PYTEST_ADDOPTS"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_NO_INPUT"] = "1"
    return {**env, **demo.env, **extra}


def workspace(tmp_path: Path, demo: DemoServer) -> Path:
    """A repository checkout with the team's prodready.toml (the demo's, its CA beside it)."""
    import shutil

    shutil.copytree(demo.directory / "certs", tmp_path / "certs")
    (tmp_path / "prodready.toml").write_text(demo.config(), encoding="utf-8")
    return tmp_path


# -- GitHub Actions ---------------------------------------------------------------------------
class Expressions:
    """Just enough of GitHub's expression language for action.yml's `if:` and `${{ }}`."""

    def __init__(self, inputs: Mapping[str, str], action_path: Path, cwd: Path) -> None:
        self.inputs = dict(inputs)
        self.action_path = action_path
        self.cwd = cwd
        self.outputs: dict[str, dict[str, str]] = {}

    def evaluate(self, expression: str) -> Any:
        python = re.sub(r"inputs\.([A-Za-z0-9_-]+)", lambda m: repr(self.inputs[m.group(1)]), expression)
        python = re.sub(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)",
                        lambda m: repr(self.outputs.get(m.group(1), {}).get(m.group(2), "")), python)
        python = python.replace("github.action_path", repr(str(self.action_path)))
        python = python.replace("&&", " and ").replace("||", " or ")
        assert not re.search(r"\b(github|runner|env|secrets|matrix)\.", python), expression

        def hash_files(pattern: str) -> str:
            return "hash" if list(self.cwd.glob(pattern)) else ""

        return eval(python, {"__builtins__": {}},  # our own file's expressions, nothing else
                    {"always": lambda: True, "format": lambda f, *a: f.format(*a), "hashFiles": hash_files})

    def substitute(self, value: Any) -> str:
        return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda m: str(self.evaluate(m.group(1))), str(value))


def test_the_action_declares_its_inputs_and_passes_them_through_env_only() -> None:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            # No expression inside a script: an input can never become shell code.
            assert "${{" not in step["run"], step["name"]
    values = [v for step in action["runs"]["steps"]
              for v in [*(step.get("env") or {}).values(), *(step.get("with") or {}).values(),
                        step.get("if", "")]]
    used = {m for v in values for m in re.findall(r"inputs\.([A-Za-z0-9_-]+)", str(v))}
    assert used == set(action["inputs"]), set(action["inputs"]) ^ used


def test_the_github_action_runs_step_by_step(runner_venv: Path, demo: DemoServer, tmp_path: Path) -> None:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    cwd = workspace(tmp_path / "workspace", demo)
    github = tmp_path / "github"
    github.mkdir()
    summary, output = github / "step_summary.md", github / "output"
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update({"url": demo.url, "only": "headers,cors", "python-version": "", "pip-args": "--no-deps -q",
                   "fail-on": "high"})
    expr = Expressions(inputs, ROOT, cwd)
    env = runner_env(runner_venv, demo, GITHUB_STEP_SUMMARY=str(summary), GITHUB_ACTION_PATH=str(ROOT))
    uploads: dict[str, dict[str, str]] = {}
    codes: dict[str, int] = {}
    ran: list[str] = []
    for step in action["runs"]["steps"]:
        if "if" in step and not expr.evaluate(step["if"]):
            continue
        ran.append(step["name"])
        if "uses" in step:
            given = step.get("with") or {}
            uploads[step["uses"].split("@")[0]] = {k: expr.substitute(v) for k, v in given.items()}
            continue
        output.write_text("", encoding="utf-8")
        step_env = {**env, **{k: expr.substitute(v) for k, v in (step.get("env") or {}).items()},
                    "GITHUB_OUTPUT": str(output)}
        done = subprocess.run([*BASH, "-c", step["run"]], cwd=cwd, env=step_env, capture_output=True,
                              text=True, timeout=300, check=False)
        codes[step["name"]] = done.returncode
        if step.get("id"):
            expr.outputs[step["id"]] = dict(line.split("=", 1) for line in output.read_text().splitlines())
        if step["name"] == "Fail on NOT READY":
            assert done.returncode == 1 and "::error title=prodready::verdict NOT READY" in done.stdout
        else:
            assert done.returncode == 0, (step["name"], done.stdout[-3000:], done.stderr[-3000:])
    assert ran == ["Install pytest-prodready", "Run the production-readiness suite", "Upload the reports",
                   "Upload SARIF to code scanning", "Fail on NOT READY"]
    # The install step put this repository's package into the runner's fresh venv.
    installed = next((runner_venv / "lib").glob("python3*/site-packages/pytest_prodready*.dist-info"))
    assert installed.name.startswith("pytest_prodready-")
    assert expr.outputs["run"] == {"exit-code": "1", "verdict": "NOT READY",
                                   "sarif": "prodready-report/prodready.sarif"}
    # The job summary: the scorecard in Markdown.
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# Production readiness: ❌ NOT READY") and "cors.unknown_origin_rejected" in text
    # What the upload steps get exists and is what they expect.
    report_dir = cwd / uploads["actions/upload-artifact"]["path"]
    assert sorted(p.name for p in report_dir.iterdir()) == ["junit.xml", "prodready.html", "prodready.json",
                                                             "prodready.sarif"]
    sarif = json.loads((cwd / uploads["github/codeql-action/upload-sarif"]["sarif_file"]).read_text())
    validate_sarif(sarif)
    rules = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert rules >= {"cors.unknown_origin_rejected", "headers.hsts"}
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"]} == {"prodready.toml"}
    ET.parse(report_dir / "junit.xml")


# -- GitLab CI --------------------------------------------------------------------------------
def gitlab_job(name: str) -> dict[str, Any]:
    config = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    job = dict(config[name])
    while "extends" in job:
        base = dict(config[job.pop("extends")])
        job = {**base, **job, "variables": {**base.get("variables", {}), **job.get("variables", {})}}
    return job


def test_the_gitlab_template_runs_its_script(runner_venv: Path, demo: DemoServer, tmp_path: Path) -> None:
    job = gitlab_job("prodready")
    cwd = workspace(tmp_path / "project", demo)
    variables = {**{k: str(v) for k, v in job["variables"].items()},
                 "PRODREADY_URL": demo.url, "PRODREADY_ONLY": "headers,cors",
                 "PRODREADY_PACKAGE": str(ROOT), "PRODREADY_PIP_ARGS": "--no-deps -q"}
    # A GitLab runner runs before_script and script in one shell, stopping at the first failure.
    script = "\n".join(["set -eo pipefail", *job["before_script"], *job["script"]])
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=runner_env(runner_venv, demo, **variables),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # NOT READY fails the job
    assert "verdict: NOT READY" in done.stdout
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    report_dir = cwd / artifacts["paths"][0]
    assert sorted(p.name for p in report_dir.iterdir()) == [
        "gl-code-quality-report.json", "junit.xml", "prodready.html", "prodready.json", "prodready.md",
        "prodready.sarif"]
    # The merge request's Code Quality widget: one issue per finding of the scorecard.
    issues = json.loads((cwd / artifacts["reports"]["codequality"]).read_text(encoding="utf-8"))
    validate_codequality(issues)
    scorecard = json.loads((report_dir / "prodready.json").read_text(encoding="utf-8"))
    assert len(issues) == sum(c["outcome"] in ("failed", "error") for c in scorecard["checks"]) > 0
    cases = list(ET.parse(cwd / artifacts["reports"]["junit"]).getroot().iter("testcase"))
    assert cases and all(c.get("classname", "").startswith("prodready") for c in cases)
    names = {c.get("name", "").split("[")[0] for c in cases}
    assert names >= {"headers.hsts", "cors.unknown_origin_rejected"}
    assert (report_dir / "prodready.md").read_text(encoding="utf-8").startswith("# Production readiness")
    validate_sarif(json.loads((report_dir / "prodready.sarif").read_text(encoding="utf-8")))
