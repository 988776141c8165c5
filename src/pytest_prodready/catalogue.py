"""The check catalogue as Markdown, generated from the registry (docs/catalogue.md)."""

from __future__ import annotations

from pytest_prodready.registry import all_checks


def markdown_catalogue() -> str:
    lines = ["# Check catalogue", "",
             "Generated from the registry by `prodready catalogue`; do not edit by hand.", "",
             "| id | passes when | severity | mode | needs | fix |", "|---|---|---|---|---|---|"]
    for spec in sorted(all_checks().values(), key=lambda s: s.id):
        needs = ", ".join(f"`{n}`" for n in spec.needs) or "-"
        lines.append(f"| `{spec.id}` | {spec.title} | {spec.severity} | {spec.mode} | {needs} | "
                     f"{spec.remediation.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
