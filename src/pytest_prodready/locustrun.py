"""Running a latency measurement on Locust's distributed mode: a master and workers, as
subprocesses (Locust is never imported here: importing it monkey-patches a process for
gevent). The measurement itself is locustfile.py's; this side prepares it, starts and
bounds the processes, and reads back the raw samples.

Safety is decided here, before Locust starts: the URL passes the client's allowlist and URL
checks (Target.handover), the whole run's requests are taken from the budget at once, no
redirect is followed, and every process is killed when the run overruns its time limit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_prodready.exceptions import CannotJudge
from pytest_prodready.target import SEQ_HEADER, Probe, Target

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MAX_BODY_BYTES = 1 << 20
DEFAULTS: dict[str, Any] = {"workers": 2, "expect_workers": None, "bind_host": "127.0.0.1",
                            "bind_port": 0, "max_seconds": 300}


@dataclass(frozen=True)
class Sample:
    seq: str
    warmup: bool
    elapsed_ms: float | None
    status: int | None
    error: str


def available() -> bool:
    """Whether Locust is installed, found without importing it."""
    try:
        return importlib.util.find_spec("locust") is not None
    except (ImportError, ValueError):
        return False


def options(settings: Any) -> dict[str, Any]:
    chosen = {**DEFAULTS, **(settings.get("perf.locust") or {})}
    if chosen["expect_workers"] is None:
        chosen["expect_workers"] = chosen["workers"]
    return chosen


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_command(host: str, port: int) -> list[str]:
    """The command a worker runs, here or on another machine with pytest-prodready[locust]."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
            "--master-host", host, "--master-port", str(port), "--loglevel", "WARNING"]


def run(target: Target, probe: Probe, endpoint: str, requests: int, warmup: int,
        concurrency: int, settings: Any) -> tuple[list[Sample], str]:
    """Measure `endpoint` with Locust: (the raw samples, a description of the run)."""
    if not available():
        raise CannotJudge("runner = \"locust\" needs Locust, which is not installed: "
                          "pip install 'pytest-prodready[locust]' (or set runner = \"in-process\")")
    opts = options(settings)
    workers, expected = int(opts["workers"]), int(opts["expect_workers"])
    total = requests + warmup
    url, headers, verify = target.handover(probe, total)
    host = str(opts["bind_host"])
    port = int(opts["bind_port"]) or _free_port(host)
    max_s = int(opts["max_seconds"])
    folder = Path(tempfile.mkdtemp(prefix="prodready-locust-"))  # 0700: the spec may hold credentials
    try:
        samples_path = folder / "samples.jsonl"
        spec = {"url": url, "method": probe.method, "endpoint": endpoint, "headers": headers,
                "body": probe.body.decode("utf-8", "replace"), "verify": verify,
                "timeout_s": target.timeout, "total": total, "warmup": warmup, "workers": expected,
                "run": secrets.token_hex(4), "seq_header": SEQ_HEADER,
                "max_body_bytes": MAX_BODY_BYTES, "samples_path": str(samples_path)}
        spec_path = folder / "spec.json"
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(spec, handle)
        env = {**os.environ, "PRODREADY_LOCUST_SPEC": str(spec_path), "PYTHONUNBUFFERED": "1"}
        master_cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master", "--headless",
                      "--expect-workers", str(expected), "--expect-workers-max-wait", str(min(60, max_s)),
                      "-u", str(concurrency), "-r", str(max(concurrency, 100)),
                      "--run-time", f"{max_s}s", "--stop-timeout", "5",
                      "--master-bind-host", host, "--master-bind-port", str(port),
                      "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
        logs = [folder / "master.log", *(folder / f"worker{i}.log" for i in range(workers))]
        procs: list[subprocess.Popen[bytes]] = []
        started = time.monotonic()
        try:
            for cmd, log in zip([master_cmd, *[worker_command(host, port)] * workers], logs, strict=True):
                with open(log, "wb") as out:
                    procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, start_new_session=True))
            master = procs[0]
            try:
                code = master.wait(timeout=max_s + 90)
            except subprocess.TimeoutExpired:
                raise CannotJudge(f"the Locust run did not end within {max_s + 90}s; stopped it. "
                                  f"Master log: {_tail(logs[0], target)}") from None
        finally:
            for proc in procs:
                _stop(proc)
        samples = _read(samples_path)
        if len(samples) < total:
            raise CannotJudge(
                f"the Locust run ended (exit code {code}) with {len(samples)} of {total} samples "
                f"reported by its workers; cannot judge. Master log: {_tail(logs[0], target)}")
        shape = (f"Locust distributed mode: master + {expected} worker{'s' if expected != 1 else ''}"
                 f" ({workers} started here), {time.monotonic() - started:.1f}s")
        return samples, shape
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _read(path: Path) -> list[Sample]:
    if not path.exists():
        return []
    samples: list[Sample] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        report = json.loads(line)
        for seq, warm, elapsed, status, error in report["samples"]:
            samples.append(Sample(f"{report['index']}.{seq}", bool(warm),
                                  None if elapsed is None else float(elapsed),
                                  None if status is None else int(status), str(error)))
    return samples


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Workers leave when the master quits; whatever is left is ended, its children too."""
    try:
        proc.wait(timeout=5)
        return
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=5)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def _tail(log: Path, target: Target, lines: int = 8) -> str:
    try:
        text = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"
    return target.masker.text(text) or "(empty)"
