"""container.*: each check fails on a real container with the defect and passes on one without.

A real Docker engine (Debian's docker.io; started by scripts/start-dockerd.sh when none
answers and we are root) runs images built here from a busybox root filesystem
(tests/targets/images): containers on the host network, the service on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready.checking import Result, run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target
from tests.targets.images import ensure_images

ROOT = Path(__file__).resolve().parents[2]
SECRET = "jwt-test-secret-4f1c9a77d2"


def engine() -> Any:
    """A docker client that answers; starts dockerd (as root) when none does. Never skips."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    import docker

    try:
        made = docker.from_env(timeout=60)
        made.ping()
        return made
    except Exception as first:
        if os.geteuid() != 0:
            pytest.fail(f"no Docker engine answers ({first}) and only root can start one: "
                        "run scripts/start-dockerd.sh as root")
    started = subprocess.run([str(ROOT / "scripts/start-dockerd.sh")], capture_output=True,
                             text=True, timeout=60)
    if started.returncode != 0:
        pytest.fail(f"scripts/start-dockerd.sh failed: {started.stderr.strip()}")
    made = docker.from_env(timeout=60)
    made.ping()
    return made


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """variant -> tag, built once per machine and content."""
    return ensure_images(engine())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def run(images: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """run(check_id, variant, **container settings) against a fresh container of that image."""
    monkeypatch.setenv("JWT_SECRET", SECRET)
    made: list[Target] = []

    def runner(check_id: str, variant: str, env: dict[str, str] | None = None,
               port: int | None = None, **overrides: Any) -> Result:
        port = port or free_port()
        container = {"image": images[variant],
                     "env": {"PORT": str(port), "APP_ENV": "production", **(env or {})},
                     "secrets": ["JWT_SECRET"], "port": port, "health_path": "/health",
                     "slow_path": "/cgi-bin/slow?2", "grace_s": 5, "exit_timeout_s": 2,
                     **overrides}
        settings = Settings(values={**DEFAULTS, "base_url": "http://127.0.0.1:9", "container": container},
                            secrets={}, sources={})
        target = Target(settings)
        made.append(target)
        return run_check(check_id, target)

    yield runner
    for target in made:
        target.close()


# -- container.non_root ---------------------------------------------------------------------------
def test_non_root_passes_on_an_image_with_a_user(run: Callable[..., Result]) -> None:
    result = run("container.non_root", "good")
    assert result.outcome == "passed", result.detail
    assert result.message == "the image config sets User '1000' and the running process has uid 1000"


def test_non_root_fails_on_an_image_without_user(run: Callable[..., Result]) -> None:
    result = run("container.non_root", "root")
    assert result.outcome == "failed", result.message
    assert result.message.endswith("runs as root: its config has no USER (root by default); "
                                   "the running process has uid 0")
    assert "listening on 127.0.0.1" in result.detail  # the container's logs are evidence


def test_non_root_needs_no_secret_values(run: Callable[..., Result],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without JWT_SECRET the image still starts (and may exit at once): judged all the same."""
    monkeypatch.delenv("JWT_SECRET")
    good = run("container.non_root", "good")
    assert good.outcome == "passed", good.detail
    assert good.message.startswith("the image config sets User '1000'")
    root = run("container.non_root", "root")
    assert root.outcome == "failed"
    assert "runs as root: its config has no USER (root by default)" in root.message


# -- container.graceful_shutdown ------------------------------------------------------------------
def test_graceful_shutdown_passes_when_the_app_drains(run: Callable[..., Result]) -> None:
    result = run("container.graceful_shutdown", "good")
    assert result.outcome == "passed", result.detail
    assert result.message.startswith("the in-flight GET /cgi-bin/slow?2 completed (200) ")
    assert "new connections refused" in result.message
    assert "exit code 0 in " in result.message
    events = [e["event"] for e in result.evidence()[0]["container"]["events"]]
    assert "sent SIGTERM" in events and "a new connection was refused" in events


def test_graceful_shutdown_fails_when_the_app_dies_mid_request(run: Callable[..., Result]) -> None:
    result = run("container.graceful_shutdown", "dies")
    assert result.outcome == "failed", result.message
    assert "the in-flight GET /cgi-bin/slow?2 was cut" in result.message
    assert "exited with code 143" in result.message
    assert "SIGTERM: exiting now" in result.detail


def test_graceful_shutdown_fails_when_sigterm_is_ignored_past_the_grace(
        run: Callable[..., Result]) -> None:
    """A request longer than the grace period: still running at the deadline, not drained."""
    result = run("container.graceful_shutdown", "good", slow_path="/cgi-bin/slow?4", grace_s=1)
    assert result.outcome == "failed", result.message
    assert "still running 1 s after SIGTERM (the grace period)" in result.message


# -- container.fails_without_secrets --------------------------------------------------------------
def test_fails_without_secrets_passes_when_the_app_refuses_to_start(run: Callable[..., Result]) -> None:
    result = run("container.fails_without_secrets", "good")
    assert result.outcome == "passed", result.detail
    assert result.message.startswith("without JWT_SECRET it exited with code 1 after ")
    assert result.message.endswith("its log ends: 'fatal: JWT_SECRET is required'; "
                                   "with JWT_SECRET it starts (GET /health answers)")


def test_fails_without_secrets_without_the_values_here_passes_saying_so(
        run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal needs no secret values; the positive control does, and says it was not run."""
    monkeypatch.delenv("JWT_SECRET")
    result = run("container.fails_without_secrets", "good")
    assert result.outcome == "passed", result.detail
    assert result.message.endswith("; not compared with a start with JWT_SECRET (not set here)")


def test_fails_without_secrets_fails_when_the_app_exits_0(run: Callable[..., Result]) -> None:
    result = run("container.fails_without_secrets", "good", env={"SECRET_POLICY": "exit0"})
    assert result.outcome == "failed", result.message
    assert result.message.endswith("exited with code 0 without JWT_SECRET: refusing to start "
                                   "must exit non-zero, so the deploy fails")
    assert "JWT_SECRET is not set; nothing to do" in result.detail


def test_fails_without_secrets_cannot_judge_an_image_that_never_starts(
        run: Callable[..., Result]) -> None:
    """Exit 2 without the secret, and exit 2 with it: a crash, not a refusal; never a pass."""
    result = run("container.fails_without_secrets", "good", env={"SECRET_POLICY": "crash"})
    assert result.outcome == "error", result.message
    assert result.message.startswith("cannot judge: it also fails to start WITH JWT_SECRET, so its "
                                     "exit without them proves nothing: ")
    assert "exited with code 2 before it answered" in result.message
    assert "'fatal: cannot open /data/app.db'" in result.message


def test_fails_without_secrets_fails_when_the_app_falls_back(run: Callable[..., Result]) -> None:
    result = run("container.fails_without_secrets", "fallback")
    assert result.outcome == "failed", result.message
    assert result.message.endswith("is still running 2 s after starting without JWT_SECRET; "
                                   "GET /health answered 200: it must refuse to start "
                                   "(a default secret?)")
    assert "using the development default" in result.detail
    assert SECRET not in result.detail


# -- no engine ------------------------------------------------------------------------------------
@pytest.mark.parametrize("check_id", ["container.non_root", "container.graceful_shutdown",
                                      "container.fails_without_secrets"])
def test_no_engine_is_one_clear_message(check_id: str, run: Callable[..., Result],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    result = run(check_id, "good")
    assert result.outcome == "error"
    assert result.message == (
        f"cannot judge: no Docker engine answers at unix://{tmp_path}/docker.sock (no such "
        "socket): install docker.io and start dockerd (as root: dockerd --bridge=none "
        "--iptables=false, or scripts/start-dockerd.sh), or set DOCKER_HOST")


def test_a_busy_port_cannot_be_judged(run: Callable[..., Result]) -> None:
    """Something already listens on container.port: its answers would pass for the image's."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("container.non_root", "root", port=port)
    assert result.outcome == "error"
    assert result.message == (f"cannot judge: 127.0.0.1:{port} (container.port) is already in use: "
                              "the container checks start their own container there; stop what "
                              "listens (or run these checks in a run of their own)")


def test_the_whole_suite_runs_against_the_image(images: dict[str, str], tmp_path: Path) -> None:
    """python -m pytest_prodready.containers: the image started, pytest --prodready against it,
    the container's logs printed after a failing run, the container removed."""
    port = free_port()
    (tmp_path / "prodready.toml").write_text(f"""
health = ["/health"]
[container]
image = "{images['good']}"
env = {{ PORT = "{port}" }}
secrets = ["JWT_SECRET"]
port = {port}
health_path = "/health"
""")
    done = subprocess.run([sys.executable, "-m", "pytest_prodready.containers", "--",
                           "-p", "no:cacheprovider", "-p", "no:xdist", "--prodready-only", "health"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "JWT_SECRET": SECRET})
    assert done.returncode == 1, done.stdout + done.stderr  # health.version_exposed fails
    assert f"is healthy at http://127.0.0.1:{port}" in done.stdout
    assert f"target: http://127.0.0.1:{port}" in done.stdout
    assert "1 failed, 1 passed" in done.stdout
    assert f"the container's logs (last lines):\nlistening on 127.0.0.1:{port} as uid 1000" in done.stdout
    left = [c for c in engine().containers.list(all=True)
            if f"PORT={port}" in (c.attrs.get("Config", {}).get("Env") or [])]
    assert not left


def test_without_an_engine_the_rest_of_the_suite_runs(tmp_path: Path) -> None:
    """A whole --prodready --prodready-active run with no engine: each container check is one
    'cannot judge' line naming what is missing, no traceback, and the health check still runs."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    from tests.targets.webapp import serve

    with serve() as served:
        (tmp_path / "prodready.toml").write_text(f"""
base_url = "{served.url}"
health = ["/api/health"]
[container]
image = "myapp:1.0"
secrets = ["JWT_SECRET"]
port = {port}
slow_path = "/slow"
""")
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                               "--prodready", "--prodready-active", "--prodready-only",
                               "container,health", "-rA"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "JWT_SECRET": SECRET,
                                   "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    out = done.stdout
    assert "Traceback" not in out and "docker.errors" not in out, out
    assert out.count(f"no Docker engine answers at unix://{tmp_path}/none.sock (no such socket)") >= 3, out
    assert "PASSED prodready::health.endpoint_ok" in out, out


def test_the_fixture_runs_the_image_for_the_users_tests(images: dict[str, str], tmp_path: Path) -> None:
    """A conftest opts into prodready_container; a user's prodready test reaches the image's
    service through a scoped view of the plugin's target (same budget, allowlist by the
    view's base URL, masking); the container is removed at the end of the session."""
    from tests.targets.webapp import serve

    port = free_port()
    (tmp_path / "conftest.py").write_text(
        "from pytest_prodready.containers import prodready_container  # noqa: F401\n")
    (tmp_path / "test_user.py").write_text("""
import pytest
from pytest_prodready.target import Probe

@pytest.mark.prodready(category="health", severity="critical")
def test_health_of_the_image(prodready_container, prodready_target):
    image = prodready_target.scoped(base_url=prodready_container.url)
    assert image.fetch(Probe.get("/health")).status == 200
""")
    with serve() as staging:
        (tmp_path / "prodready.toml").write_text(f"""
base_url = "{staging.url}"
[container]
image = "{images['good']}"
env = {{ PORT = "{port}" }}
secrets = ["JWT_SECRET"]
port = {port}
health_path = "/health"
""")
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                               "--prodready", "-k", "test_health_of_the_image", "-rA", "test_user.py"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "JWT_SECRET": SECRET})
    assert "PASSED test_user.py::test_health_of_the_image" in done.stdout, done.stdout + done.stderr
    left = [c for c in engine().containers.list(all=True)
            if f"PORT={port}" in (c.attrs.get("Config", {}).get("Env") or [])]
    assert not left


def test_secrets_the_app_logs_are_masked(run: Callable[..., Result]) -> None:
    """The container's logs are evidence; a secret it prints there is masked like any other."""
    result = run("container.non_root", "root", env={"LOG_SECRET": "1"})
    assert result.outcome == "failed"
    assert "config: JWT_SECRET=" in result.detail  # the log line is there, its value masked
    assert SECRET not in result.detail
    assert SECRET not in str(result.evidence())


def test_an_image_the_engine_does_not_have_cannot_be_judged(run: Callable[..., Result]) -> None:
    result = run("container.non_root", "good", image="prodready-test/absent:none")
    assert result.outcome == "error"
    assert result.message.startswith("cannot judge: the image 'prodready-test/absent:none' is not "
                                     "available to the engine (")
    assert result.message.endswith("): build or pull it first")
