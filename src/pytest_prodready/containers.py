"""Run the service's image locally (testcontainers, the `containers` extra) and record what
it did: the engine, the container's timeline, its exit code and its logs.

The container runs on the HOST network and the service is expected to listen on
127.0.0.1:`container.port`: nothing here connects to a bridge or container address. The
checks in checks/container.py drive it: send SIGTERM themselves (testcontainers' `stop()`
is a force-remove, i.e. SIGKILL), wait for an exit instead of readiness, inspect the user.

Nothing here is imported until a container check runs (docker and testcontainers are
heavy, and optional). With no engine, or without the extra, every entry point raises
CannotJudge with one sentence naming what is missing, never a traceback.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_prodready.exceptions import CannotJudge

if TYPE_CHECKING:
    from pytest_prodready.config import Settings
    from pytest_prodready.masking import Masker

LOOPBACK = "127.0.0.1"
LOG_TAIL = 40  # log lines kept as evidence
START_SCRIPT = "scripts/start-dockerd.sh"


def engine_host() -> str:
    """The host the Docker engine is reached at: DOCKER_HOST's for tcp://, else this machine."""
    value = os.environ.get("DOCKER_HOST", "")
    if value.startswith(("tcp://", "http://", "https://", "ssh://")):
        return urlsplit(value).hostname or LOOPBACK
    return LOOPBACK


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = text[-1] if text else ""
    # docker-py wraps the socket error several levels deep; the innermost words say it.
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError"):
        if marker in str(exc):
            reason = marker.replace("Error", "").replace("FileNotFound", "no such socket")
            reason = {"ConnectionRefused": "connection refused",
                      "Permission": "permission denied"}.get(reason, reason)
            break
    return reason[:200] or type(exc).__name__


def client() -> Any:
    """A docker client that has answered a ping, or CannotJudge naming what is missing."""
    # Ryuk (testcontainers' reaper) is an image pulled from a registry; the checks remove
    # their own containers, so it is off unless the user asked for it.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        docker = importlib.import_module("docker")
        importlib.import_module("testcontainers.core.container")
    except ImportError:
        raise CannotJudge("the container checks need testcontainers: "
                          "pip install 'pytest-prodready[containers]'") from None
    try:
        made = docker.from_env(timeout=30)
        made.ping()
    except Exception as exc:  # docker-py raises DockerException, requests' and socket errors
        raise CannotJudge(
            f"no Docker engine answers at {engine_address()} ({_short(exc)}): install docker.io "
            f"and start dockerd (as root: dockerd --bridge=none --iptables=false, or "
            f"{START_SCRIPT}), or set DOCKER_HOST") from None
    return made


@dataclass(frozen=True)
class ServiceSpec:
    """What to run: the image, its env (plain and secret), where it listens."""

    image: str
    env: Mapping[str, str]
    secrets: Mapping[str, str]  # secret env var name -> value (from the environment)
    port: int
    health_path: str = ""
    start_timeout_s: float = 30.0
    command: Sequence[str] = ()  # arguments to the image's entrypoint (its CMD when empty)

    @staticmethod
    def from_settings(settings: Settings, *, with_secrets: bool = True) -> ServiceSpec:
        env = {str(k): str(v) for k, v in (settings.get("container.env") or {}).items()}
        names = list(settings.get("container.secrets") or [])
        secrets: dict[str, str] = {}
        if with_secrets:
            missing = [name for name in names if not os.environ.get(name)]
            if missing:
                raise CannotJudge(f"container.secrets names {', '.join(missing)}, not set in this "
                                  "environment: the service cannot be started with its secrets")
            secrets = {name: os.environ[name] for name in names}
        return ServiceSpec(image=str(settings.get("container.image")), env=env, secrets=secrets,
                           port=int(settings.get("container.port") or 8080),
                           health_path=str(settings.get("container.health_path") or ""),
                           start_timeout_s=float(settings.get("container.start_timeout_s") or 30))


