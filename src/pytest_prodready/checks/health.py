"""health.*: health endpoints answer 200 with a healthy body in time; a version is published."""

from __future__ import annotations

import re
from typing import Any

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import health_paths
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge
from pytest_prodready.family import Family
from pytest_prodready.target import Probe

# Only a reported problem fails: health documents use many words for "fine" (ok, up, pass,
# serving, green...), and an unknown one is not evidence of a failure.
UNHEALTHY = frozenset({"down", "fail", "failed", "failing", "error", "unhealthy", "critical", "red",
                       "unavailable", "degraded", "false", "outofservice", "out_of_service",
                       # gRPC health checking's NOT_SERVING (as grpc-gateway renders it in JSON)
                       "not_serving", "notserving"})
STATUS_KEYS = ("status", "health", "state", "healthy")
COMPONENT_KEYS = ("checks", "components", "details", "dependencies", "services")
VERSION_KEYS = frozenset({"version", "commit", "sha", "git_sha", "gitsha", "build", "release",
                          "revision", "git_commit", "build_id"})
DEFAULT_VERSION_PATHS = ("/version", "/api/version", "/__version__", "/version.json")


def _status_word(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value.strip().lower().replace(" ", "")
    return None


def unhealthy_parts(document: Any, where: str = "") -> list[str]:
    """Every place in a health document that reports a non-healthy status: its own status
    keys, and its components, as a table (Spring Boot's `components`), a list, or a table
    of lists (the IETF health-check draft's `"checks": {"db:responseTime": [{...}]}`)."""
    problems: list[str] = []
    if not isinstance(document, dict):
        return problems
    for key in STATUS_KEYS:
        word = _status_word(document.get(key))
        if word is not None and word in UNHEALTHY:
            # a component's 'status' is named by the component; any other key by itself
            label = key if not where else where if key == "status" else f"{where}.{key}"
            problems.append(f"{label}={document[key]}")
    for key in COMPONENT_KEYS:
        parts = document.get(key)
        items = (parts.items() if isinstance(parts, dict)
                 else enumerate(parts) if isinstance(parts, list) else ())
        for name, part in items:
            for n, item in enumerate(part if isinstance(part, list) else [part]):
                named = item.get("name", name) if isinstance(item, dict) else name
                label = f"{named}[{n}]" if isinstance(part, list) and len(part) > 1 else str(named)
                if isinstance(item, dict):
                    problems += unhealthy_parts(item, f"{key}.{label}")
                elif (word := _status_word(item)) is not None and word in UNHEALTHY:
                    problems.append(f"{key}.{label}={item}")
    return problems


def body_problem(ex: Exchange) -> str | None:
    document = ex.json()
    if document is not None:
        parts = unhealthy_parts(document)
        return f"reports unhealthy: {', '.join(parts)}" if parts else None
    if re.search(r"\b(unhealthy|down|fail(ed|ing)?|error)\b", ex.text[:2000], re.IGNORECASE):
        return f"body says {ex.text[:80].strip()!r}"
    return None


@check("health.endpoint_ok", title="each health endpoint answers 200 with a healthy body in time",
       severity="critical", subjects=health_paths, needs=("health",),
       probes=lambda s, path: [Probe.get(path)],
       remediation="Make the health endpoint answer 200 with a healthy status within "
                   "health_budget_ms, and fix the failing dependency it reports.")
def endpoint_ok(ctx: Context) -> None:
    ex = ctx.fetch(Probe.get(ctx.subject))
    budget = float(ctx.settings.get("health_budget_ms", 2000))
    if ex.status != 200:
        ctx.fail(f"{ctx.subject} answered {ex.status}, expected 200", ex)
    problem = body_problem(ex)
    if problem:
        ctx.fail(f"{ctx.subject} {problem}", ex)
    if ex.elapsed_ms > budget:
        ctx.fail(f"{ctx.subject} took {ex.elapsed_ms:.0f} ms, over health_budget_ms={budget:.0f}", ex)
    ctx.passed(f"{ctx.subject} healthy in {ex.elapsed_ms:.0f} ms")


def version_paths(settings: Settings) -> list[str]:
    configured = settings.get("version_paths")
    return list(configured) if configured else [*DEFAULT_VERSION_PATHS, *health_paths(settings)]


def version_in(ex: Exchange) -> str | None:
    """The version or commit the response publishes, if any."""
    if ex.status != 200:
        return None
    document = ex.json()
    if isinstance(document, dict):
        for scope in (document, *(v for v in document.values() if isinstance(v, dict))):
            for key, value in scope.items():
                # (a boolean is no version: {"build": true} says nothing about what is deployed)
                if (key.lower() in VERSION_KEYS and isinstance(value, (str, int, float))
                        and not isinstance(value, bool) and str(value).strip()):
                    return f"{key}={value}"
        return None
    if ex.text[:200].lstrip().startswith("<"):
        # An HTML page (an SPA's index answering every path) is not a version endpoint,
        # even when an asset hash in it looks like a commit.
        return None
    match = re.search(r"\b(v?\d+\.\d+\.\d+[\w.+-]*|[0-9a-f]{7,40})\b", ex.text[:200])
    return match.group(0) if match and len(ex.text) < 200 else None


@check("health.version_exposed", title="a version/commit endpoint answers", severity="low",
       probes=lambda s, _: [Probe.get(p) for p in version_paths(s)],
       remediation="Publish the deployed version and commit (e.g. GET /version -> "
                   "{\"version\": \"1.4.2\", \"commit\": \"9f1c2ab\"}).")
def version_exposed(ctx: Context) -> None:
    for ex in ctx.responses():
        found = version_in(ex)
        if found:
            # One endpoint that publishes the version is the whole answer: the paths that
            # went unanswered cannot take it back.
            ctx.passed(f"{ex.where} publishes {found}", complete=False)
            return
    # The version may live exactly where we got no answer, a broken body or a server error:
    # no false "not found".
    unanswered = [*ctx.missing, *(ex for ex in ctx.exchanges if (ex.status or 0) >= 500)]
    if unanswered:
        first = unanswered[0]
        raise CannotJudge(f"no version found, but {first.where} got no usable answer "
                          f"({first.error or ('rate limited' if first.status == 429 else first.status)})")
    ctx.fail(f"no version or commit found at {', '.join(version_paths(ctx.settings))} "
             "(set version_paths if it lives elsewhere)")


FAMILY = Family(
    name="health",
    config={
        "health": schema.list_of(schema.path),
        "health_budget_ms": schema.integer(1, 60_000, "a health check slower than a minute is down"),
        "version_paths": schema.list_of(schema.path),
    },
    defaults={"health_budget_ms": 2000},
)
