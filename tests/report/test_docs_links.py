"""Each check's docs entry, from every report of a real run: the HTML report's check
reference (read back from Chromium's DOM), the Markdown blockers and the SARIF rules link
to the check's anchor on the catalogue page when the config sets `docs_url`, and that
anchor is one the docs site really has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pytest_prodready.catalogue import docs_link
from pytest_prodready.registry import all_checks
from pytest_prodready.report.render import html_page
from tests.report.records import card_of, rec
from tests.report.test_html_browser import Dom, dom, hostile_url, run_suite  # noqa: F401 (fixture)
from tests.report.test_sarif import validate

ROOT = Path(__file__).parents[2]
DOCS = "https://docs.example.com/prodready"


def in_page_links_resolve(page: Dom) -> list[str]:
    """Every `href="#x"` of the page, after checking each names an element that exists."""
    ids = {a.get("id") for _, a in page.elements}
    hrefs = [str(a.get("href", "")) for tag, a in page.elements if tag == "a"]
    links = [h for h in hrefs if h.startswith("#")]
    assert [link for link in links if link[1:] not in ids] == []
    return links


def test_a_real_runs_reports_link_every_check_to_its_catalogue_entry(
        hostile_url: str, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "prodready.toml").write_text(f'docs_url = "{DOCS}/"\n', encoding="utf-8")
    run = run_suite(hostile_url, tmp_path, "out.html", "out.sarif", "out.md")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]

    page = Dom(dom(tmp_path / "out.html", tmp_path))
    links = in_page_links_resolve(page)
    entries = [str(a["id"]).removeprefix("doc-") for tag, a in page.elements
               if tag == "div" and str(a.get("id", "")).startswith("doc-")]
    rows = page.rows("checks")
    blockers = [a for tag, a in page.elements if tag == "li" and "data-check" in a]
    assert entries and len(entries) == len(set(entries)) and blockers
    # every row links to its check's entry, and every blocker too
    assert sum(link.startswith("#doc-") for link in links) == len(rows) + len(blockers)
    external = [a for tag, a in page.elements if tag == "a" and "docs-link" in str(a.get("class", ""))]
    assert [a["href"] for a in external] == [f"{DOCS}/catalogue/#{e}" for e in entries]
    assert all(a["rel"] == "noopener noreferrer" for a in external)
    failed = next(r for r in rows if r["data-outcome"] == "failed")
    check_id = next(e for e in entries if f"prodready::{e}" in page.text_of[str(failed["id"])])
    entry = page.text_of[f"doc-{check_id}"]
    spec = all_checks()[check_id]
    assert f"passes when {spec.title}" in entry and f"fix: {spec.remediation}" in entry

    log = json.loads((tmp_path / "out.sarif").read_text(encoding="utf-8"))
    validate(log)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules and all(r["helpUri"] == f"{DOCS}/catalogue/#{r['id']}" for r in rules)
    assert all(f"]({r['helpUri']})" in r["help"]["markdown"] for r in rules)

    summary = (tmp_path / "out.md").read_text(encoding="utf-8")
    blocker_table = summary.split("## Blockers", 1)[1].split("\n## ", 1)[0]
    linked = re.findall(r"\[`([a-z0-9_.]+)`\]\(([^)\s]+)\)", blocker_table)
    assert linked and all(url == f"{DOCS}/catalogue/#{cid}" for cid, url in linked)

    # Each link's fragment is an anchor of the catalogue page the docs site is built from.
    catalogue = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    for cid in {*entries, *(r["id"] for r in rules), *(c for c, _ in linked)}:
        assert f'<a id="{cid}"></a>' in catalogue, cid


def test_without_docs_url_the_page_is_the_docs_entry_and_nothing_links_out(tmp_path: Path) -> None:
    card = card_of([rec("headers.hsts", "high", "failed", "/", remediation="Send it."),
                    rec("custom.own_check", "high", "failed", remediation="Our own fix.")])
    path = tmp_path / "report.html"
    path.write_text(html_page(card), encoding="utf-8")
    page = Dom(dom(path, tmp_path, "#doc-headers.hsts"))
    links = in_page_links_resolve(page)
    assert "#doc-headers.hsts" in links and "#doc-custom.own_check" in links
    assert not [a for tag, a in page.elements if tag == "a" and not str(a.get("href", "")).startswith("#")]
    assert "passes when" in page.text_of["doc-headers.hsts"]
    own = page.text_of["doc-custom.own_check"]
    assert "not in the catalogue" in own and "fix: Our own fix." in own


def test_the_link_is_built_only_for_a_catalogued_check_and_stays_one_token() -> None:
    assert docs_link(None, "headers.hsts") is None
    assert docs_link(DOCS, "custom.own_check") is None
    assert docs_link(f"{DOCS}/", "headers.hsts") == f"{DOCS}/catalogue/#headers.hsts"
    # a parenthesis or quote in the configured root cannot end a Markdown link or an attribute
    odd = docs_link("https://docs.example.com/a(b)'c\"", "headers.hsts")
    assert odd is not None and not set("()'\"<> ") & set(odd)