@dataclass
class ContainerRun:
    """One container's life as evidence: what ran, what happened when, how it ended."""

    image: str
    env_names: Sequence[str]
    masker: Masker
    user: str | None = None  # the image config's User
    events: list[tuple[float, str]] = field(default_factory=list)
    exit_code: int | None = None
    logs: str = ""
    started: float = field(default_factory=time.monotonic)
    # Fetches the latest logs while the container lives (set by its Service).
    refresh: Callable[[], object] | None = field(default=None, compare=False, repr=False)

    def event(self, text: str) -> None:
        self.events.append((time.monotonic() - self.started, text))

    def log_tail(self) -> str:
        return self.masker.text("\n".join(self.logs.splitlines()[-LOG_TAIL:]))

    def to_dict(self) -> dict[str, Any]:
        return {"container": {
            "image": self.image, "env": list(self.env_names), "user": self.user,
            "events": [{"t_s": round(t, 3), "event": self.masker.text(text)} for t, text in self.events],
            "exit_code": self.exit_code, "logs": self.log_tail(),
        }}

    def render(self) -> str:
        lines = [f"* container {self.image} (host network; env: {', '.join(self.env_names) or 'none'})"]
        lines += [f"  {t:7.2f} s  {self.masker.text(text)}" for t, text in self.events]
        if self.exit_code is not None:
            lines.append(f"* exit code {self.exit_code}")
        tail = self.log_tail()
        if tail:
            lines.append("* logs (last lines):")
            lines += [f"  | {line}" for line in tail.splitlines()]
        return "\n".join(lines)


class Service:
    """A started container of a ServiceSpec (testcontainers), removed by close()."""

    def __init__(self, spec: ServiceSpec, run: ContainerRun, docker_client: Any) -> None:
        self.spec, self.run, self.client = spec, run, docker_client
        run.refresh = self.collect_logs
        self._tc: Any = None

    def start(self) -> Service:
        tc = importlib.import_module("testcontainers.core.container")
        container = tc.DockerContainer(self.spec.image, docker_client_kw={"timeout": 30})
        for name, value in {**self.spec.env, **self.spec.secrets}.items():
            container = container.with_env(name, value)
        container = container.with_kwargs(network_mode="host")
        if self.spec.command:
            container = container.with_command(list(self.spec.command))
        try:
            self._tc = container.start()
        except Exception as exc:
            raise CannotJudge(f"could not start {self.spec.image}: {_short(exc)}") from None
        self.run.event(f"started (id {self.wrapped.short_id})")
        return self

    @property
    def url(self) -> str:
        """The service's base URL on the host network."""
        return f"http://{LOOPBACK}:{self.spec.port}"

    @property
    def wrapped(self) -> Any:
        return self._tc.get_wrapped_container()

    def status(self) -> tuple[str, int | None]:
        self.wrapped.reload()
        state = self.wrapped.attrs.get("State", {})
        code = state.get("ExitCode") if state.get("Status") in ("exited", "dead") else None
        return str(state.get("Status", "")), code

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code once it exits, or None if still running after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            _status, code = self.status()
            if code is not None:
                self.run.exit_code = code
                self.run.event(f"exited with code {code}")
                return code
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def wait_healthy(self) -> None:
        """Until the health path answers 2xx (or the port accepts, without one)."""
        deadline = time.monotonic() + self.spec.start_timeout_s
        last = ""
        while time.monotonic() < deadline:
            _status, code = self.status()
            if code is not None:
                self.run.exit_code = code
                self.run.event(f"exited with code {code} before it was healthy")
                self.collect_logs()
                raise CannotJudge(f"{self.spec.image} exited with code {code} before it answered "
                                  f"on {LOOPBACK}:{self.spec.port}; its log: {self.last_log_line()}")
            try:
                if self.spec.health_path:
                    answer = http_get(self.spec.port, self.spec.health_path, timeout_s=2)
                    if 200 <= answer.status < 300:
                        self.run.event(f"healthy: GET {self.spec.health_path} -> {answer.status}")
                        return
                    last = f"GET {self.spec.health_path} -> {answer.status}"
                else:
                    with socket.create_connection((LOOPBACK, self.spec.port), timeout=2):
                        self.run.event(f"accepting connections on {LOOPBACK}:{self.spec.port}")
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        self.collect_logs()
        raise CannotJudge(f"{self.spec.image} did not become healthy on {LOOPBACK}:{self.spec.port} "
                          f"within {self.spec.start_timeout_s:g} s (last: {last or 'no answer'})")

    def kill(self, signal: str) -> None:
        self.wrapped.kill(signal=signal)
        self.run.event(f"sent {signal}")

    def collect_logs(self) -> str:
        if self._tc is None:  # removed: the logs collected at close are the last ones
            return self.run.logs
        # The container may be gone: logs are evidence, not essential.
        with contextlib.suppress(Exception):
            self.run.logs = self.wrapped.logs(tail=LOG_TAIL * 2).decode("utf-8", "replace")
        return self.run.logs

    def last_log_line(self) -> str:
        lines = self.run.log_tail().strip().splitlines()
        return repr(lines[-1]) if lines else "(empty)"

    def close(self) -> None:
        if self._tc is None:
            return
        self.collect_logs()
        with contextlib.suppress(Exception):  # already gone
            self.wrapped.remove(force=True)
        self._tc = None


