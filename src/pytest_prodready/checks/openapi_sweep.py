"""openapi.operations_require_auth: every operation the OpenAPI spec secures refuses an
anonymous call.

The spec (`openapi`: a path on the target, an http(s) URL, or a file) lists the operations;
each that declares a security requirement gets one anonymous probe, its path parameters
filled from the spec (pytest_prodready.openapi). GET and HEAD always; POST/PUT/PATCH/DELETE
and the rest only with --prodready-active or `openapi_sweep.allow_writes = true`, because
on a broken target an anonymous write is a real write. An operation whose security list
includes `{}` documents optional auth and is not probed; one without security is public by
the spec's own word. Probes run concurrently (max_concurrency), within the run's budget.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_prodready import openapi, schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.auth import to_login
from pytest_prodready.checks.common import anonymous_probe
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge, ConfigError
from pytest_prodready.family import Family
from pytest_prodready.target import Probe

DEFAULT_REFUSED = (401, 403)
SHOWN = 6  # operations named in a message


def spec_source(value: Any, key: str) -> str:
    """'/openapi.json' (on the target), 'https://...' (a URL), or a file ('openapi.yaml')."""
    text = schema.string(value, key).strip()
    if text.startswith(("http://", "https://")):
        return schema.url(text, key)
    if text.startswith("/"):
        return schema.path(text, key)
    return schema.file_path(text, key)


def _is_url(source: str) -> bool:
    return source.startswith(("/", "http://", "https://"))


def _file(settings: Settings, source: str) -> Path:
    path = Path(source.removeprefix("file:")).expanduser()
    if not path.is_absolute():
        path = (settings.config_file.parent if settings.config_file else Path.cwd()) / path
    return path


def load(ctx: Context, source: str) -> dict[str, Any]:
    if _is_url(source):
        ex = ctx.fetch(Probe.get(source))
        if ex.status in (401, 403) and ctx.settings.secret("auth.token_env"):
            ex = ctx.fetch(Probe.get(source, credential="auth.token_env"))
        if not ex.ok:
            raise CannotJudge(f"the spec {source} answered {ex.status}")
        if ex.truncated:
            raise CannotJudge(f"the spec {source} is larger than max_body_bytes")
        data: bytes = ex.body
    else:
        try:
            data = _file(ctx.settings, source).read_bytes()
        except OSError as exc:
            raise CannotJudge(f"the spec file {source!r} cannot be read ({exc})") from None
    try:
        return openapi.parse_document(data)
    except openapi.SpecError as exc:
        raise CannotJudge(f"{source}: {exc}") from None


def refused_how(ex: Exchange, refused: frozenset[int]) -> str | None:
    if ex.status in refused:
        return str(ex.status)
    if to_login(ex):
        return f"{ex.status} to login"
    return None


def _named(ops: list[openapi.Operation]) -> str:
    names = [op.endpoint + (f" ({op.operation_id})" if op.operation_id else "") for op in ops[:SHOWN]]
    return ", ".join(names) + (f" and {len(ops) - SHOWN} more" if len(ops) > SHOWN else "")


def _counts(statuses: list[str]) -> str:
    return ", ".join(f"{s} x{n}" if n > 1 else s for s, n in sorted(Counter(statuses).items()))


@check("openapi.operations_require_auth",
       title="every operation the OpenAPI spec secures refuses an anonymous call",
       severity="critical", needs=("openapi",), subjects=lambda s: [str(s.get("openapi"))],
       remediation="Apply the authentication the spec declares to every secured operation (a "
                   "router-level dependency or middleware, not per handler), answering 401/403.")
def operations_require_auth(ctx: Context) -> None:
    source = ctx.subject or str(ctx.settings.get("openapi"))
    ops = openapi.operations(load(ctx, source), under=urlsplit(ctx.target.base_url).path)
    secured = [op for op in ops if op.secured and not op.optional_auth]
    optional = [op for op in ops if op.secured and op.optional_auth]
    if not secured:
        ctx.skip(f"the spec declares security on none of its {len(ops)} operations "
                 f"({len(optional)} with optional auth): nothing to sweep")
    writes = bool(ctx.settings.active or ctx.settings.get("openapi_sweep.allow_writes"))
    sent = [op for op in secured if op.safe or writes]
    held = [op for op in secured if not (op.safe or writes)]
    refused = frozenset(ctx.settings.get("openapi_sweep.refused") or DEFAULT_REFUSED)
    probes = {op: anonymous_probe(op.endpoint) for op in sent}
    exchanges = dict(zip(list(dict.fromkeys(probes.values())),
                         ctx.target.fetch_many(probes.values()), strict=True))
    # The spec's own fetch is the only exchange so far: identity is enough (no O(n^2) ==).
    seen = {id(ex) for ex in ctx.exchanges}
    ctx.exchanges.extend(ex for ex in exchanges.values() if id(ex) not in seen)
    answered = {op: exchanges[p] for op, p in probes.items()
                if exchanges[p].status is not None and exchanges[p].status != 429}
    open_ops = [op for op, ex in answered.items() if ex.ok]
    if open_ops:
        ctx.fail(f"{len(open_ops)} of the {len(sent)} operations probed that the spec secures answered "
                 f"an anonymous call with 2xx: {_named(open_ops)}",
                 *[answered[op] for op in open_ops])
    missing = [exchanges[p] for op, p in probes.items() if op not in answered]
    if sent and not answered:
        first = missing[0]
        raise CannotJudge(f"no probe got an answer ({first.request_line}: {first.error or 'rate limited'})")
    ctx.missing = list(dict.fromkeys(missing))
    refusals = [how for ex in answered.values() if (how := refused_how(ex, refused))]
    other = [str(ex.status) for ex in answered.values() if refused_how(ex, refused) is None]
    parts = [f"{len(refusals)} of the {len(sent)} operations probed that the spec secures refused an "
             f"anonymous call ({_counts(refusals) or 'none'})"]
    if other:
        parts.append(f"{len(other)} answered without serving it ({_counts(other)})")
    if held:
        parts.append(f"{len(held)} state-changing operations not sent (passive mode: run with "
                     "--prodready-active or set openapi_sweep.allow_writes)")
    if optional:
        parts.append(f"{len(optional)} documented as optional-auth not probed")
    if not sent:
        ctx.skip("; ".join(parts[1:]))
    ctx.passed("; ".join(parts))


def _validate(settings: Settings) -> None:
    source = settings.get("openapi")
    if source and not _is_url(str(source)) and not _file(settings, str(source)).is_file():
        raise ConfigError("openapi", f"{schema.show(source)} is not a file (looked at "
                                     f"{_file(settings, str(source))}); a path on the target starts with '/'")


def _hosts(settings: Settings) -> list[str]:
    source = str(settings.get("openapi") or "")
    host = urlsplit(source).hostname if source.startswith(("http://", "https://")) else None
    return [host] if host else []


FAMILY = Family(
    name="openapi",
    config={
        "openapi": spec_source,
        "openapi_sweep": schema.Table({"refused": schema.list_of(schema.integer(300, 599)),
                                       "allow_writes": schema.boolean}),
    },
    validate=_validate,
    hosts=_hosts,
)
