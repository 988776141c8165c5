#!/usr/bin/env python
"""Benchmark: pytest_prodready.leaks against detect-secrets (and gitleaks when installed).

Recall and false alarms on the corpus of tests/corpus/leaks (realistic response bodies:
a config dump, an SPA page with window.__CONFIG__, a .env, Django and Express error pages,
a minified JS chunk, logs, YAML, PEM exports, a docs page of placeholders, a JSON of decoys),
whose fake secrets are drawn at run time for --seed. A finding matches a planted secret when
its span overlaps the inserted text (for line-based tools: the value's position in its line,
or the whole line when the value is not in it, e.g. detect-secrets' "BEGIN RSA PRIVATE KEY");
every other finding is a false alarm.

Tools, as a user runs them:
- prodready: find_leaks() on each body (what exposure.secrets_in_responses and the HTTP
  client's masking run);
- prodready-before: the nine SECRET_PATTERNS exposure.secrets_in_responses used before
  (copied below from git history), the baseline;
- detect-secrets: `SecretsCollection.scan_file` with its default settings (every plugin and
  default filter) on each body written to a file named like the response (.env, .json...);
- gitleaks: `gitleaks detect --no-git` on the same files, when the binary is on PATH.

Speed: find_leaks over 1 MiB bodies (HTML, minified JS, JSON, a log; the corpus repeated),
the median of --runs, with prodready-before and detect-secrets on the same bodies in the
same run for a ratio; hostile 1 MiB bodies (dense keywords, headers without bodies, 50,000
key ids...) for the worst case; and whole process against whole process: a `python -c`
running find_leaks over the corpus files against `detect-secrets scan` over the same files,
start-up included.

    python benchmarks/bench_leaks.py [--runs 9] [--seed 20240901]

Prints Markdown tables and writes benchmarks/results/leaks.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.corpus.leaks import Sample, build  # noqa: E402

from pytest_prodready.leaks import find_leaks  # noqa: E402

MIB = 1 << 20
# exposure.secrets_in_responses' rules before pytest_prodready.leaks (commit df0e2f9).
BEFORE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private key", re.compile(r"-----BEGIN (RSA |OPENSSH |EC |DSA |ENCRYPTED )?PRIVATE KEY-----")),
    ("Stripe secret key", re.compile(r"\b(sk|rk)_live_[0-9a-zA-Z]{16,}")),
    ("GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("SendGrid key", re.compile(r"\bSG\.[\w-]{22}\.[\w-]{43}")),
    ("OpenAI key", re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}")),
    ("database URL with password",
     re.compile(r"\b(postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|mssql)"
                r"://[^:\s/@\"']+:[^@\s/\"']+@[^\s\"'<]+")),
)


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


def prodready(sample: Sample, _path: Path) -> list[Finding]:
    return [Finding(leak.kind, leak.start, leak.end) for leak in find_leaks(sample.text)]


def before(sample: Sample, _path: Path) -> list[Finding]:
    return [Finding(kind, m.start(), m.end()) for kind, pattern in BEFORE
            for m in pattern.finditer(sample.text)]


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for i, char in enumerate(text):
        if char == "\n":
            offsets.append(i + 1)
    return offsets


def _on_line(text: str, offsets: list[int], line_number: int, value: str | None, kind: str) -> Finding:
    start = offsets[line_number - 1]
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    at = text.find(value, start, end) if value else -1
    return Finding(kind, at, at + len(value)) if value and at != -1 else Finding(kind, start, end)


def detect_secrets(sample: Sample, path: Path) -> list[Finding]:
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        collection = SecretsCollection()
        collection.scan_file(str(path))
    offsets = _line_offsets(sample.text)
    return [_on_line(sample.text, offsets, secret.line_number, secret.secret_value, secret.type)
            for _, secret in collection]


def gitleaks(sample: Sample, path: Path) -> list[Finding]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(["gitleaks", "detect", "--no-git", "--no-banner", "--exit-code", "0",
                        "--source", str(path), "--report-format", "json", "--report-path", str(report)],
                       check=True, capture_output=True, timeout=120)
        offsets = _line_offsets(sample.text)
        return [_on_line(sample.text, offsets, item["StartLine"], item.get("Secret"), item["RuleID"])
                for item in json.loads(report.read_text() or "[]")]


def score(name: str, tool: Callable[[Sample, Path], list[Finding]], corpus: list[Sample],
          paths: dict[str, Path]) -> dict[str, Any]:
    found = planted = named = alarms = 0
    missed: list[str] = []
    false_alarms: list[str] = []
    started = time.perf_counter()
    for sample in corpus:
        findings = tool(sample, paths[sample.name])
        for p in sample.planted:
            planted += 1
            hits = [f for f in findings if p.overlaps(f.start, f.end)]
            if hits:
                found += 1
                named += any(f.kind == p.kind or (not p.exact and f.kind.startswith(p.kind)) for f in hits)
            else:
                missed.append(f"{sample.name}:{p.slot}")
        seen: set[tuple[int, int]] = set()
        for f in findings:
            if not any(p.overlaps(f.start, f.end) for p in sample.planted) and (f.start, f.end) not in seen:
                seen.add((f.start, f.end))
                alarms += 1
                false_alarms.append(f"{sample.name}: {f.kind}: {sample.text[f.start:f.end][:40]!r}")
    return {"tool": name, "planted": planted, "found": found, "recall": round(found / planted, 3),
            "correctly_named": named, "false_alarms": alarms, "missed": missed,
            "false_alarm_examples": false_alarms[:40],
            "corpus_seconds": round(time.perf_counter() - started, 3)}


def real_text() -> dict[str, str]:
    """1 MiB of real text from this interpreter's installed packages (what pages and bundles
    are mostly made of: code, JSON, JS, HTML), in path order; few or no secrets."""
    import sysconfig
    root = Path(sysconfig.get_paths()["purelib"])

    def mib(*suffixes: str) -> str:
        parts, size = [], 0
        for path in sorted(p for p in root.rglob("*") if p.suffix in suffixes and p.is_file()):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(text)
            size += len(text)
            if size >= MIB:
                break
        return "\n".join(parts)[:MIB]

    return {"real: .js/.json/.html/.css": mib(".js", ".json", ".html", ".css"),
            "real: Python sources": mib(".py")}


def dense(corpus: list[Sample]) -> dict[str, str]:
    """1 MiB bodies made of the corpus repeated: about 1,000-2,500 leaks per MiB, a stress
    case (a real response has a handful)."""
    by_name = {s.name: s.text for s in corpus}

    def mib(*names: str) -> str:
        chunk = "\n".join(by_name[n] for n in names)
        return (chunk * (MIB // len(chunk) + 1))[:MIB]

    return {"dense: HTML pages": mib("window_config.html", "docs_placeholders.html", "django_debug.html"),
            "dense: minified JS": mib("bundle_chunk.js").replace("\n", ";"),
            "dense: JSON": mib("config_dump.json", "data_decoys.json"),
            "dense: log": mib("app.log")}


def hostile() -> dict[str, str]:
    import random
    import string
    rng = random.Random(5)
    alphabet = string.ascii_uppercase + "234567"
    keys = " ".join("AKIA" + "".join(rng.choices(alphabet, k=16)) for _ in range(50000))
    return {"dense 'key-'": "key-" * (MIB // 4), "dense 'password='": "password=" * (MIB // 9),
            "PEM headers without bodies": "-----BEGIN PRIVATE KEY-----\n" * (MIB // 28),
            "dense 'sk-'": "sk-" * (MIB // 3), "'://' then 1 MiB of ':'": "x://" + ":" * (MIB - 4),
            "50,000 AWS key ids": keys[:MIB], "random base64": __import__("base64").b64encode(
                os.urandom(MIB * 3 // 4)).decode()}


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def whole_process(directory: Path, runs: int) -> dict[str, float | None]:
    files = sorted(str(p) for p in directory.iterdir())
    script = (f"import sys; sys.path.insert(0, {str(REPO / 'src')!r})\n"
              "from pytest_prodready.leaks import find_leaks\n"
              "n = sum(len(find_leaks(open(f, encoding='utf-8').read())) for f in sys.argv[1:])\n"
              "print(n)")
    ours = [sys.executable, "-c", script, *files]
    detect = shutil.which("detect-secrets") or str(Path(sys.executable).with_name("detect-secrets"))
    theirs = [detect, "scan", "--all-files", *files]

    def timed(cmd: list[str]) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=directory, timeout=300)
            times.append(time.perf_counter() - started)
        return round(statistics.median(times), 3)

    return {"prodready_s": timed(ours),
            "detect_secrets_s": timed(theirs) if Path(detect).exists() else None}


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"node": platform.node(), "cpu": cpu, "cpus": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=20240901)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "leaks.json"))
    args = parser.parse_args()

    corpus = build(args.seed)
    gitleaks_bin = shutil.which("gitleaks")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        paths = {}
        for sample in corpus:
            paths[sample.name] = directory / sample.name
            paths[sample.name].write_text(sample.text, encoding="utf-8")
        tools: list[tuple[str, Callable[[Sample, Path], list[Finding]]]] = [
            ("prodready", prodready), ("prodready-before", before), ("detect-secrets", detect_secrets)]
        if gitleaks_bin:
            tools.append(("gitleaks", gitleaks))
        scores = [score(name, tool, corpus, paths) for name, tool in tools]
        processes = whole_process(directory, max(3, args.runs // 3))

        speed: dict[str, dict[str, float | int | None]] = {}
        with tempfile.TemporaryDirectory() as big:
            for i, (kind, text) in enumerate({**real_text(), **dense(corpus)}.items()):
                path = Path(big) / f"body{i}.{'js' if 'JS' in kind else 'txt'}"
                path.write_text(text, encoding="utf-8")
                sample = Sample(path.name, text)
                speed[kind] = {
                    "bytes": len(text), "findings": len(find_leaks(text)),
                    "prodready_ms": median_ms(partial(find_leaks, text), args.runs),
                    "prodready_before_ms": median_ms(partial(before, sample, path), args.runs),
                    "detect_secrets_ms": median_ms(partial(detect_secrets, sample, path), 3),
                }
        worst = {name: median_ms(partial(find_leaks, text), 3) for name, text in hostile().items()}

    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_leaks.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "versions": {"pytest-prodready": metadata.version("pytest-prodready"),
                     "detect-secrets": metadata.version("detect-secrets"),
                     "gitleaks": (subprocess.run([gitleaks_bin, "version"], capture_output=True, text=True)
                                  .stdout.strip() if gitleaks_bin else None)},
        "gitleaks": ("compared" if gitleaks_bin else
                     "not compared: no gitleaks binary (Debian 12 has no gitleaks package)"),
        "seed": args.seed, "runs": args.runs,
        "corpus": {"samples": len(corpus), "planted": sum(len(s.planted) for s in corpus),
                   "decoy_markers": sum(s.decoys for s in corpus),
                   "bytes": sum(len(s.text) for s in corpus)},
        "scores": scores, "speed_1mib": speed, "hostile_1mib_ms": worst, "whole_process": processes,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    print(f"corpus: {result['corpus']}; {result['gitleaks']}\n")
    print("| tool | found / planted | recall | correctly named | false alarms |")
    print("|---|---|---|---|---|")
    for s in scores:
        print(f"| {s['tool']} | {s['found']} / {s['planted']} | {s['recall']:.0%} | "
              f"{s['correctly_named'] if s['tool'] == 'prodready' else '-'} | {s['false_alarms']} |")
    print("\n| 1 MiB body | findings | prodready ms | before ms | detect-secrets ms |")
    print("|---|---|---|---|---|")
    for kind, row in speed.items():
        print(f"| {kind} | {row['findings']} | {row['prodready_ms']} | {row['prodready_before_ms']} "
              f"| {row['detect_secrets_ms']} |")
    print("\n| hostile 1 MiB body | prodready ms |\n|---|---|")
    for name, ms in worst.items():
        print(f"| {name} | {ms} |")
    print(f"\nwhole process over the corpus files: {processes}")
    for s in scores:
        if s["tool"] != "prodready":
            print(f"\n{s['tool']} missed: {', '.join(s['missed'])}")


if __name__ == "__main__":
    main()
