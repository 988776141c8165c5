"""The check catalogue as Markdown, generated from the registry (docs/catalogue.md).

Each row carries an HTML anchor named by the check id, so that a report can link to one
check's entry on a docs site built from this repository (`docs_url` in the config):
`{docs_url}/catalogue/#auth.required`.
"""

from __future__ import annotations

from urllib.parse import quote

from pytest_prodready.registry import all_checks

# Where the catalogue page lives on a site built from mkdocs.yml (directory URLs).
CATALOGUE_PAGE = "catalogue/"


def markdown_catalogue() -> str:
    lines = ["# Check catalogue", "",
             "Generated from the registry by `prodready catalogue`; do not edit by hand.", "",
             "| id | passes when | severity | mode | needs | fix |", "|---|---|---|---|---|---|"]
    for spec in sorted(all_checks().values(), key=lambda s: s.id):
        needs = ", ".join(f"`{n}`" for n in spec.needs) or "-"
        lines.append(f'| <a id="{spec.id}"></a>`{spec.id}` | {spec.title} | {spec.severity} | '
                     f"{spec.mode} | {needs} | {spec.remediation.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def docs_link(docs_url: str | None, check_id: str) -> str | None:
    """The URL of a built-in check's catalogue entry on the team's docs site, or None (no
    site configured, or a check that is not in the registry, such as a team's own)."""
    if not docs_url or check_id not in all_checks():
        return None
    # Percent-encoded so that the URL stays one token in Markdown and HTML: no parenthesis,
    # angle bracket, quote or space can end it early.
    root = quote(docs_url.rstrip("/"), safe=":/?&=%@!$+,;~-._")
    return f"{root}/{CATALOGUE_PAGE}#{quote(check_id, safe='.-_')}"
