"""Real MariaDB servers on loopback for network.mysql_offers_tls: one datadir made once by
mariadb-install-db, copied for each mariadbd (ssl off; ssl on with a throw-away
certificate made by `openssl req`; ssl off with grants for 'localhost' only, so that a TCP
client from 127.0.0.1 gets the ERR greeting 1130 "Host ... is not allowed"), each on its
own 127.0.0.1 port, stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.tls_servers import free_ports


def mariadb_binaries() -> tuple[str, str] | None:
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd")
                                           else None)
    install = shutil.which("mariadb-install-db")
    return (server, install) if server and install else None


@dataclass
class MariaDB:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            return bool(sock.recv(1))
    except OSError:
        return False


def _start(server: str, datadir: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    args = [server, "--no-defaults", f"--datadir={datadir}", f"--socket={datadir}/mysqld.sock",
            f"--pid-file={datadir}/mysqld.pid", f"--port={port}", "--bind-address=127.0.0.1",
            "--skip-name-resolve", "--innodb-buffer-pool-size=8M", "--skip-log-bin",
            "--performance-schema=OFF", *extra]
    if os.geteuid() == 0:
        args.append("--user=root")  # mariadbd refuses to run as root otherwise
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@contextlib.contextmanager
def run_mariadb_set() -> Iterator[dict[str, MariaDB]]:
    """{'plain': ssl off, 'tls': ssl on, 'refusing': no grant for 127.0.0.1}."""
    found = mariadb_binaries()
    if found is None:
        raise RuntimeError("mariadb-server is not installed: run scripts/install-test-deps.sh")
    server, install = found
    with tempfile.TemporaryDirectory(prefix="prodready-mariadb-") as work:
        template = os.path.join(work, "template")
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([install, "--no-defaults", f"--datadir={template}", "--skip-test-db",
                        "--auth-root-authentication-method=normal", *user],
                       check=True, capture_output=True, timeout=120)
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        roles = {"plain": ["--skip-ssl"], "tls": [f"--ssl-cert={cert}", f"--ssl-key={key}"],
                 "refusing": ["--skip-ssl"]}
        ports = dict(zip(roles, free_ports(len(roles)), strict=True))
        running: dict[str, MariaDB] = {}
        try:
            for role, extra in roles.items():
                datadir = os.path.join(work, role)
                shutil.copytree(template, datadir)
                if role == "refusing":
                    # --skip-name-resolve makes a TCP client '127.0.0.1', which no grant names.
                    subprocess.run([server, "--no-defaults", f"--datadir={datadir}", "--bootstrap",
                                    "--skip-log-bin", *user],
                                   input=b"DELETE FROM mysql.global_priv WHERE host <> 'localhost';\n",
                                   check=True, capture_output=True, timeout=120)
                running[role] = MariaDB(ports[role], _start(server, datadir, ports[role], extra))
            deadline = time.monotonic() + 60
            for role, db in running.items():
                while not _greets(db.port):
                    if db.process.poll() is not None:
                        error = db.process.stderr.read().decode() if db.process.stderr else ""
                        raise RuntimeError(f"mariadbd ({role}) exited with {db.process.returncode}: "
                                           f"{error[-2000:]}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"mariadbd ({role}) does not answer after 60s")
                    time.sleep(0.1)
            yield running
        finally:
            for db in running.values():
                db.process.terminate()  # by its PID (SIGTERM), then reaped
            for db in running.values():
                try:
                    db.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    db.process.kill()
                    db.process.wait(timeout=10)
