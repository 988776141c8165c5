"""Real redis-server and PostgreSQL processes on loopback, for the network.* tests.

Both come from Debian's packages (scripts/install-test-deps.sh): `redis-server`, and
PostgreSQL's `initdb`/`pg_ctl` (the `postgresql` package; found on PATH or under
/usr/lib/postgresql/<version>/bin). Each server gets its own directory, an ephemeral port
picked just before it starts, no persistence, and is stopped by its PID.

PostgreSQL refuses to run as root: as root, the cluster is made and run by the `postgres`
user that the package creates (or `prodready-pg`, created with useradd when neither
exists); as any other user, by that user.

A relay (`Relay`) forwards a loopback port to a server from a chosen source address: Redis
7 serves anonymous clients in protected mode only when they come from 127.0.0.1 or ::1,
so a relay bound to 127.0.0.3 is how a "remote" client is made on one machine. The bytes
the check reads are the real server's.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.tls_certs import self_signed
from tests.tls_servers import free_ports

START_TIMEOUT_S = 20.0


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes] | None,
                  timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on {host}:{port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:g}s")


def stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop one process (not our child: pg_ctl's daemonized postmaster) by its PID and wait
    for it to go."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# -- Redis ----------------------------------------------------------------------------------------
def redis_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                            if os.path.exists("/usr/bin/redis-server") else None)
    if not found:
        raise RuntimeError("redis-server is not installed: run scripts/install-test-deps.sh")
    return found


@dataclass
class Redis:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


@contextlib.contextmanager
def run_redis(*, password: str | None = None, protected_mode: bool = False,
              host: str = "127.0.0.1") -> Iterator[Redis]:
    """One redis-server: open (no password, protected mode off), with requirepass, or in
    protected mode without a password."""
    port = free_ports(1)[0]
    with tempfile.TemporaryDirectory(prefix="prodready-redis-") as workdir:
        args = [redis_binary(), "--port", str(port), "--bind", host, "--save", "",
                "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
                "--protected-mode", "yes" if protected_mode else "no", "--loglevel", "warning",
                "--logfile", os.path.join(workdir, "redis.log")]
        if password:
            args += ["--requirepass", password]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(host, port, process)
            yield Redis(host, port, process)
        finally:
            # Our own child: signalled by its PID, then reaped (a zombie would still "exist").
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# -- a relay from another source address ---------------------------------------------------------
class Relay:
    """127.0.0.1:<port> forwarded to `upstream`, connecting from `source` (e.g. 127.0.0.3)."""

    def __init__(self, upstream: tuple[str, int], source: str) -> None:
        self.upstream, self.source = upstream, source
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _pipe_pair(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5, source_address=(self.source, 0))
        except OSError:
            client.close()
            return
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            src.settimeout(10)
            while chunk := src.recv(4096):
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()


# -- PostgreSQL -----------------------------------------------------------------------------------
def pg_bindir() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (initdb not found): run "
                           "scripts/install-test-deps.sh")
    return Path(versions[-1]).parent


def pg_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: None for the current (non-root) user; as root, a system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "prodready-pg"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "prodready-pg"], check=True, capture_output=True, timeout=30)
    return pwd.getpwnam("prodready-pg")


def _as_user(args: Sequence[str], user: pwd.struct_passwd | None, **kw: object) -> None:
    extra: dict[str, object] = {"user": user.pw_uid, "group": user.pw_gid} if user else {}
    subprocess.run(list(args), check=True, capture_output=True, timeout=60, **extra, **kw)  # type: ignore[call-overload]


@dataclass
class Postgres:
    port: int
    datadir: Path
    pid: int

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


# pg_hba.conf set-ups (the local socket is off: only TCP on 127.0.0.1).
HBA_PLAINTEXT_TRUST = "host all all 127.0.0.1/32 trust\n"
HBA_PLAINTEXT_SCRAM = "host all all 127.0.0.1/32 scram-sha-256\n"
HBA_HOSTSSL_ONLY = "hostssl all all 127.0.0.1/32 scram-sha-256\n"


@contextlib.contextmanager
def pg_template() -> Iterator[tuple[Path, pwd.struct_passwd | None]]:
    """One initdb'd cluster directory, copied for each server (initdb is the slow part)."""
    user = pg_user()
    base = Path(tempfile.mkdtemp(prefix="prodready-pg-"))
    try:
        if user:
            os.chown(base, user.pw_uid, user.pw_gid)
        template = base / "template"
        _as_user([str(pg_bindir() / "initdb"), "-D", str(template), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale", "C"], user)
        yield base, user
    finally:
        shutil.rmtree(base, ignore_errors=True)


def start_postgres(base: Path, user: pwd.struct_passwd | None, name: str, *, hba: str,
                   ssl: bool) -> Postgres:
    """A copy of the template cluster with this pg_hba.conf and ssl on (throwaway
    self-signed certificate) or off, started by pg_ctl on an ephemeral port."""
    datadir = base / name
    _as_user(["cp", "-a", str(base / "template"), str(datadir)], user)
    (datadir / "pg_hba.conf").write_text(hba)
    conf = ["listen_addresses = '127.0.0.1'", "unix_socket_directories = ''", "fsync = off",
            f"ssl = {'on' if ssl else 'off'}", "max_connections = 10", "shared_buffers = 16MB"]
    if ssl:
        cert, key = self_signed(("localhost", "127.0.0.1")).write(datadir, "server")
        os.chmod(key, 0o600)
        conf += [f"ssl_cert_file = '{cert}'", f"ssl_key_file = '{key}'"]
        if user:
            for path in (cert, key):
                os.chown(path, user.pw_uid, user.pw_gid)
    with open(datadir / "postgresql.conf", "a") as handle:
        handle.write("\n".join(conf) + "\n")
    if user:
        os.chown(datadir / "pg_hba.conf", user.pw_uid, user.pw_gid)
    port = free_ports(1)[0]
    _as_user([str(pg_bindir() / "pg_ctl"), "-D", str(datadir), "-o", f"-p {port}", "-l",
              str(datadir / "server.log"), "-w", "-t", "30", "start"], user)
    pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    server = Postgres(port, datadir, pid)
    try:
        wait_for_port("127.0.0.1", port, None)
    except RuntimeError:
        stop_pid(pid, signal.SIGINT)
        raise
    return server


@contextlib.contextmanager
def run_postgres(base: Path, user: pwd.struct_passwd | None, name: str, *, hba: str,
                 ssl: bool) -> Iterator[Postgres]:
    server = start_postgres(base, user, name, hba=hba, ssl=ssl)
    try:
        yield server
    finally:
        stop_pid(server.pid, signal.SIGINT)  # fast shutdown


@contextlib.contextmanager
def run_postgres_set(base: Path, user: pwd.struct_passwd | None,
                     specs: Sequence[tuple[str, str, bool]]) -> Iterator[dict[str, Postgres]]:
    """Several clusters (name, pg_hba.conf, ssl), started and stopped in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        futures = {name: pool.submit(start_postgres, base, user, name, hba=hba, ssl=ssl)
                   for name, hba, ssl in specs}
        started: dict[str, Postgres] = {}
        errors = []
        for name, future in futures.items():
            try:
                started[name] = future.result()
            except Exception as exc:  # stop the others before reporting
                errors.append(exc)
    try:
        if errors:
            raise errors[0]
        yield started
    finally:
        # Immediate shutdown (SIGQUIT: no checkpoint, the clusters are thrown away), to all
        # first, then wait for each.
        for server in started.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGQUIT)
        for server in started.values():
            stop_pid(server.pid, signal.SIGQUIT)
