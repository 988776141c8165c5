"""The open extension point: an installed package adds a check family through the
`pytest_prodready.families` entry-point group, and conftest hooks observe the records and
the scorecard. Proven with a real (small) package installed on a path of the pytest run:
it touches nothing in this repository."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, Response

from tests.targets.webapp import serve_app

FAMILY_MODULE = '''
"""A third-party family: robots.txt is served and does not disallow everything."""
from pytest_prodready import Family, Probe, check
from pytest_prodready import schema


def _probes(settings, _subject):
    return {"robots": Probe.get(settings.get("robots.path") or "/robots.txt")}


@check("robots.present", title="robots.txt is served", severity="low", probes=_probes,
       remediation="Serve a robots.txt that does not disallow the whole site.")
def robots_present(ctx):
    ex = ctx.exchange("robots")
    if ex.status != 200:
        ctx.fail(f"robots.txt answered {ex.status}, expected 200", ex)
    if "Disallow: /\\n" in ex.text + "\\n":
        ctx.fail("robots.txt disallows the whole site", ex)
    ctx.passed(f"robots.txt served ({len(ex.body)} bytes)")


FAMILY = Family(name="robots", config={"robots": schema.Table({"path": schema.path})})
'''

CONFTEST = '''
import json

RECORDS = []


def pytest_prodready_record(record, config):
    RECORDS.append(record["id"])


def pytest_prodready_modify_suite(items, config):
    # Keep only the third-party family's items: the hook can shape the planned suite.
    items[:] = [item for item in items if item.spec.id.startswith("robots.")]


def pytest_prodready_scorecard(card, config):
    with open("seen.json", "w") as out:
        json.dump({"records": RECORDS, "verdict": card.verdict}, out)
'''


def install_family(root: Path) -> Path:
    """The package as pip would leave it: the module and a dist-info with its entry point."""
    site = root / "site"
    (site / "prodready_robots").mkdir(parents=True)
    (site / "prodready_robots" / "__init__.py").write_text(FAMILY_MODULE, encoding="utf-8")
    info = site / "prodready_robots-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: prodready-robots\nVersion: 0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[pytest_prodready.families]\nrobots = prodready_robots\n", encoding="utf-8")
    return site


def robots_app() -> Flask:
    app = Flask("robots")

    @app.route("/robots.txt")
    def good() -> Response:
        return Response("User-agent: *\nDisallow: /admin\n", mimetype="text/plain")

    @app.route("/closed/robots.txt")
    def closed() -> Response:
        return Response("User-agent: *\nDisallow: /\n", mimetype="text/plain")

    return app


@pytest.fixture(scope="module")
def robots_url() -> Iterator[str]:
    with serve_app(robots_app()) as url:
        yield url


@pytest.mark.parametrize(("path", "outcome"), [("/robots.txt", "passed"),
                                               ("/closed/robots.txt", "failed")])
def test_an_installed_family_runs_as_part_of_the_suite(pytester: pytest.Pytester, robots_url: str,
                                                       monkeypatch: pytest.MonkeyPatch, path: str,
                                                       outcome: str) -> None:
    site = install_family(pytester.path)
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.makefile(".toml", prodready=f'base_url = "{robots_url}"\n\n[robots]\npath = "{path}"\n')
    pytester.makeconftest(textwrap.dedent(CONFTEST))
    result = pytester.runpytest_subprocess("--prodready", "-p", "no:cacheprovider", "-rA",
                                           "--prodready-report", "r.json")
    out = result.stdout.str()
    assert f"prodready::robots.present {outcome.upper()}" in out or (
        f"{outcome.upper()} prodready::robots.present" in out), out
    report = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert [(c["id"], c["outcome"]) for c in report["checks"]] == [("robots.present", outcome)]
    seen = json.loads((pytester.path / "seen.json").read_text(encoding="utf-8"))
    assert seen["records"] == ["robots.present"]
    assert seen["verdict"] == ("READY" if outcome == "passed" else "NOT READY")


def test_the_family_config_key_is_validated_like_a_built_in_one(pytester: pytest.Pytester,
                                                                 robots_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The third-party family's schema joins the root schema: a bad value names its key."""
    site = install_family(pytester.path)
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.makefile(".toml", prodready=f'base_url = "{robots_url}"\n\n[robots]\npath = "robots.txt"\n')
    result = pytester.runpytest_subprocess("--prodready", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "robots.path" in result.stderr.str() + result.stdout.str()


def test_without_the_package_its_key_is_unknown(pytester: pytest.Pytester, robots_url: str) -> None:
    pytester.makefile(".toml", prodready=f'base_url = "{robots_url}"\n\n[robots]\npath = "/robots.txt"\n')
    result = pytester.runpytest_subprocess("--prodready", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "robots" in result.stderr.str() + result.stdout.str()
