"""container.*: gate the service's image before deploy (run locally with testcontainers).

container.non_root            the image config's User and the running process's uid
container.graceful_shutdown   SIGTERM with a slow request in flight: it completes, new
                              connections are refused, exit 0 within the grace period
container.fails_without_secrets  started without its secrets it must exit non-zero, fast

The container runs on the host network; the service must listen on 127.0.0.1:container.port
(see docs/howto-containers.md). Every connection (the engine, the service's port) goes
through the target's guard: the allowlist and the run's budget.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.containers import (
    LOOPBACK,
    Answer,
    Service,
    ServiceSpec,
    accepts,
    engine_host,
    http_get,
    is_root_user,
    service,
)
from pytest_prodready.exceptions import CannotJudge, CheckFailure
from pytest_prodready.family import Family

# How long the slow request is given to reach the service before SIGTERM is sent.
LEAD_S = 0.5


def fail(ctx: Context, message: str, svc: Service) -> NoReturn:
    """The failure: one line, then the fix, then the container's timeline and logs."""
    svc.collect_logs()
    run = svc.run
    masker = ctx.target.masker
    rendered = "\n".join([f"[{ctx.spec.id}] {masker.text(message)}", f"Fix: {ctx.spec.remediation}",
                          "", run.render()])
    raise CheckFailure(message, ctx.exchanges, remediation=ctx.spec.remediation,
                       check_id=ctx.spec.id, rendered=rendered)


@contextmanager
def started(ctx: Context, *, with_secrets: bool = True) -> Iterator[Service]:
    """The configured image, started (not waited for), its evidence recorded; removed after."""
    ctx.target.guard(engine_host())
    ctx.target.guard(LOOPBACK)
    spec = ServiceSpec.from_settings(ctx.settings, with_secrets=with_secrets)
    if accepts(spec.port):
        # Health polls would be answered by whatever listens there, not by the image.
        raise CannotJudge(f"{LOOPBACK}:{spec.port} (container.port) is already in use: the "
                          "container checks start their own container there; stop what listens "
                          "(or run these checks in a run of their own)")
    svc = service(spec, ctx.target.masker)
    ctx.add_fact(svc.run)
    try:
        yield svc.start()
    finally:
        svc.close()


# -- container.non_root -------------------------------------------------------------------------
def process_uid(svc: Service) -> str | None:
    """The uid the container's main process runs as (exec `id -u`, else the engine's top)."""
    try:
        code, output = svc.wrapped.exec_run(["id", "-u"])
        if code == 0 and output.strip().isdigit():
            return str(output.strip().decode())
    except Exception:  # no `id` in a distroless image: ask the engine
        pass
    try:
        top = svc.wrapped.top(ps_args="-o pid,uid")
        titles = [t.upper() for t in top.get("Titles", [])]
        rows = top.get("Processes") or []
        if "UID" in titles and rows:
            return str(rows[0][titles.index("UID")])
    except Exception:
        pass
    return None


@check("container.non_root", title="the image runs as a non-root user", severity="medium",
       needs=("container.image",),
       remediation="Add a user in the Dockerfile and switch to it (`RUN adduser -D -u 10001 app` "
                   "then `USER 10001`); never rely on the orchestrator to drop root.")
def non_root(ctx: Context) -> None:
    # The image's user needs no secrets: without them it is judged all the same (on its
    # config, and on its process while it lives).
    names = ctx.settings.get("container.secrets") or []
    with started(ctx, with_secrets=all(os.environ.get(name) for name in names)) as svc:
        run = svc.run
        user = run.user or ""
        if is_root_user(user):
            shown = f"User {user!r}" if user else "no USER (root by default)"
            uid = process_uid(svc) if svc.status()[1] is None else None
            seen = f"; the running process has uid {uid}" if uid is not None else ""
            run.event(f"image config: {shown}{seen}")
            fail(ctx, f"{svc.spec.image} runs as root: its config has {shown}{seen}", svc)
        if svc.status()[1] is not None:
            run.event("exited before its process could be inspected")
            svc.collect_logs()
            ctx.passed(f"the image config sets User {user!r}; the process could not be inspected "
                       f"(it exited with code {svc.status()[1]})")
            return
        uid = process_uid(svc)
        run.event(f"image config User {user!r}; process uid {uid}")
        if uid == "0":
            fail(ctx, f"{svc.spec.image} sets User {user!r} but its process runs as uid 0", svc)
        if uid is None:
            ctx.passed(f"the image config sets User {user!r} (the process uid could not be read)")
            return
        ctx.passed(f"the image config sets User {user!r} and the running process has uid {uid}")


