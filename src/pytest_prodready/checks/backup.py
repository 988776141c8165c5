"""backup.restore: a backup restores into a fresh database and its sanity queries pass.

The dump (`backup.dump`: pg_dump custom, tar or directory format, or plain SQL) is restored
with `--exit-on-error` (`ON_ERROR_STOP` for SQL) into a scratch database created for the run
on the server of `backup.dsn_env` (a throwaway PostgreSQL: never production), then each of
`backup.queries` must return a true first value (true, a non-zero number, a non-empty
text). The time from the start of the restore to the last query is reported as RTO
evidence, and fails when over `backup.max_rto_s`. The scratch database is dropped after.
"""

from __future__ import annotations

import re
import secrets as random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.exceptions import CannotJudge, CheckFailure, ConfigError
from pytest_prodready.family import Family

if TYPE_CHECKING:
    from pytest_prodready.masking import Masker

TAIL = 12  # stderr lines kept as evidence


def dsn_host(dsn: str) -> str:
    """The host a libpq DSN (URI or key=value) connects to; a socket path means this machine."""
    if dsn.startswith(("postgres://", "postgresql://")):
        host = urlsplit(dsn).hostname or ""
    else:
        found = re.search(r"(?:^|\s)host\s*=\s*'?([^'\s]+)", dsn)
        host = found.group(1) if found else ""
    if not host or host.startswith("/"):
        return "localhost"
    return host.split(",")[0]


def with_dbname(dsn: str, name: str) -> str:
    if dsn.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path="/" + name))
    return f"{dsn} dbname={name}"  # a later keyword wins in a libpq conninfo string


def dump_format(path: Path) -> str:
    if path.is_dir():
        return "directory"
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith(b"PGDMP"):
        return "custom"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "sql"


def dump_path(settings: Settings) -> Path:
    value = str(settings.get("backup.dump"))
    path = Path(value).expanduser()
    base = settings.config_file.parent if settings.config_file else Path.cwd()
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        raise CannotJudge(f"backup.dump {value!r} does not exist (looked at {path}; a relative "
                          "path is resolved against the config file's directory)")
    return path


def truthy(value: str) -> bool:
    text = value.strip()
    if text.lower() in ("", "f", "false", "0", "null"):
        return False
    try:
        return float(text) != 0
    except ValueError:
        return True


@dataclass
class Restore:
    """A restore as evidence: what was restored, with what, each step and its time."""

    dump: str
    format: str
    size: int
    masker: Masker
    client: str = ""
    server: str = ""
    dumped: list[str] = field(default_factory=list)  # "Dumped from/by" lines of the archive
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (what, seconds, result)
    stderr: str = ""
    rto_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        m = self.masker.text
        return {"restore": {
            "dump": self.dump, "format": self.format, "size_bytes": self.size,
            "client": self.client, "server": m(self.server), "dumped": self.dumped,
            "steps": [{"step": m(what), "seconds": round(t, 3), "result": m(result)}
                      for what, t, result in self.steps],
            "stderr": m(self.stderr), "rto_s": None if self.rto_s is None else round(self.rto_s, 3),
        }}

    def render(self) -> str:
        m = self.masker.text
        lines = [f"* restore of {self.dump} ({self.format} format, {self.size} bytes) with "
                 f"{self.client or 'the PostgreSQL client'} into {m(self.server) or 'the server'}"]
        lines += [f"  {line}" for line in self.dumped]
        lines += [f"  {t:7.2f} s  {m(what)}: {m(result)}" for what, t, result in self.steps]
        if self.stderr:
            lines.append("* stderr (last lines):")
            lines += [f"  | {m(line)}" for line in self.stderr.splitlines()[-TAIL:]]
        if self.rto_s is not None:
            lines.append(f"* RTO: {self.rto_s:.2f} s")
        return "\n".join(lines)


