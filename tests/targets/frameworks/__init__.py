"""Real web frameworks serving their own debug and error pages on 127.0.0.1.

Each app has the same three routes, so the same config probes all of them:

- ``/`` answers 200;
- ``/items/<id>`` looks the id up with ``int(id)``: a non-numeric id raises;
- ``/search`` reads ``int(page)`` from the query: a missing or odd ``page`` raises.

Only the framework's debug switch differs between the defective target (debug on: the
framework's own debug page) and the correct one (debug off: its plain error page).
Frameworks with process-wide settings (Django, Express) run in a subprocess, started with
an ephemeral port it reports on stdout and stopped by its PID; the others run in a thread.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
# Each app is asked for these; see the module docstring.
PAGES = ["GET /items/1", "GET /search?q=shoes"]
READY = "LISTENING "


@contextmanager
def serve_process(argv: Sequence[str], *, env: dict[str, str] | None = None,
                  cwd: Path = REPO, timeout_s: float = 30.0) -> Iterator[str]:
    """Run a server that prints 'LISTENING <port>' once bound to 127.0.0.1; yield its URL.

    Stopped by its PID (SIGTERM, then SIGKILL) when the block ends.
    """
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(list(argv), cwd=cwd, env={**os.environ, **(env or {})},
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            port = _read_port(proc, timeout_s)
            if port is None:
                proc.kill()
                proc.wait(5)
                stderr.seek(0)
                raise RuntimeError(f"{' '.join(argv)} did not start (exit {proc.returncode}):\n"
                                   + stderr.read().decode("utf-8", "replace")[-3000:])
            yield f"http://127.0.0.1:{port}"
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, 15)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, 9)
                    proc.wait(5)
            if proc.stdout:
                proc.stdout.close()


def _read_port(proc: subprocess.Popen[str], timeout_s: float) -> int | None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = proc.stdout.readline()
            if not line:  # the process ended before binding
                return None
            if line.startswith(READY):
                return int(line[len(READY):].strip())
    return None


def announce(port: int) -> None:
    """What a subprocess server prints once it listens (see serve_process)."""
    print(f"{READY}{port}", flush=True)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on an ephemeral 127.0.0.1 port."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off",
                            server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def npm_installed(folder: Path, package: str, command: str = "install") -> None:
    """`npm <command>` in `folder` (from its package-lock.json) unless `package` is already in
    its node_modules. Under a file lock: pytest-xdist workers may all get here at once."""
    import fcntl
    import shutil

    marker = folder / "node_modules" / package / "package.json"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: run scripts/install-test-deps.sh (installs node and npm)")
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            subprocess.run([npm, command, "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                           check=True, timeout=300, stdout=subprocess.DEVNULL)