# -- container.graceful_shutdown ----------------------------------------------------------------
class InFlight(threading.Thread):
    """The slow request, sent in a thread so SIGTERM can arrive while it is in flight."""

    def __init__(self, port: int, path: str, timeout_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.timeout_s = port, path, timeout_s
        self.answer: Answer | None = None
        self.error = ""
        self.ended = 0.0

    def run(self) -> None:
        try:
            self.answer = http_get(self.port, self.path, timeout_s=self.timeout_s)
        except OSError as exc:
            self.error = str(exc) or type(exc).__name__
        self.ended = time.monotonic()


@check("container.graceful_shutdown", mode="active", severity="high",
       title="on SIGTERM in-flight requests finish and the process exits 0 within the grace period",
       needs=("container.image", "container.slow_path"),
       remediation="Handle SIGTERM: stop accepting (close the listener), let in-flight requests "
                   "finish, then exit 0 before the grace period (e.g. gunicorn --graceful-timeout, "
                   "server.close() in Node); run the server as PID 1 with exec or use tini.")
def graceful_shutdown(ctx: Context) -> None:
    grace = float(ctx.settings.get("container.grace_s") or 10)
    slow_path = str(ctx.settings.get("container.slow_path"))
    with started(ctx) as svc:
        svc.wait_healthy()
        run, port = svc.run, svc.spec.port
        ctx.target.guard(LOOPBACK)
        slow = InFlight(port, slow_path, grace + 5)
        slow.start()
        run.event(f"sent GET {slow_path} (the in-flight request)")
        time.sleep(LEAD_S)
        if not slow.is_alive():
            raise CannotJudge(f"GET {slow_path} finished before SIGTERM could be sent "
                              f"({slow.error or (slow.answer and slow.answer.status)}); "
                              f"container.slow_path must take longer than {LEAD_S + 1:g} s")
        sent = time.monotonic()
        svc.kill("SIGTERM")
        # New connections must be refused while the old one drains.
        refused_after: float | None = None
        still_accepting = False
        while slow.is_alive() and time.monotonic() - sent < 1.0:
            ctx.target.guard(LOOPBACK)
            if not accepts(port):
                refused_after = time.monotonic() - sent
                run.event("a new connection was refused")
                break
            time.sleep(0.1)
        else:
            still_accepting = slow.is_alive()
            if still_accepting:
                run.event("new connections still accepted 1 s after SIGTERM")
        # Everything must be over by the end of the grace period: the request answered and
        # the process gone (the orchestrator SIGKILLs then).
        slow.join(max(0.0, grace - (time.monotonic() - sent)))
        code = svc.wait_exit(max(0.0, grace - (time.monotonic() - sent)))
        took = time.monotonic() - sent
        unfinished = slow.is_alive()
        answered = slow.answer
        if answered is not None:
            run.event(f"the in-flight request answered {answered.status} "
                      f"{slow.ended - sent:.2f} s after SIGTERM")
        elif unfinished:
            run.event("the in-flight request had no answer at the end of the grace period")
        else:
            run.event(f"the in-flight request got no answer: {slow.error}")
        svc.collect_logs()
        problems = []
        if unfinished:
            problems.append(f"the in-flight GET {slow_path} had no answer {grace:g} s after SIGTERM")
        elif answered is None:
            problems.append(f"the in-flight GET {slow_path} was cut ({slow.error})")
        elif answered.status >= 500:
            problems.append(f"the in-flight GET {slow_path} answered {answered.status}")
        if code is None:
            problems.append(f"still running {grace:g} s after SIGTERM (the grace period): it "
                            "would be SIGKILLed")
        elif code != 0:
            problems.append(f"exited with code {code} {took:.2f} s after SIGTERM, not 0")
        if still_accepting:
            problems.append("new connections were still accepted 1 s after SIGTERM")
        if problems:
            fail(ctx, f"{svc.spec.image} on SIGTERM: " + "; ".join(problems), svc)
        assert answered is not None and code is not None  # for the type checker
        refused = (f"new connections refused {refused_after:.2f} s after it, "
                   if refused_after is not None else "")
        ctx.passed(f"the in-flight GET {slow_path} completed ({answered.status}) "
                   f"{slow.ended - sent:.2f} s after SIGTERM, {refused}exit code 0 in "
                   f"{took:.2f} s (grace period {grace:g} s)")


# -- container.fails_without_secrets ------------------------------------------------------------
@check("container.fails_without_secrets", mode="active", severity="critical",
       title="started in production mode without its secrets, the service refuses to start",
       needs=("container.image", "container.secrets"),
       remediation="Read required secrets at start-up and exit non-zero with a clear message when "
                   "one is missing; never fall back to a built-in default such as 'dev-secret'.")
def fails_without_secrets(ctx: Context) -> None:
    bound = float(ctx.settings.get("container.exit_timeout_s") or 10)
    names = ", ".join(ctx.settings.get("container.secrets"))
    with started(ctx, with_secrets=False) as svc:
        run = svc.run
        run.event(f"started without {names}")
        code = svc.wait_exit(bound)
        took = run.events[-1][0] if code is not None else bound
        svc.collect_logs()
        if code is None:
            health = svc.spec.health_path
            extra = ""
            if health:
                ctx.target.guard(LOOPBACK)
                try:
                    answer = http_get(svc.spec.port, health, timeout_s=2)
                    extra = f"; GET {health} answered {answer.status}"
                except OSError as exc:
                    extra = f"; GET {health}: {exc}"
                run.event(f"still running{extra.replace(';', ',')}")
            fail(ctx, f"{svc.spec.image} is still running {bound:g} s after starting without "
                      f"{names}{extra}: it must refuse to start (a default secret?)", svc)
        if code == 0:
            fail(ctx, f"{svc.spec.image} exited with code 0 without {names}: refusing to start "
                      "must exit non-zero, so the deploy fails", svc)
        refused = f"without {names} it exited with code {code} after {took:.2f} s; its log " \
                  f"ends: {svc.last_log_line()}"
    ctx.passed(f"{refused}; {positive_control(ctx, names)}")


def positive_control(ctx: Context, names: str) -> str:
    """With its secrets the same image must start: else the exit was a crash, not a refusal."""
    try:
        spec = ServiceSpec.from_settings(ctx.settings, with_secrets=True)
    except CannotJudge:
        return f"not compared with a start with {names} (not set here)"
    with started(ctx) as svc:
        try:
            svc.wait_healthy()
        except CannotJudge as exc:
            raise CannotJudge(f"it also fails to start WITH {names}, so its exit without them "
                              f"proves nothing: {exc}") from None
        where = f"GET {spec.health_path}" if spec.health_path else f"port {spec.port}"
        return f"with {names} it starts ({where} answers)"


def _hosts(settings: Settings) -> list[str]:
    return [LOOPBACK, engine_host()] if settings.get("container.image") else []


FAMILY = Family(
    name="container",
    config={"container": schema.Table({
        "image": schema.bounded_text(300),
        "env": schema.MapOf(schema.bounded_text(4096), key_check=schema.env_name),
        "secrets": schema.list_of(schema.env_name),
        "port": schema.integer(1, 65535),
        "health_path": schema.path,
        "slow_path": schema.path,
        "grace_s": schema.number(0.1, 600),
        "start_timeout_s": schema.number(1, 600),
        "exit_timeout_s": schema.number(0.1, 600),
    })},
    defaults={},
    hosts=_hosts,
)