class Tools:
    """The PostgreSQL client tools, each run guarded (allowlist, budget) and bounded."""

    def __init__(self, ctx: Context, host: str, timeout_s: float) -> None:
        self.ctx, self.host, self.timeout_s = ctx, host, timeout_s
        self.bin: dict[str, str] = {}
        for name in ("psql", "pg_restore"):
            found = shutil.which(name)
            if not found:
                raise CannotJudge(f"{name} is not installed: backup.restore needs the PostgreSQL "
                                  "client (apt-get install postgresql-client)")
            self.bin[name] = found

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        self.ctx.target.guard(self.host)
        try:
            return subprocess.run([self.bin[tool], *args], capture_output=True, text=True,
                                  timeout=self.timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CannotJudge(f"{tool} did not finish within {self.timeout_s:g} s "
                              "(backup.timeout_s)") from None

    def psql(self, dsn: str, sql: str) -> subprocess.CompletedProcess[str]:
        return self.run("psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql)


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return (errors or lines or ["(no message)"])[0][:300]


def fail(ctx: Context, message: str, restore: Restore) -> NoReturn:
    masker = ctx.target.masker
    for fact in ctx.facts:
        refresh = getattr(fact, "refresh", None)  # a container's logs, as of now
        if callable(refresh):
            refresh()
    others = [masker.text(fact.render()) for fact in ctx.facts if fact is not restore]
    rendered = "\n".join([f"[{ctx.spec.id}] {masker.text(message)}", f"Fix: {ctx.spec.remediation}",
                          "", restore.render(), *others])
    raise CheckFailure(message, ctx.exchanges, remediation=ctx.spec.remediation,
                       check_id=ctx.spec.id, rendered=rendered)


@check("backup.restore", mode="active", severity="critical",
       title="a backup restores into a fresh database and its sanity queries pass",
       needs=("backup.dump", "backup.queries"),
       remediation="Test restores on a schedule: pg_restore --exit-on-error into a scratch "
                   "database with a client at least as new as the pg_dump that wrote the dump, "
                   "then check row counts and a known record; fix what breaks before you need it.")
def restore(ctx: Context) -> None:
    path = dump_path(ctx.settings)
    image = ctx.settings.get("backup.image")
    if ctx.settings.get("backup.dsn_env"):
        dsn = ctx.settings.secret("backup.dsn_env")
        if not dsn:
            raise CannotJudge("backup.dsn_env names an empty environment variable")
        restore_into(ctx, path, dsn, "a fresh database")
    elif image:
        with fresh_postgres(ctx, str(image)) as dsn:
            restore_into(ctx, path, dsn, f"a fresh {image} container")
    else:
        ctx.skip("not configured: set backup.dsn_env (a throwaway server) or backup.image "
                 "(a PostgreSQL image to start)")


@contextmanager
def fresh_postgres(ctx: Context, image: str) -> Iterator[str]:
    """A PostgreSQL container of `image` (official-image conventions: POSTGRES_PASSWORD, the
    server's arguments as its command) on the host network, on a free 127.0.0.1 port;
    yields its DSN once it answers a query; removed after."""
    from pytest_prodready.containers import LOOPBACK, ServiceSpec, engine_host, service

    ctx.target.guard(engine_host())
    ctx.target.guard(LOOPBACK)
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = int(sock.getsockname()[1])
    password = random.token_hex(16)
    timeout = float(ctx.settings.get("backup.start_timeout_s") or 60)
    spec = ServiceSpec(image=image, env={}, secrets={"POSTGRES_PASSWORD": password}, port=port,
                       start_timeout_s=timeout,
                       command=("postgres", "-p", str(port), "-c", f"listen_addresses={LOOPBACK}"))
    svc = service(spec, ctx.target.masker)
    ctx.add_fact(svc.run)
    dsn = f"postgresql://postgres:{password}@{LOOPBACK}:{port}/postgres"
    ctx.target.masker.add(dsn)
    try:
        svc.start()
        svc.wait_healthy()  # the port accepts
        psql = shutil.which("psql")
        if not psql:
            raise CannotJudge("psql is not installed: backup.restore needs the PostgreSQL client "
                              "(apt-get install postgresql-client)")
        deadline = time.monotonic() + timeout
        while True:
            ctx.target.guard(LOOPBACK)
            ready = subprocess.run([psql, "-X", "-Atq", "-d", dsn, "-c", "SELECT 1"],
                                   capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
            if ready.returncode == 0:
                svc.run.event("answers queries")
                break
            if time.monotonic() > deadline:
                svc.collect_logs()
                raise CannotJudge(f"{image} did not answer queries within {timeout:g} s: "
                                  f"{ctx.target.masker.text(_last_error(ready.stderr))}")
            time.sleep(0.1)
        yield dsn
    finally:
        svc.close()


def restore_into(ctx: Context, path: Path, dsn: str, into: str) -> None:
    """Restore `path` into a scratch database on the server of `dsn` and judge it."""
    masker = ctx.target.masker
    masker.add(dsn)
    for part in re.findall(r"(?:password\s*=\s*'?|://[^:/@]*:)([^'\s@]+)", dsn):
        masker.add(part)  # the password alone, wherever a tool quotes it
    fmt = dump_format(path)
    size = sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size
    evidence = Restore(dump=path.name, format=fmt, size=size, masker=masker)
    ctx.add_fact(evidence)
    tools = Tools(ctx, dsn_host(dsn), float(ctx.settings.get("backup.timeout_s") or 600))
    evidence.client = tools.run("pg_restore", "--version").stdout.strip()

    if fmt != "sql":
        listing = tools.run("pg_restore", "-l", str(path))
        if listing.returncode != 0:
            evidence.stderr = listing.stderr
            error = _last_error(listing.stderr)
            # A real archive's format version is 1.x: a newer one needs a newer client; any
            # other number is a damaged header.
            if re.search(r"unsupported version \(1\.\d+\)", error):
                raise CannotJudge(f"{evidence.client} cannot read this dump ({error}): use a client "
                                  "at least as new as the pg_dump that wrote it")
            fail(ctx, f"{path.name} is not a readable {fmt}-format archive: {error}", evidence)
        evidence.dumped = [line.lstrip("; ").strip() for line in listing.stdout.splitlines()
                           if line.startswith(";") and "Dumped " in line]

    version = tools.psql(dsn, "SHOW server_version")
    if version.returncode != 0:
        raise CannotJudge(f"cannot connect with backup.dsn_env: {masker.text(_last_error(version.stderr))}")
    evidence.server = f"PostgreSQL {version.stdout.strip()} at {dsn_host(dsn)}"
    scratch = f"prodready_restore_{random.token_hex(4)}"
    made = tools.psql(dsn, f'CREATE DATABASE "{scratch}"')
    if made.returncode != 0:
        raise CannotJudge(f"cannot create a scratch database on backup.dsn_env's server: "
                          f"{masker.text(_last_error(made.stderr))}")
    target_dsn = with_dbname(dsn, scratch)
    masker.add(target_dsn)
    try:
        started = time.monotonic()
        if fmt == "sql":
            done = tools.run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                             "-d", target_dsn, "-f", str(path))
            what = "psql -v ON_ERROR_STOP=1 --single-transaction -f"
        else:
            done = tools.run("pg_restore", "--exit-on-error", "--no-owner", "--no-privileges",
                             "-d", target_dsn, str(path))
            what = "pg_restore --exit-on-error --no-owner --no-privileges"
        took = time.monotonic() - started
        evidence.stderr = done.stderr
        if done.returncode != 0:
            evidence.steps.append((what, took, f"exit code {done.returncode}"))
            fail(ctx, f"restoring {path.name} failed after {took:.2f} s ({what}): "
                      f"{_last_error(done.stderr)}", evidence)
        evidence.steps.append((what, took, "ok"))
        results = []
        for query in ctx.settings.get("backup.queries"):
            asked = time.monotonic()
            answer = tools.psql(target_dsn, str(query))
            first = answer.stdout.strip().splitlines()[0] if answer.stdout.strip() else ""
            value = first.split("|")[0]
            if answer.returncode != 0:
                evidence.steps.append((query, time.monotonic() - asked, "error"))
                fail(ctx, f"after the restore, the sanity query {query!r} failed: "
                          f"{_last_error(answer.stderr)}", evidence)
            evidence.steps.append((query, time.monotonic() - asked, value or "(no rows)"))
            if not truthy(value):
                fail(ctx, f"after the restore, the sanity query {query!r} returned "
                          f"{value or 'no rows'!s}, not a true value", evidence)
            results.append(f"{query} -> {value}")
        rto = evidence.rto_s = time.monotonic() - started
        limit = ctx.settings.get("backup.max_rto_s")
        if limit is not None and rto > float(limit):
            fail(ctx, f"{path.name} restored and passed its sanity queries, but took {rto:.2f} s: "
                      f"over backup.max_rto_s ({float(limit):g} s)", evidence)
        dumped = f", d{evidence.dumped[0][1:]}" if evidence.dumped else ""
        ctx.passed(f"{path.name} ({fmt} format{dumped}) restored into {into} and "
                   f"{len(results)} sanity quer{'y' if len(results) == 1 else 'ies'} passed "
                   f"({'; '.join(results)}): RTO {rto:.2f} s")
    finally:
        tools.psql(dsn, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def _hosts(settings: Settings) -> list[str]:
    dsn = settings.secret("backup.dsn_env")
    if dsn:
        return [dsn_host(dsn)]
    if settings.get("backup.image"):
        from pytest_prodready.containers import LOOPBACK, engine_host

        return [LOOPBACK, engine_host()]
    return []


def _validate(settings: Settings) -> None:
    if settings.get("backup.dsn_env") and settings.get("backup.image"):
        raise ConfigError("backup.image", "set backup.dsn_env (a server to restore into) or "
                                          "backup.image (a PostgreSQL image to start), not both")


FAMILY = Family(
    name="backup",
    config={"backup": schema.Table({
        "dump": schema.file_path,
        "dsn_env": schema.env_name,
        "queries": schema.list_of(schema.bounded_text(2000)),
        "max_rto_s": schema.number(0.1, 86_400),
        "timeout_s": schema.number(1, 86_400),
        "image": schema.bounded_text(300),
        "start_timeout_s": schema.number(1, 3600),
    })},
    hosts=_hosts,
    validate=_validate,
)
