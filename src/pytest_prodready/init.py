"""`prodready init [--from-openapi URL|FILE]`: a starter prodready.toml and a smoke-test file.

From an OpenAPI 3 (or Swagger 2) spec, JSON or YAML:
- `protected`: every operation the spec secures (its own `security`, or the spec's global
  one not overridden by `security: []`); path parameters are filled with their example (or
  `1`) and marked for review;
- `health`: the paths that look like health or readiness endpoints, or a guessed /health,
  marked for review; `version_paths` and `metrics.path` likewise when the spec has them;
- auth, identities and webhooks are stubbed, commented out, with `*_env` names: the file
  holds no secret, and loads as written (an `*_env` key whose variable is not exported is a
  config error, so they wait for the team to export them);
- `tests/prodready/test_smoke.py`: the checklist scenarios, written with the helpers of
  `pytest_prodready.assertions`, ready to edit.

Neither file is overwritten: init refuses when one exists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
HEALTH_WORDS = re.compile(r"(^|/)(health|healthz|healthcheck|ready|readyz|readiness|live|livez|liveness|"
                          r"status|ping)(/|$)", re.IGNORECASE)
VERSION_WORDS = re.compile(r"(^|/)(version|build|info)(/|$)", re.IGNORECASE)
WEBHOOK_WORDS = re.compile(r"webhook|callback|hook(s)?(/|$)", re.IGNORECASE)
PLACEHOLDER_URL = "https://staging.example.com"
SPEC_BYTES = 20 * 1024 * 1024
CONFIG_NAME = "prodready.toml"
TESTS_PATH = Path("tests") / "prodready" / "test_smoke.py"


class InitError(Exception):
    """What init could not do, in words for the terminal."""


@dataclass
class Plan:
    base_url: str = PLACEHOLDER_URL
    base_url_guessed: bool = True
    title: str = ""
    protected: list[tuple[str, str]] = field(default_factory=list)  # (endpoint, review note)
    health: list[tuple[str, str]] = field(default_factory=list)
    version_paths: list[str] = field(default_factory=list)
    metrics_path: str | None = None
    webhooks: list[tuple[str, str]] = field(default_factory=list)  # (name, path)
    bearer: bool = False
    json_endpoint: str | None = None  # a POST/PUT taking JSON (malformed-input check)
    spec_reference: str | None = None  # `openapi = ...` for the sweep, when the run can reach it


# -- reading the spec ----------------------------------------------------------------------
def load_spec(source: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """The spec at a URL (http/https) or in a file, JSON or YAML."""
    if re.match(r"https?://", source, re.IGNORECASE):
        import requests

        try:
            with requests.get(source, timeout=timeout_s, stream=True,
                              headers={"Accept": "application/json, application/yaml;q=0.9"}) as answer:
                if answer.status_code != 200:
                    raise InitError(f"{source}: answered {answer.status_code}, not the spec")
                raw = answer.raw.read(SPEC_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise InitError(f"{source}: cannot fetch the spec ({type(exc).__name__})") from None
    else:
        path = Path(source)
        if not path.is_file():
            raise InitError(f"{source}: no such file")
        raw = path.read_bytes()[:SPEC_BYTES + 1]
    if len(raw) > SPEC_BYTES:
        raise InitError(f"{source}: the spec is larger than {SPEC_BYTES // (1024 * 1024)} MiB")
    from pytest_prodready.openapi import SpecError, parse_document

    try:
        spec = parse_document(raw)  # JSON, or YAML without PyYAML's node graph
    except SpecError as exc:
        raise InitError(f"{source}: {str(exc).splitlines()[0]}") from None
    return spec


def _example(param: Mapping[str, Any]) -> str:
    for source in (param, param.get("schema") or {}):
        if isinstance(source, Mapping):
            if "example" in source:
                return str(source["example"])
            examples = source.get("examples")
            if isinstance(examples, list) and examples:
                return str(examples[0])
            if isinstance(source.get("enum"), list) and source["enum"]:
                return str(source["enum"][0])
    return "1"


def _resolve_ref(spec: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(value.get("$ref"), str) and value["$ref"].startswith("#/"):
        node: Any = spec
        for part in value["$ref"][2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
        return node if node is not None else value
    return value


def _concrete(spec: Mapping[str, Any], path: str, params: list[Any]) -> tuple[str, str]:
    """The path with its {parameters} filled in, and a review note when any was."""
    by_name = {}
    for p in params:
        p = _resolve_ref(spec, p)
        if isinstance(p, Mapping) and p.get("in") == "path":
            by_name[str(p.get("name"))] = p
    filled = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = _example(by_name.get(name, {}))
        filled.append(f"{{{name}}}={value}")
        return re.sub(r"[^A-Za-z0-9._~-]", "", value) or "1"

    concrete = re.sub(r"\{([^}/]+)\}", fill, path)
    note = f"REVIEW: {', '.join(filled)} (use a real id)" if filled else ""
    return concrete, note


def _base_url(spec: Mapping[str, Any]) -> tuple[str, bool]:
    servers = spec.get("servers")
    if isinstance(servers, list):
        for server in servers:
            url = str((server or {}).get("url", "")) if isinstance(server, Mapping) else ""
            if re.match(r"https?://[^/{}]+", url) and "{" not in url:
                return url.rstrip("/"), False
    host = spec.get("host")  # Swagger 2
    if isinstance(host, str) and host and "{" not in host:
        scheme = "https" if "https" in (spec.get("schemes") or ["https"]) else "http"
        return f"{scheme}://{host}{str(spec.get('basePath') or '').rstrip('/')}", False
    return PLACEHOLDER_URL, True


def _webhook_name(path: str, taken: set[str]) -> str:
    words = [w for w in re.split(r"[^a-z0-9]+", path.lower()) if w and w not in ("api", "v1", "v2", "webhook",
                                                                                 "webhooks", "hooks", "hook")]
    name = (words[-1] if words else "incoming")[:30]
    while name in taken:
        name += "_2"
    taken.add(name)
    return name


def plan_from_spec(spec: Mapping[str, Any]) -> Plan:
    plan = Plan()
    plan.base_url, plan.base_url_guessed = _base_url(spec)
    info = spec.get("info")
    plan.title = str(info.get("title", "")) if isinstance(info, Mapping) else ""
    global_security = spec.get("security") or []
    schemes = ((spec.get("components") or {}).get("securitySchemes") or spec.get("securityDefinitions") or {})
    plan.bearer = any(isinstance(s, Mapping) and (str(s.get("scheme", "")).lower() == "bearer"
                                                  or s.get("type") in ("oauth2", "openIdConnect", "apiKey"))
                      for s in schemes.values()) if isinstance(schemes, Mapping) else False
    base_path = ""
    servers = spec.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], Mapping):
        match = re.match(r"(?:https?://[^/]+)?(/[^{}]*)$", str(servers[0].get("url", "")))
        base_path = match.group(1).rstrip("/") if match else ""
    taken: set[str] = set()
    seen: set[str] = set()
    for raw_path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, Mapping) or not str(raw_path).startswith("/"):
            continue
        path_params = list(item.get("parameters") or [])
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, Mapping):
                continue
            params = path_params + list(op.get("parameters") or [])
            concrete, note = _concrete(spec, base_path + str(raw_path), params)
            security = op.get("security", global_security)
            if WEBHOOK_WORDS.search(str(raw_path)) and method == "post":
                plan.webhooks.append((_webhook_name(str(raw_path), taken), concrete))
                continue
            if security:
                endpoint = concrete if method == "get" else f"{method.upper()} {concrete}"
                if endpoint not in seen:
                    seen.add(endpoint)
                    plan.protected.append((endpoint, note))
                if method in ("post", "put", "patch") and plan.json_endpoint is None and \
                        "application/json" in json.dumps(op.get("requestBody") or {}):
                    plan.json_endpoint = endpoint
            elif method == "get":
                if HEALTH_WORDS.search(str(raw_path)) and "{" not in str(raw_path):
                    plan.health.append((concrete, "REVIEW: guessed from the spec's path"))
                elif VERSION_WORDS.search(str(raw_path)) and "{" not in str(raw_path):
                    plan.version_paths.append(concrete)
                elif str(raw_path).rstrip("/").endswith("/metrics"):
                    plan.metrics_path = concrete
    if not plan.health:
        plan.health.append((f"{base_path}/health", "REVIEW: guessed, the spec has no health endpoint"))
    return plan


# -- writing -------------------------------------------------------------------------------
def _q(text: str) -> str:
    from pytest_prodready.cli import toml_string

    return toml_string(text)


def _list(entries: list[tuple[str, str]], key: str) -> list[str]:
    if not entries:
        return [f"{key} = []"]
    lines = [f"{key} = ["]
    for value, note in entries:
        lines.append(f"  {_q(value)},{f'  # {note}' if note else ''}")
    return [*lines, "]"]


def config_text(plan: Plan, source: str | None) -> str:
    lines = ["# prodready.toml: written by `prodready init`"
             + (f" from {source}" if source else "") + ". Edit it: every line marked",
             "# REVIEW was guessed. Secrets never go in this file: only the NAMES of the",
             "# environment variables that hold them (*_env keys).",
             "# Run the suite: pytest --prodready   (reference: docs/usage.md)", ""]
    note = "  # REVIEW: the staging URL to check" if plan.base_url_guessed else ""
    lines.append(f"base_url = {_q(plan.base_url)}{note}")
    lines.append('fail_on = "low"')
    lines.append("# allowed_origins = [\"https://app.example.com\"]  # the origins your CORS allows")
    lines.append("")
    lines.append("# Operations the spec secures: each must refuse an anonymous caller (401/403).")
    lines += _list(plan.protected, "protected")
    lines += _openapi_lines(plan, source)
    lines.append("")
    lines += _list(plan.health, "health")
    if plan.version_paths:
        lines.append(f"version_paths = [{', '.join(_q(p) for p in plan.version_paths)}]  # REVIEW")
    if plan.metrics_path:
        lines += ["", "[metrics]", f"path = {_q(plan.metrics_path)}  # REVIEW: public, or set token_env"]
    lines += ["",
              "# A valid token for the positive controls (JWT and auth checks). Uncomment it and",
              "# export the variable before the run; the value never goes in this file.",
              "# [auth]",
              '# token_env = "PRODREADY_TOKEN"',
              "",
              "# Two users of different tenants, for the access-control (IDOR) checks.",
              "# [identities.alice]",
              '# token_env = "ALICE_TOKEN"',
              '# tenant = "acme"',
              "# [identities.bob]",
              '# token_env = "BOB_TOKEN"',
              '# tenant = "globex"']
    webhooks = plan.webhooks or [("provider", "/api/webhook")]
    lines += ["", "# Incoming webhooks must verify their signature. REVIEW: the scheme",
              "# (stripe | github | slack | standard | hmac-sha256) and the secret's variable."]
    for name, path in webhooks:
        env = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") + "_WEBHOOK_SECRET"
        lines += [f"# [webhooks.{name}]", f"# path = {_q(path)}", '# scheme = "hmac-sha256"',
                  '# header = "X-Signature"', f'# secret_env = "{env}"', ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def spec_reference(plan: Plan, source: str | None, directory: Path) -> str | None:
    """How the config names the spec for the OpenAPI sweep (openapi = ...): a path on the
    target when the spec is served by it, a file relative to the config; None when the spec
    lives elsewhere (the run may only talk to the target's own hosts)."""
    if not source:
        return None
    if re.match(r"https?://", source, re.IGNORECASE):
        from urllib.parse import urlsplit

        spec_url, base = urlsplit(source), urlsplit(plan.base_url)
        if (spec_url.scheme, spec_url.netloc) == (base.scheme, base.netloc) and spec_url.path.startswith("/"):
            return spec_url.path + (f"?{spec_url.query}" if spec_url.query else "")
        return None
    path = Path(source).resolve()
    try:
        return path.relative_to(directory.resolve()).as_posix()
    except ValueError:
        return str(path)


def _openapi_lines(plan: Plan, source: str | None) -> list[str]:
    from pytest_prodready import schema

    if not source or "openapi" not in schema.fields():
        return []
    reference = plan.spec_reference
    if reference is None:
        return ["# The spec is not served by the target: to sweep every operation it declares,",
                "# point openapi at it on the target (a path) or at a copy in this repository.",
                f"# openapi = {_q('/openapi.json')}"]
    return ["# Every operation of the spec is also swept for auth (openapi.operations_require_auth).",
            f"openapi = {_q(reference)}"]


def tests_text(plan: Plan) -> str:
    protected = [e for e, _ in plan.protected] or ["/api/REPLACE-ME"]
    health = [p for p, _ in plan.health]
    cors_path = json.dumps(protected[0].split(" ")[-1])
    json_endpoint = plan.json_endpoint or next(
        (e for e in protected if e.split(" ", 1)[0] in ("POST", "PUT", "PATCH")), None)
    lines = [
        '"""Production-readiness smoke tests, written by `prodready init`: the checklist',
        "scenarios as one-line helper calls (pytest_prodready.assertions). Edit freely.",
        "",
        "Run: pytest --prodready tests/prodready   (the target comes from prodready.toml,",
        "or --prodready-url URL). Without --prodready these tests are skipped.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import pytest",
        "",
        "from pytest_prodready.assertions import (",
        "    assert_cors_rejects_null_origin,",
        "    assert_cors_rejects_unknown_origin,",
        "    assert_healthy,",
        "    assert_malformed_json_rejected,",
        "    assert_no_stack_traces,",
        "    assert_not_found_is_404,",
        "    assert_not_served,",
        "    assert_rejects_invalid_token,",
        "    assert_requires_auth,",
        "    assert_security_headers,",
        ")",
        "",
        "# From the spec: the operations it secures, and its health endpoints (REVIEW).",
        f"PROTECTED = {json.dumps(protected)}",
        f"HEALTH = {json.dumps(health)}",
        "",
        "",
        '@pytest.mark.prodready(category="smoke", severity="critical",',
        '                       fix="Require authentication and answer 401/403 to anonymous callers.")',
        '@pytest.mark.parametrize("endpoint", PROTECTED)',
        "def test_protected_endpoints_refuse_anonymous_callers(prodready_target, endpoint):",
        "    assert_requires_auth(prodready_target, endpoint)",
        "",
        "",
        '@pytest.mark.prodready(category="smoke", severity="critical",',
        '                       fix="Validate the token on every request; answer 401 when it fails.")',
        '@pytest.mark.parametrize("endpoint", PROTECTED)',
        "def test_protected_endpoints_refuse_an_invalid_token(prodready_target, endpoint):",
        "    assert_rejects_invalid_token(prodready_target, endpoint)",
        "",
        "",
        '@pytest.mark.prodready(category="smoke", severity="critical")',
        '@pytest.mark.parametrize("path", HEALTH)',
        "def test_health_endpoint_is_healthy(prodready_target, path):",
        "    assert_healthy(prodready_target, path)",
        "",
        "",
        '@pytest.mark.prodready(category="smoke", severity="critical")',
        "def test_cors_does_not_grant_unknown_or_null_origins(prodready_target):",
        f"    assert_cors_rejects_unknown_origin(prodready_target, {cors_path})",
        f"    assert_cors_rejects_null_origin(prodready_target, {cors_path})",
        "",
        "",
        '@pytest.mark.prodready(category="smoke", severity="critical")',
        "def test_no_dotfiles_backups_or_dumps_are_served(prodready_target):",
        "    assert_not_served(prodready_target)",
        "",
        "",
        '@pytest.mark.prodready(category="smoke", severity="medium")',
        "def test_security_headers(prodready_target):",
        '    assert_security_headers(prodready_target, "/")',
        "",
        "",
        '@pytest.mark.prodready(category="smoke", severity="high")',
        "def test_errors_are_clean(prodready_target):",
        "    assert_not_found_is_404(prodready_target)",
        "    assert_no_stack_traces(prodready_target)",
    ]
    if json_endpoint:
        lines += [
            "",
            "",
            '@pytest.mark.prodready(category="smoke", severity="medium")',
            "def test_malformed_json_is_a_4xx(prodready_target):",
            f"    assert_malformed_json_rejected(prodready_target, {json.dumps(json_endpoint)})",
        ]
    return "\n".join(lines) + "\n"


def init(directory: Path, source: str | None = None) -> list[Path]:
    """Write prodready.toml and tests/prodready/test_smoke.py under `directory`; refuse to
    overwrite either. Returns the files written."""
    config = directory / CONFIG_NAME
    tests = directory / TESTS_PATH
    existing = [p for p in (config, tests) if p.exists()]
    if existing:
        names = " and ".join(str(p.relative_to(directory)) for p in existing)
        raise InitError(f"{names} already exist{'s' if len(existing) == 1 else ''}; not overwriting "
                        "(remove or rename it first)")
    plan = plan_from_spec(load_spec(source)) if source else Plan(health=[("/health", "REVIEW: guessed")])
    plan.spec_reference = spec_reference(plan, source, directory)
    config_body = config_text(plan, source)
    _check_config(config_body)
    tests_body = tests_text(plan)
    compile(tests_body, str(tests), "exec")  # a generator bug is an error here, not in the user's run
    try:
        tests.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitError(f"cannot create {tests.parent}: {exc.strerror or exc}") from None
    # Exclusive creation: a file that appeared meanwhile is still not overwritten.
    written: list[Path] = []
    try:
        for path, body in ((config, config_body), (tests, tests_body)):
            with path.open("x", encoding="utf-8") as out:
                written.append(path)
                out.write(body)
    except OSError as exc:
        for path in written:  # all or nothing: a half-done init would block the next one
            path.unlink(missing_ok=True)
        if isinstance(exc, FileExistsError):
            raise InitError(f"{exc.filename} appeared meanwhile; not overwriting") from None
        raise InitError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
    return written


def _check_config(text: str) -> None:
    """The generated file reads back as TOML and passes the schema (a bug here is ours)."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    from pytest_prodready.config import validate

    validate(tomllib.loads(text))
