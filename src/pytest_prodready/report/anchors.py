"""Where in the repository a finding is shown: the prodready config file, at the line of the
check's table or key.

Code-scanning views (SARIF) and GitLab's Code Quality widget only show findings at a file
and line of the repository; a finding about a live URL has neither. The config file is
what the team edits to change what a check looks at, so each finding is anchored there:
at the line of the first key the check needs (`protected`, `[webhooks]`), else its
`severity.<id>` override, else its family's table, else `base_url`, else line 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_prodready.report.scorecard import Scorecard


def anchor_lines(config_file: Path | None, prefix: str) -> dict[str, int]:
    """Line numbers of the config file's tables and keys: '[cors]' -> n, 'protected' -> n."""
    lines: dict[str, int] = {}
    if config_file is None or not config_file.is_file():
        return lines
    try:
        text = config_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return lines
    table = ""
    strip = f"{prefix}." if prefix else ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[+\s*([^\]]+?)\s*\]+", line)
        if header:
            table = header.group(1).strip()
            table = table[len(strip):] if strip and table.startswith(strip) else (
                "" if table == prefix else table)
            lines.setdefault(f"[{table}]", number)
            continue
        key = re.match(r"\s*([A-Za-z0-9_.\"-]+)\s*=", line)
        if key:
            name = key.group(1).strip('"')
            lines.setdefault(f"{table}.{name}" if table else name, number)
    return lines


def line_for(check_id: str, category: str, needs: tuple[str, ...], anchors: Mapping[str, int]) -> int:
    for key in needs:
        if key in anchors:
            return anchors[key]
        if f"[{key}]" in anchors:
            return anchors[f"[{key}]"]
    for key in (f"severity.{check_id}", f'severity."{check_id}"', f"[{category}]"):
        if key in anchors:
            return anchors[key]
    return anchors.get("base_url", 1)


def finding_url(target: str, subject: str) -> str:
    """The URL a finding is about: the target with the subject's path ('POST /x' keeps its
    method), or the target and the subject (a host:port, a webhook's name)."""
    method, _, path = subject.partition(" ")
    if subject.startswith("/"):
        return target.rstrip("/") + subject
    if method.isupper() and path.startswith("/"):
        return f"{method} {target.rstrip('/')}{path}"
    return f"{target}, {subject}" if subject else target


@dataclass(frozen=True)
class ConfigAnchor:
    """The config file a run's findings are anchored to: its path relative to the
    repository root (`uri`) and the line of each check (`line(record)`)."""

    uri: str
    lines: Mapping[str, int]
    needs: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, card: Scorecard, *, config_file: Path | None = None, config_prefix: str = "",
           root: Path) -> ConfigAnchor:
        config_file = config_file or (Path(card.config_file) if card.config_file else None)
        if config_file is None:
            # No config file (a URL given on the command line): anchor where it would live.
            use_pyproject = (root / "pyproject.toml").is_file() and not (root / "prodready.toml").is_file()
            config_file = root / ("pyproject.toml" if use_pyproject else "prodready.toml")
            config_prefix = "tool.prodready" if use_pyproject else config_prefix
        try:
            uri = config_file.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:  # a config outside the repository: its name is the best we have
            uri = config_file.name
        from pytest_prodready.registry import all_checks

        needs = {check_id: tuple(spec.needs) for check_id, spec in all_checks().items()}
        return cls(uri, anchor_lines(config_file, config_prefix or card.config_prefix), needs)

    def line(self, record: Mapping[str, Any]) -> int:
        check_id = str(record["id"])
        return line_for(check_id, str(record["category"]), self.needs.get(check_id, ()), self.lines)