def service(spec: ServiceSpec, masker: Masker, docker_client: Any | None = None) -> Service:
    """A Service (not started yet) with its evidence record; its secret values are masked."""
    for value in spec.secrets.values():
        masker.add(value)
    made = docker_client if docker_client is not None else client()
    run = ContainerRun(image=spec.image, env_names=sorted({**spec.env, **spec.secrets}), masker=masker)
    try:
        run.user = str(made.images.get(spec.image).attrs.get("Config", {}).get("User") or "")
    except Exception as exc:
        raise CannotJudge(f"the image {spec.image!r} is not available to the engine "
                          f"({_short(exc)}): build or pull it first") from None
    return Service(spec, run, made)


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    elapsed_s: float


def http_get(port: int, path: str, *, timeout_s: float) -> Answer:
    """GET http://127.0.0.1:port/path (loopback only); OSError when no answer."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read(4096).decode("utf-8", "replace")
        return Answer(response.status, body, time.monotonic() - started)
    except http.client.HTTPException as exc:  # e.g. RemoteDisconnected: cut mid-request
        raise ConnectionError(f"{type(exc).__name__}: {exc or 'no response'}") from None
    finally:
        conn.close()


def accepts(port: int) -> bool:
    """Whether 127.0.0.1:port accepts a new TCP connection now."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def is_root_user(user: str) -> bool:
    """An image config User that means root: empty, 'root', '0', or with group ':...'."""
    name = user.strip().split(":", 1)[0]
    return name in ("", "root", "0")


@contextmanager
def running(settings: Settings, masker: Masker | None = None) -> Iterator[Service]:
    """The configured image, started with its env and secrets and healthy; removed after.

    For scripts and fixtures: `with running(settings) as svc: ... svc.url ...`.
    """
    spec = ServiceSpec.from_settings(settings)
    svc = service(spec, masker if masker is not None else settings.masker())
    try:
        svc.start()
        svc.wait_healthy()
        yield svc
    finally:
        svc.close()


def prodready_container_fixture(prodready_settings: Settings) -> Iterator[Service]:
    """The body of the `prodready_container` fixture (below), testable without pytest."""
    with running(prodready_settings) as svc:
        yield svc


def _make_fixture() -> Any:
    import pytest

    @pytest.fixture(scope="session")
    def prodready_container(prodready_settings: Settings) -> Iterator[Service]:
        """The configured image, running and healthy for the session (removed after).

        Opt in from a conftest: `from pytest_prodready.containers import prodready_container`;
        then `prodready_target.scoped(base_url=prodready_container.url)` is a target for it
        (the run's own base_url must answer: the plugin checks it before any test starts).
        """
        yield from prodready_container_fixture(prodready_settings)

    return prodready_container


prodready_container = _make_fixture()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pytest_prodready.containers [--config PATH] [-- PYTEST_ARGS]`: start the
    configured image, run `pytest --prodready` (the whole built-in suite and your prodready
    tests) against it, print its logs when the run fails, remove it."""
    import argparse
    import subprocess
    import sys
    from pathlib import Path

    from pytest_prodready.config import Overrides, load_settings
    from pytest_prodready.exceptions import ConfigError

    parser = argparse.ArgumentParser(prog="python -m pytest_prodready.containers",
                                     description=main.__doc__)
    parser.add_argument("--config", help="config file (default: prodready.toml or pyproject.toml)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(Path.cwd(), Overrides(config_path=args.config))
    except ConfigError as exc:
        print(f"prodready: {exc}", file=sys.stderr)
        return 4
    if not settings.get("container.image"):
        print("prodready: set container.image (and container.port, container.health_path) to run "
              "the suite against an image", file=sys.stderr)
        return 4
    masker = settings.masker()
    try:
        with running(settings, masker) as svc:
            print(f"prodready: {svc.spec.image} is healthy at {svc.url}", flush=True)
            config = ["--prodready-config", args.config] if args.config else []
            code = subprocess.call([sys.executable, "-m", "pytest", "--prodready",
                                    "--prodready-url", svc.url, *config, *args.pytest_args])
            if code != 0:
                svc.collect_logs()
                print(f"\nprodready: the container's logs (last lines):\n{svc.run.log_tail()}", flush=True)
            return code
    except CannotJudge as exc:
        print(f"prodready: cannot run the image: {masker.text(str(exc))}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
