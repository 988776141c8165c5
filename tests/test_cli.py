"""The `prodready` console script, run as a real subprocess (demo, check, catalogue)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_prodready.demo.service import DEMO_TOKEN, DEMO_WEBHOOK_SECRET
from pytest_prodready.registry import all_checks
from tests.targets.webapp import Served

TIMEOUT_S = 90


def prodready(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, isolated from the outer run's pytest settings."""
    exe = shutil.which("prodready")
    assert exe, "the `prodready` console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PRODREADY_"))}
    # Unrelated third-party plugins of this machine only slow the inner pytest run down.
    env["PYTEST_ADDOPTS"] = "-p no:hypothesispytest -p no:benchmark"
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


def test_demo_shows_a_not_ready_scorecard_with_fixes(tmp_path: Path) -> None:
    done = prodready("demo", "--report", str(tmp_path / "demo.md"), "--report",
                     str(tmp_path / "demo.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "NOT READY" in out
    assert "prodready scorecard" in out
    assert "category     passed failed errors skipped waived score" in out
    assert "Fix:" in out
    assert "blockers (" in out
    assert "Traceback (most recent call last)" not in done.stderr
    # Over HTTPS with the demo's own CA; TLS and webhooks are demonstrated, not skipped.
    assert "target: https://localhost:" in out
    assert re.search(r"^tls +5 +2 +0 +0 ", out, re.MULTILINE), out[-3000:]
    assert re.search(r"^webhook +3 +1 +0 +0 ", out, re.MULTILINE), out[-3000:]
    summary = re.search(r"^\d+ failed, \d+ passed.* in [\d.]+s$", out, re.MULTILINE)
    assert summary and "skipped" not in summary[0] and "error" not in summary[0], out[-1000:]
    report = (tmp_path / "demo.md").read_text(encoding="utf-8")
    assert "NOT READY" in report
    # The demo's secrets reach the run by env var only: never in its output or reports.
    outputs = (out, done.stderr, report, (tmp_path / "demo.json").read_text(encoding="utf-8"))
    for secret in (DEMO_TOKEN, DEMO_WEBHOOK_SECRET):
        assert not [text for text in outputs if secret in text]
    assert not (tmp_path / "prodready.toml").exists()  # the demo works in its own temp dir
    assert sorted(tmp_path.iterdir()) == [tmp_path / "demo.json", tmp_path / "demo.md"]


def test_check_a_good_url_without_config(tmp_path: Path, good_app: Served) -> None:
    assert not list(tmp_path.iterdir())  # no config file anywhere near
    done = prodready("check", f"{good_app.url}/api/agents", cwd=tmp_path)
    out = done.stdout
    assert "prodready scorecard" in out, out[-3000:] + done.stderr[-3000:]
    assert "verdict: READY" in out
    assert "category     passed failed" in out
    for category in ("cors", "headers", "exposure"):
        assert f"\n{category} " in out
    assert done.returncode == 0, out[-3000:]
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the caller's directory


def test_check_a_defective_url_fails(tmp_path: Path, webapp: Callable[..., Served]) -> None:
    served = webapp("cors_reflect")
    done = prodready("check", f"{served.url}/api/agents", "--only", "cors", cwd=tmp_path)
    assert done.returncode == 1
    assert "verdict: NOT READY" in done.stdout
    assert "cors.unknown_origin_rejected[/api/agents]" in done.stdout


@pytest.mark.parametrize("arg", ["not-a-url", "ftp://example.com/x", "http://"])
def test_check_rejects_a_non_url_clearly(tmp_path: Path, arg: str) -> None:
    done = prodready("check", arg, cwd=tmp_path)
    assert done.returncode not in (0, 1)
    assert "is not an http(s) URL" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_catalogue_lists_every_registered_check(tmp_path: Path) -> None:
    done = prodready("catalogue", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ids = list(all_checks())
    assert len(ids) > 20
    for check_id in ids:
        assert f"| `{check_id}` |" in done.stdout, check_id


def test_module_entry_point_matches_the_script(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_prodready.cli", "catalogue"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0
    assert "# Check catalogue" in done.stdout
