#!/usr/bin/env python
"""Benchmark: the tls.* checks side by side with sslyze, on the same local TLS servers.

Mints the test certificates (tests/tls_certs.py) and serves each scenario with a real
Python `ssl` HTTP server on 127.0.0.1 (tests/tls_servers.py), plus nginx when it is
installed. Then, for each server:

- ours: a fresh Target runs the six handshake checks (tls.https_reachable, cert_valid,
  cert_expiry, cert_strength, legacy_protocols_refused, tls13_offered) through the library
  (`run_check`), plus one TLS 1.2-only handshake so the protocol row is complete;
- sslyze: one ServerScanRequest with CERTIFICATE_INFO (the test CA as custom_ca_file) and
  the TLS 1.0 / 1.1 / 1.2 / 1.3 cipher-suite scans, run by sslyze's own Scanner.

and compares the findings: days to expiry, host name match, key size, and which protocol
versions the server accepts. Wall times are the median of --runs rounds, interleaved (ours,
then sslyze, per round) so machine noise hits both alike; neither includes interpreter
start-up (sslyze's import and start-up are reported separately).

sslyze pins an older cryptography than this project uses, so it lives in its own virtual
environment (benchmark-only): create it once with

    python -m venv /tmp/sslyze-venv && /tmp/sslyze-venv/bin/pip install sslyze

and run

    python benchmarks/bench_tls_vs_sslyze.py [--runs 5] [--sslyze-python /tmp/sslyze-venv/bin/python]

Prints Markdown tables and writes benchmarks/results/tls_vs_sslyze.json.

Whole process against whole process (interpreter start-up and imports included):

    python benchmarks/bench_tls_vs_sslyze.py --whole-process [--runs 5] [--servers good,nginx_site]

runs, per server and round, interleaved: (a) `python -c` with the six checks through the
library (the smallest process that runs them), (b) `python -m pytest --prodready -k tls.`
in a temporary project whose prodready.toml names the server and the test CA (what a user
runs; hypothesis's pytest plugin disabled, as docs/performance.md recommends for CI), and
(c) sslyze's own CLI, `python -m sslyze --certinfo --certinfo_ca_file CA --tlsv1 --tlsv1_1
--tlsv1_2 --tlsv1_3 localhost:PORT --quiet --json_out FILE`, the same scans as above. Writes
benchmarks/results/tls_vs_sslyze_whole_process.json (or --output). --pycache-prefix DIR lets
every process cache bytecode there (where PYTHONDONTWRITEBYTECODE is set, an editable
install otherwise recompiles its sources every run while pip compiled sslyze's).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tls_certs import CA, Leaf, rsa_key  # noqa: E402
from tests.tls_servers import _TLSHTTPServer, run_nginx, serve_https, server_context  # noqa: E402

from pytest_prodready import tlsprobe  # noqa: E402
from pytest_prodready.checking import run_check  # noqa: E402
from pytest_prodready.config import DEFAULTS, Settings  # noqa: E402
from pytest_prodready.target import Target  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "tls_vs_sslyze.json"
# socketserver's default listen backlog is 5: sslyze opens many connections at once, the
# kernel drops the SYNs past the backlog (TcpExtListenOverflows) and the client retransmits
# after its 1 s initial RTO, so a Python server costs sslyze a whole extra second per scan.
# nginx's backlog is 511; give the Python servers a real one too.
_TLSHTTPServer.request_queue_size = 128
OUR_CHECKS = ("tls.https_reachable", "tls.cert_valid", "tls.cert_expiry", "tls.cert_strength",
              "tls.legacy_protocols_refused", "tls.tls13_offered")
VERSIONS = ("1.0", "1.1", "1.2", "1.3")
LEGACY = "ALL:@SECLEVEL=0"

# Runs inside sslyze's own environment: scans the servers given on stdin, one at a time,
# `runs` times, and prints findings and per-scan wall times as JSON.
SSLYZE_SCRIPT = r'''
import datetime as dt, json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from sslyze import (CertificateInfoExtraArgument, Scanner, ScanCommand, ScanCommandsExtraArguments,
                    ServerNetworkLocation, ServerScanRequest, ScanCommandAttemptStatusEnum)
import_s = time.perf_counter() - t0
job = json.load(sys.stdin)
commands = {ScanCommand.CERTIFICATE_INFO, ScanCommand.TLS_1_0_CIPHER_SUITES,
            ScanCommand.TLS_1_1_CIPHER_SUITES, ScanCommand.TLS_1_2_CIPHER_SUITES,
            ScanCommand.TLS_1_3_CIPHER_SUITES}
out = {"import_s": import_s, "servers": {}}

def scan(server):
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(server["host"], server["port"], ip_address="127.0.0.1"),
        scan_commands=commands,
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(job["ca_file"]))))
    start = time.perf_counter()
    scanner = Scanner()
    scanner.queue_scans([request])
    result = next(iter(scanner.get_results()))
    return result, time.perf_counter() - start

for server in job["servers"]:
    times, findings = [], None
    for _ in range(job["runs"]):
        result, elapsed = scan(server)
        times.append(elapsed)
    r = result.scan_result
    if r is None:
        out["servers"][server["name"]] = {"error": str(result.connectivity_error_trace or result.scan_status),
                                          "times": times}
        continue
    versions = {}
    for name, attempt in (("1.0", r.tls_1_0_cipher_suites), ("1.1", r.tls_1_1_cipher_suites),
                          ("1.2", r.tls_1_2_cipher_suites), ("1.3", r.tls_1_3_cipher_suites)):
        if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
            versions[name] = {"accepted": bool(attempt.result.accepted_cipher_suites),
                              "suites_tested": len(attempt.result.accepted_cipher_suites)
                                               + len(attempt.result.rejected_cipher_suites)}
        else:
            versions[name] = {"accepted": None, "error": str(attempt.error_reason)}
    cert = {}
    if r.certificate_info.status == ScanCommandAttemptStatusEnum.COMPLETED:
        deployment = r.certificate_info.result.certificate_deployments[0]
        leaf = deployment.received_certificate_chain[0]
        custom = [p for p in deployment.path_validation_results if p.trust_store.name == "Supplied CA file"]
        now = dt.datetime.now(dt.timezone.utc)
        # sslyze 6 checks the name inside path validation (cryptography's verifier): a name
        # mismatch is a validation error that says so; other errors hide the name's status.
        error = custom[0].validation_error if custom else "no custom trust store result"
        if custom and custom[0].was_validation_successful:
            name = True
        elif error and "subjectAltName" in error:
            name = False
        else:
            name = None
        cert = {"days_left": (leaf.not_valid_after_utc - now).total_seconds() / 86400,
                "name_matches": name,
                "key_bits": leaf.public_key().key_size,
                "chain_sent": len(deployment.received_certificate_chain),
                "trusted_by_custom_ca": [p.was_validation_successful for p in custom],
                "validation_error": [p.validation_error for p in custom],
                "sha1_in_chain": deployment.verified_chain_has_sha1_signature}
    else:
        cert = {"error": str(r.certificate_info.error_reason)}
    out["servers"][server["name"]] = {"versions": versions, "cert": cert, "times": times}
print(json.dumps(out))
'''


@dataclass
class Scenario:
    name: str
    mint: Callable[[], Leaf]
    options: dict[str, Any]


def scenarios(ca: CA) -> list[Scenario]:
    return [
        Scenario("good", lambda: ca.issue(), {}),
        Scenario("expired", lambda: ca.issue(days=-2, age_days=60), {}),
        Scenario("expiring_5_days", lambda: ca.issue(days=5), {}),
        Scenario("wrong_host", lambda: ca.issue(["wrong.example.test"]), {}),
        Scenario("rsa_1024", lambda: ca.issue(key=rsa_key(1024)), {"ciphers": "DEFAULT:@SECLEVEL=0"}),
        Scenario("legacy_seclevel0", lambda: ca.issue(),
                 {"minimum": ssl.TLSVersion.TLSv1, "ciphers": LEGACY}),
        Scenario("legacy_default_level", lambda: ca.issue(), {"minimum": ssl.TLSVersion.TLSv1}),
        Scenario("tls12_only", lambda: ca.issue(), {"maximum": ssl.TLSVersion.TLSv1_2}),
    ]


@contextlib.contextmanager
def servers(workdir: Path, ca: CA) -> Iterator[dict[str, int]]:
    ports: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        for sc in scenarios(ca):
            certfile, keyfile = sc.mint().write(workdir, sc.name)
            served = stack.enter_context(serve_https(server_context(certfile, keyfile, **sc.options)))
            ports[sc.name] = served.port
        if shutil.which("nginx") and os.geteuid() == 0:
            certfile, keyfile = ca.issue().write(workdir, "nginx")
            nginx = stack.enter_context(run_nginx(workdir / "nginx", certfile, keyfile))
            ports["nginx_site"] = nginx.ports["https"]
            ports["nginx_legacy"] = nginx.ports["legacy"]
            ports["nginx_defaults"] = nginx.ports["defaults"]
        yield ports


def ours_once(port: int, ca_file: str) -> tuple[dict[str, Any], float]:
    """The six checks on one server with a fresh Target (no cache), timed; then the findings."""
    settings = Settings(values={**DEFAULTS, "base_url": f"https://localhost:{port}/", "timeout_s": 5.0,
                                "retries": 0, "tls": {"ca_bundle": ca_file}}, secrets={}, sources={})
    with Target(settings) as target:
        start = time.perf_counter()
        results = {c: run_check(c, target) for c in OUR_CHECKS}
        elapsed = time.perf_counter() - start
        endpoint = tlsprobe.Endpoint("localhost", port)
        tls12 = tlsprobe.handshake(endpoint, mode="version", version=ssl.TLSVersion.TLSv1_2, timeout=5)
        facts = tlsprobe.handshake(endpoint, mode="permissive", timeout=5)
    cert = facts.cert
    valid = results["tls.cert_valid"]
    if valid.outcome == "passed":
        name: bool | None = True
    elif "mismatch" in valid.message:
        name = False
    else:
        name = None  # OpenSSL stopped at another error (expired, weak key) before the name
    legacy = results["tls.legacy_protocols_refused"].message
    return {
        "outcomes": {c: r.outcome for c, r in results.items()},
        "messages": {c: r.message for c, r in results.items()},
        "days_left": cert.days_left() if cert else None,
        "name_matches": name,
        "key_bits": cert.key_bits if cert else None,
        "versions": {
            "1.0": "TLSv1 accepted" in legacy,
            "1.1": "TLSv1.1 accepted" in legacy,
            "1.2": tls12.ok,
            "1.3": results["tls.tls13_offered"].outcome == "passed",
        },
    }, elapsed


def run_sslyze(python: str, ports: dict[str, int], ca_file: str, runs: int) -> tuple[dict[str, Any], float]:
    job = {"ca_file": ca_file, "runs": runs,
           "servers": [{"name": n, "host": "localhost", "port": p} for n, p in ports.items()]}
    start = time.perf_counter()
    proc = subprocess.run([python, "-c", SSLYZE_SCRIPT], input=json.dumps(job), capture_output=True,
                          text=True, timeout=1800, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sslyze failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data, wall


def sslyze_version(python: str) -> str:
    proc = subprocess.run([python, "-c", "from importlib import metadata as m; "
                                         "print(m.version('sslyze'), m.version('nassl'))"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def agree(a: Any, b: Any) -> str:
    if a is None or b is None:
        return "n/a"
    if isinstance(a, float) and isinstance(b, float):
        return "yes" if abs(a - b) < 0.01 else "NO"
    return "yes" if a == b else "NO"


def fmt_versions(versions: dict[str, Any]) -> str:
    return " ".join(v for v in VERSIONS if versions.get(v)) or "none"


OURS_PROCESS = r'''
import sys
from pytest_prodready.checking import run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target
port, ca_file = int(sys.argv[1]), sys.argv[2]
settings = Settings(values={**DEFAULTS, "base_url": f"https://localhost:{port}/", "timeout_s": 5.0,
                            "retries": 0, "tls": {"ca_bundle": ca_file}}, secrets={}, sources={})
with Target(settings) as target:
    for name in sys.argv[3:]:
        print(name, run_check(name, target).outcome)
'''


def timed(cmd: list[str], cwd: Path | None = None,
          env: dict[str, str] | None = None) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    return time.perf_counter() - start, proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:]


def whole_process(args: argparse.Namespace) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRODREADY_", "PYTEST_ADDOPTS"))}
    if args.pycache_prefix:  # bytecode cached for every process (pip already compiled sslyze's)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(args.pycache_prefix).resolve())
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="bench-tls-wp-") as tmp:
        workdir = Path(tmp)
        ca = CA()
        ca_file = ca.write(workdir / "ca.pem")
        with servers(workdir, ca) as ports:
            chosen = {n: p for n, p in ports.items() if not args.servers or n in args.servers.split(",")}
            projects: dict[str, Path] = {}
            for name, port in chosen.items():
                project = projects[name] = workdir / f"project-{name}"
                project.mkdir()
                (project / "prodready.toml").write_text(f'base_url = "https://localhost:{port}/"\n'
                                                        f'retries = 0\n\n[tls]\nca_bundle = "{ca_file}"\n')
            cases = {
                "ours_library_process": lambda n, p: [sys.executable, "-c", OURS_PROCESS, str(p), ca_file,
                                                      *OUR_CHECKS],
                "ours_pytest_k_tls": lambda n, p: [sys.executable, "-m", "pytest", "--prodready", "-k",
                                                   "tls.", "-p", "no:hypothesispytest", "-p",
                                                   "no:cacheprovider", "-q"],
                "sslyze_cli": lambda n, p: [args.sslyze_python, "-m", "sslyze", "--certinfo",
                                            "--certinfo_ca_file", ca_file, "--tlsv1", "--tlsv1_1",
                                            "--tlsv1_2",
                                            "--tlsv1_3", "--quiet", "--json_out", str(workdir / f"{n}.json"),
                                            f"localhost:{p}"],
            }
            times: dict[str, dict[str, list[float]]] = {n: {c: [] for c in cases} for n in chosen}
            notes: dict[str, str] = {}
            for name, port in chosen.items():  # warm-up, untimed
                for case, cmd in cases.items():
                    _, code, out = timed(cmd(name, port), cwd=projects[name], env=env)
                    notes[f"{name}/{case}"] = f"exit {code}: {out[-600:]}"
            for _ in range(args.runs):
                for name, port in chosen.items():
                    for case, cmd in cases.items():
                        wall, _code, _ = timed(cmd(name, port), cwd=projects[name], env=env)
                        times[name][case].append(wall)
    load_after = os.getloadavg()
    medians = {n: {c: statistics.median(v) for c, v in by.items()} for n, by in times.items()}
    print("| server | ours, `python -c` (6 checks) | ours, `pytest --prodready -k tls.` | sslyze CLI | "
          "library / sslyze | pytest / sslyze |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in medians.items():
        print(f"| {name} | {m['ours_library_process']:.2f} s | {m['ours_pytest_k_tls']:.2f} s | "
              f"{m['sslyze_cli']:.2f} s | {m['ours_library_process'] / m['sslyze_cli']:.2f} | "
              f"{m['ours_pytest_k_tls'] / m['sslyze_cli']:.2f} |")
    print(f"load average before {load_before}, after {load_after}")
    out_path = Path(args.output) if args.output else \
        REPO / "benchmarks" / "results" / "tls_vs_sslyze_whole_process.json"
    out_path.write_text(json.dumps({
        "benchmark": "tls_vs_sslyze_whole_process", "date": started.isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_tls_vs_sslyze.py " + " ".join(sys.argv[1:]),
        "machine": {"node": platform.node(), "python": platform.python_version(),
                    "openssl": ssl.OPENSSL_VERSION, "cpus": os.cpu_count(),
                    "PYTHONDONTWRITEBYTECODE": env.get("PYTHONDONTWRITEBYTECODE"),
                    "PYTHONPYCACHEPREFIX": env.get("PYTHONPYCACHEPREFIX")},
        "versions": {"pytest-prodready": metadata.version("pytest-prodready"),
                     "sslyze (nassl)": sslyze_version(args.sslyze_python)},
        "commands": {c: " ".join(cmd("NAME", 0)) for c, cmd in cases.items()},
        "runs": args.runs, "order": "interleaved: each case once per server per round, after one warm-up",
        "load_average_before": load_before, "load_average_after": load_after,
        "medians_s": medians, "times_s": times, "warmup_outputs": notes,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"written: {out_path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sslyze-python",
                        default=os.environ.get("SSLYZE_PYTHON", "/tmp/sslyze-venv/bin/python"))
    parser.add_argument("--whole-process", action="store_true",
                        help="time whole processes (start-up included): ours vs sslyze's CLI")
    parser.add_argument("--servers", default="", help="with --whole-process: comma-separated server names")
    parser.add_argument("--pycache-prefix", default="",
                        help="with --whole-process: let every process cache bytecode in this directory")
    parser.add_argument("--output", default="", help="with --whole-process: the JSON results file")
    args = parser.parse_args()
    if not Path(args.sslyze_python).exists():
        raise SystemExit(f"no sslyze interpreter at {args.sslyze_python}; see the docstring")
    if args.whole_process:
        return whole_process(args)

    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        workdir = Path(tmp)
        ca = CA()
        ca_file = ca.write(workdir / "ca.pem")
        with servers(workdir, ca) as ports:
            ours: dict[str, dict[str, Any]] = {}
            our_times: dict[str, list[float]] = {name: [] for name in ports}
            for _ in range(args.runs):
                for name, port in ports.items():
                    findings, elapsed = ours_once(port, ca_file)
                    ours[name] = findings
                    our_times[name].append(elapsed)
            theirs, sslyze_wall = run_sslyze(args.sslyze_python, ports, ca_file, args.runs)

    rows = []
    for name in ports:
        o, s = ours[name], theirs["servers"][name]
        cert = s.get("cert", {})
        rows.append({
            "server": name,
            "days_left": (o["days_left"], cert.get("days_left")),
            "name_matches": (o["name_matches"], cert.get("name_matches")),
            "key_bits": (o["key_bits"], cert.get("key_bits")),
            "versions": (o["versions"], {v: s["versions"][v]["accepted"] for v in VERSIONS}),
            "ours_s": statistics.median(our_times[name]),
            "sslyze_s": statistics.median(s["times"]),
            "sslyze_suites_tested": sum(s["versions"][v].get("suites_tested", 0) for v in VERSIONS),
            "our_outcomes": o["outcomes"],
            "sslyze_validation": cert.get("validation_error"),
        })

    print(f"# tls.* vs sslyze ({sslyze_version(args.sslyze_python)}), {args.runs} runs, "
          f"{platform.node()}, {dt.date.today()}\n")
    print("| server | days left (ours / sslyze) | agree | name matches (ours / sslyze) | agree | "
          "key bits | agree | versions accepted (ours / sslyze) | agree |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        od, sd = r["days_left"]
        on, sn = r["name_matches"]
        ok, sk = r["key_bits"]
        ov, sv = r["versions"]
        name_cell = f"{'?' if on is None else on} / {sn}"
        print(f"| {r['server']} | {od:.2f} / {sd:.2f} | {agree(od, sd)} | {name_cell} | {agree(on, sn)} | "
              f"{ok} / {sk} | {agree(ok, sk)} | {fmt_versions(ov)} / {fmt_versions(sv)} | "
              f"{agree(ov, sv)} |")
    print("\n| server | our 6 checks (median s) | sslyze scan (median s) | ratio | "
          "cipher suites sslyze tried |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['ours_s']:.3f} | {r['sslyze_s']:.3f} | "
              f"{r['sslyze_s'] / r['ours_s']:.0f}x | {r['sslyze_suites_tested']} |")
    total_ours = sum(r["ours_s"] for r in rows)
    total_sslyze = sum(r["sslyze_s"] for r in rows)
    print(f"\nTotal over {len(rows)} servers: ours {total_ours:.2f}s, sslyze {total_sslyze:.2f}s "
          f"(sslyze import {theirs['import_s']:.2f}s; its whole subprocess {sslyze_wall:.1f}s for "
          f"{args.runs} rounds).")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "python": platform.python_version(),
                    "openssl": ssl.OPENSSL_VERSION, "cpus": os.cpu_count()},
        "versions": {"pytest-prodready": metadata.version("pytest-prodready"),
                     "cryptography": metadata.version("cryptography"),
                     "sslyze (nassl)": sslyze_version(args.sslyze_python)},
        "runs": args.runs, "rows": rows, "sslyze_import_s": theirs["import_s"],
        "sslyze_subprocess_s": sslyze_wall,
    }, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwritten: {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
