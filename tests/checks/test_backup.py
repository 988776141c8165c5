"""backup.restore: a good dump restores and passes; a corrupt one (and a failing sanity query) fails.

A real PostgreSQL (Debian's `postgresql`, initdb'd by this module on an ephemeral
127.0.0.1 port, run as the `postgres` user when we are root) holds a source database; the
dumps are made by the real pg_dump, and restored by the check into scratch databases on the
same server.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready.checking import Result, run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target

PASSWORD = "restore-pw-8c1e55b0a3"
QUERIES = ["SELECT count(*) = 3 FROM users", "SELECT 1 FROM users WHERE email = 'bob@example.com'"]


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if not initdb:
        pytest.fail("PostgreSQL is not installed (no initdb): run scripts/install-test-deps.sh")
    return Path(initdb).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        cmd = ["setpriv", f"--reuid={pwd.getpwnam('postgres').pw_uid}",
               f"--regid={pwd.getpwnam('postgres').pw_gid}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kwargs)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A PostgreSQL on 127.0.0.1 with password auth; yields its maintenance DSN."""
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="prodready-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    pwfile = base / "pw"
    pwfile.write_text(PASSWORD)
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for path in (base, sockets, pwfile):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    # initdb is the slow part: once per machine (under a lock: xdist workers), then copied.
    template = Path(f"/tmp/prodready-backup-pg-{bindir().parent.name}")
    with open("/tmp/prodready-backup-pg.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / "PG_VERSION").exists():
            shutil.rmtree(template, ignore_errors=True)
            as_postgres([str(bindir() / "initdb"), "-D", str(template), "-U", "postgres",
                         "-A", "scram-sha-256", f"--pwfile={pwfile}", "--no-sync"])
    subprocess.run(["cp", "-a", str(template), str(data)], check=True)
    port = free_port()
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={pwd.getpwnam('postgres').pw_uid}",
         f"--regid={pwd.getpwnam('postgres').pw_gid}", "--clear-groups"] * (os.geteuid() == 0)
        + [str(bindir() / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
           "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    try:
        for _ in range(100):
            ready = subprocess.run(["psql", "-X", "-d", dsn, "-c", "SELECT 1"], capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the test PostgreSQL did not start")
        yield dsn
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown, by PID
        proc.wait(10)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def dumps(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """good.dump (custom), good.sql (plain), corrupt.dump (the custom one cut mid-data)."""
    base = tmp_path_factory.mktemp("dumps")
    subprocess.run(["psql", "-X", "-q", "-d", server, "-c", "CREATE DATABASE app"], check=True)
    app = server.rsplit("/", 1)[0] + "/app"
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", app, "-c",
                    "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL);"
                    "INSERT INTO users (email) SELECT 'user' || g || '@example.com' "
                    "FROM generate_series(1, 2000) g;"
                    "DELETE FROM users WHERE id > 2;"
                    "INSERT INTO users (email) VALUES ('bob@example.com');"
                    # Enough data that a cut in the second half lands in a data block, past
                    # the archive's table of contents.
                    "CREATE TABLE events AS SELECT g AS id, md5(g::text) AS body "
                    "FROM generate_series(1, 20000) g;"], check=True)
    good = base / "good.dump"
    subprocess.run(["pg_dump", "-Fc", "-Z0", "-f", str(good), app], check=True)
    sql = base / "good.sql"
    subprocess.run(["pg_dump", "--no-owner", "-f", str(sql), app], check=True)
    corrupt = base / "corrupt.dump"
    data = good.read_bytes()
    corrupt.write_bytes(data[: len(data) * 2 // 3])
    return {"good": good, "sql": sql, "corrupt": corrupt}


@pytest.fixture
def run(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    made: list[Target] = []

    def runner(dump: Path | str, config_file: Path | None = None, **overrides: Any) -> Result:
        backup = {"dump": str(dump), "dsn_env": "RESTORE_DSN", "queries": QUERIES, **overrides}
        settings = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9", "backup": backup},
                            secrets={"backup.dsn_env": server}, sources={}, config_file=config_file)
        target = Target(settings)
        made.append(target)
        return run_check("backup.restore", target)

    yield runner
    for target in made:
        target.close()


def databases(server: str) -> list[str]:
    out = subprocess.run(["psql", "-X", "-At", "-d", server, "-c", "SELECT datname FROM pg_database"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_a_good_custom_dump_restores(run: Callable[..., Result], dumps: dict[str, Path],
                                     server: str) -> None:
    result = run(dumps["good"])
    assert result.outcome == "passed", result.detail
    assert result.message.startswith("good.dump (custom format, dumped from database version: ")
    assert ("restored into a fresh database and 2 sanity queries passed "
            "(SELECT count(*) = 3 FROM users -> t; "
            "SELECT 1 FROM users WHERE email = 'bob@example.com' -> 1): RTO ") in result.message
    restore = result.evidence()[0]["restore"]
    assert restore["rto_s"] > 0
    assert not [name for name in databases(server) if name.startswith("prodready_restore_")]


def test_a_good_sql_dump_restores(run: Callable[..., Result], dumps: dict[str, Path]) -> None:
    result = run(dumps["sql"])
    assert result.outcome == "passed", result.detail
    assert result.message.startswith("good.sql (sql format) restored into a fresh database")


def test_a_corrupt_dump_fails(run: Callable[..., Result], dumps: dict[str, Path], server: str) -> None:
    result = run(dumps["corrupt"])
    assert result.outcome == "failed", result.message
    assert result.message.startswith("restoring corrupt.dump failed after ")
    assert "(pg_restore --exit-on-error --no-owner --no-privileges): pg_restore: error: " in result.message
    assert PASSWORD not in result.detail and PASSWORD not in str(result.evidence())
    assert not [name for name in databases(server) if name.startswith("prodready_restore_")]


def test_a_failing_sanity_query_fails(run: Callable[..., Result], dumps: dict[str, Path]) -> None:
    result = run(dumps["good"], queries=["SELECT count(*) FROM users WHERE email = 'carol@example.com'"])
    assert result.outcome == "failed", result.message
    assert result.message == ("after the restore, the sanity query \"SELECT count(*) FROM users "
                              "WHERE email = 'carol@example.com'\" returned 0, not a true value")


def test_over_the_rto_budget_fails(run: Callable[..., Result], dumps: dict[str, Path]) -> None:
    result = run(dumps["good"], max_rto_s=0.1, queries=["SELECT true FROM pg_sleep(0.2)"])
    assert result.outcome == "failed", result.message
    assert "over backup.max_rto_s (0.1 s)" in result.message


def test_not_a_dump_at_all_fails(run: Callable[..., Result], tmp_path: Path) -> None:
    junk = tmp_path / "latest.dump"
    junk.write_bytes(b"PGDMP" + os.urandom(300))
    result = run(junk)
    assert result.outcome == "failed", result.message
    assert result.message.startswith("latest.dump is not a readable custom-format archive: ")


def test_a_dump_from_a_newer_pg_dump_cannot_be_judged(run: Callable[..., Result],
                                                      dumps: dict[str, Path], tmp_path: Path) -> None:
    """Archive format 1.99 (a future pg_dump): not a broken backup, a too-old client; says so."""
    newer = tmp_path / "newer.dump"
    data = bytearray(dumps["good"].read_bytes())
    data[6] = 99  # PGDMP, then the format version: major, minor, revision
    newer.write_bytes(bytes(data))
    result = run(newer)
    assert result.outcome == "error", result.message
    assert "cannot read this dump (pg_restore: error: unsupported version (1.99) in file header): " \
           "use a client at least as new as the pg_dump that wrote it" in result.message


def test_a_relative_dump_is_read_beside_the_config_file(run: Callable[..., Result],
                                                        dumps: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "backups").mkdir()
    shutil.copy(dumps["good"], tmp_path / "backups" / "latest.dump")
    result = run("backups/latest.dump", config_file=tmp_path / "prodready.toml")
    assert result.outcome == "passed", result.detail
    missing = run("backups/none.dump", config_file=tmp_path / "prodready.toml")
    assert missing.outcome == "error"
    assert missing.message == (f"cannot judge: backup.dump 'backups/none.dump' does not exist (looked "
                               f"at {tmp_path}/backups/none.dump; a relative path is resolved against "
                               "the config file's directory)")


# -- into a fresh PostgreSQL container (backup.image) ---------------------------------------------
@pytest.fixture(scope="module")
def pg_image() -> str:
    """A PostgreSQL image built from this machine's server (no registry here)."""
    from tests.checks.test_container import engine
    from tests.targets.images import ensure_postgres_image

    return ensure_postgres_image(engine())


@pytest.fixture
def run_in_image(pg_image: str) -> Iterator[Callable[..., Result]]:
    made: list[Target] = []

    def runner(dump: Path) -> Result:
        backup = {"dump": str(dump), "image": pg_image, "queries": QUERIES}
        settings = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9", "backup": backup},
                            secrets={}, sources={})
        target = Target(settings)
        made.append(target)
        return run_check("backup.restore", target)

    yield runner
    for target in made:
        target.close()


def test_a_good_dump_restores_into_a_fresh_container(run_in_image: Callable[..., Result],
                                                     dumps: dict[str, Path], pg_image: str) -> None:
    result = run_in_image(dumps["good"])
    assert result.outcome == "passed", result.detail
    assert f"restored into a fresh {pg_image} container and 2 sanity queries passed" in result.message
    events = [e["event"] for fact in result.evidence() if "container" in fact
              for e in fact["container"]["events"]]
    assert "answers queries" in events
    from tests.checks.test_container import engine

    assert not engine().containers.list(all=True, filters={"ancestor": pg_image})


def test_a_corrupt_dump_fails_in_a_fresh_container(run_in_image: Callable[..., Result],
                                                   dumps: dict[str, Path]) -> None:
    result = run_in_image(dumps["corrupt"])
    assert result.outcome == "failed", result.message
    assert result.message.startswith("restoring corrupt.dump failed after ")
    # The container's timeline and logs are evidence; its generated password is masked.
    assert "(host network; env: POSTGRES_PASSWORD)" in result.detail
    assert "database system is ready to accept connections" in result.detail
    assert not re.search(r"(postgres:|PASSWORD=)[0-9a-f]{32}", result.detail + str(result.evidence()))


def test_dsn_and_image_together_are_a_config_error() -> None:
    from pytest_prodready import family
    from pytest_prodready.exceptions import ConfigError

    settings = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9",
                                "backup": {"dump": "x.dump", "dsn_env": "RESTORE_DSN", "image": "postgres:16",
                                           "queries": QUERIES}},
                        secrets={"backup.dsn_env": "postgresql://127.0.0.1/postgres"}, sources={})
    with pytest.raises(ConfigError) as raised:
        family.validate(settings)
    assert ("backup.image", "set backup.dsn_env (a server to restore into) or backup.image "
                            "(a PostgreSQL image to start), not both") in raised.value.problems
