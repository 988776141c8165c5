"""The config schema: every key the plugin understands, its type, and how it is checked.

Validation walks the user's table against this schema and stops at the first problem
with a ConfigError naming the full key path, so a bad file is one clear message.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pytest_prodready.errors import ConfigError

SEVERITIES = ("critical", "high", "medium", "low")
HTTP_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Literals that are unmistakably credentials. A config file is committed to git, so one of
# these in it is a leak already; we refuse it and point at the *_env form.
SECRET_LITERALS = (
    re.compile(r"^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."),  # a JWT
    re.compile(r"^(sk|rk)_(live|test)_[A-Za-z0-9]{8,}"),  # Stripe secret keys
    re.compile(r"^whsec_[A-Za-z0-9+/=]{8,}"),  # Stripe / Svix webhook secrets
    re.compile(r"^(ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{16,}"),  # GitHub tokens
    re.compile(r"^xox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"^AKIA[0-9A-Z]{16}$"),  # AWS access key ids
    re.compile(r"^AIza[0-9A-Za-z_-]{30,}"),  # Google API keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"^Bearer\s+\S{8,}", re.IGNORECASE),
    re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),  # a URL or DSN with a password
)

Check = Callable[[Any, str], Any]


def _type_name(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def key_path(parent: str, name: str) -> str:
    """A key's dotted path as TOML writes it: bare names as they are, others quoted."""
    part = name if _BARE_KEY.match(name) else json.dumps(name)
    return f"{parent}.{part}" if parent else part


def _expect(cond: bool, key: str, expected: str, value: Any) -> None:
    if not cond:
        raise ConfigError(key, f"expected {expected}, got {_type_name(value)} {value!r:.60}")


def string(value: Any, key: str) -> str:
    _expect(isinstance(value, str), key, "a string", value)
    return str(value)


def url(value: Any, key: str) -> str:
    text = string(value, key).strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ConfigError(key, f"{text!r} is not a valid URL ({exc}); write e.g. "
                               "'https://staging.example.com'") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"{text!r} is not an http(s) URL; write e.g. 'https://staging.example.com'")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ConfigError(key, f"{text!r} contains whitespace or control characters")
    return text.rstrip("/")


def path(value: Any, key: str) -> str:
    text = string(value, key).strip()
    if not text.startswith("/"):
        raise ConfigError(key, f"{text!r} must be a path starting with '/', e.g. '/api/health'")
    return text


def origin(value: Any, key: str) -> str:
    text = url(value, key)
    if urlsplit(text).path not in ("", "/"):
        raise ConfigError(key, f"{text!r} is an origin, so it has no path: write e.g. 'https://app.example.com'")
    return text


def endpoint(value: Any, key: str) -> str:
    """'POST /api/chat' or '/api/agents' (GET), normalised to 'METHOD /path'."""
    text = string(value, key).strip()
    method, _, rest = text.partition(" ")
    if not rest:
        method, rest = "GET", text
    method = method.upper()
    if method not in HTTP_METHODS:
        raise ConfigError(key, f"{text!r}: unknown method {method!r}; use one of {', '.join(HTTP_METHODS)}")
    return f"{method} {path(rest.strip(), key)}"


def host_port(value: Any, key: str) -> str:
    text = string(value, key).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, f"{text!r} must be 'host:port', e.g. 'db.internal:5432'")
    return text


def env_name(value: Any, key: str) -> str:
    text = string(value, key)
    if not _ENV_NAME.match(text):
        raise ConfigError(key, f"{text!r} is not an environment variable name; *_env keys hold the NAME "
                               "of the variable that holds the secret, e.g. 'PRODREADY_TOKEN'")
    return text


def boolean(value: Any, key: str) -> bool:
    _expect(isinstance(value, bool), key, "true or false", value)
    return bool(value)


def integer(low: int, high: int | None = None) -> Check:
    def check(value: Any, key: str) -> int:
        _expect(isinstance(value, int) and not isinstance(value, bool), key, "an integer", value)
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(key, f"{value} is out of range; expected {bound}")
        return int(value)
    return check


def number(low: float, high: float | None = None) -> Check:
    def check(value: Any, key: str) -> float:
        _expect(isinstance(value, (int, float)) and not isinstance(value, bool), key, "a number", value)
        if not math.isfinite(value):
            raise ConfigError(key, f"{value} is not a finite number")
        if value <= low or (high is not None and value > high):
            bound = f"above {low}" + (f" and at most {high}" if high is not None else "")
            raise ConfigError(key, f"{value} is out of range; expected a number {bound}")
        return float(value)
    return check


def severity(value: Any, key: str) -> str:
    text = string(value, key).lower()
    if text not in SEVERITIES:
        raise ConfigError(key, f"{value!r} is not a severity; use one of {', '.join(SEVERITIES)}")
    return text


def one_of(*choices: str) -> Check:
    def check(value: Any, key: str) -> str:
        text = string(value, key)
        if text not in choices:
            raise ConfigError(key, f"{text!r} is not one of {', '.join(choices)}")
        return text
    return check


def date(value: Any, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = string(value, key)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(key, f"{text!r} is not a date; write YYYY-MM-DD, e.g. '2027-01-31'") from None


def rate(value: Any, key: str) -> str:
    text = string(value, key).strip()
    if not re.fullmatch(r"\d+\s*/\s*(second|minute|hour|day)", text):
        raise ConfigError(key, f"{text!r} is not a rate; write e.g. '5/minute' or '100/hour'")
    return text


def list_of(item: Check) -> Check:
    def check(value: Any, key: str) -> list[Any]:
        _expect(isinstance(value, list), key, "a list", value)
        return [item(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return check


@dataclass(frozen=True)
class Table:
    """A TOML table with known keys. `required` keys must be present."""

    fields: Mapping[str, Check | Table | TableOf | ArrayOf | MapOf]
    required: tuple[str, ...] = ()

    def __call__(self, value: Any, key: str) -> dict[str, Any]:
        _expect(isinstance(value, dict), key or "(top level)", "a table", value)
        out: dict[str, Any] = {}
        for name, item in value.items():
            sub = key_path(key, name)
            spec = self.fields.get(name)
            if spec is None:
                raise ConfigError(sub, _unknown_key_hint(name, self.fields))
            out[name] = spec(item, sub)
        for name in self.required:
            if name not in out:
                raise ConfigError(key_path(key, name), "is required here")
        return out


@dataclass(frozen=True)
class TableOf:
    """A table of named sub-tables: [identities.alice], [webhooks.kommo]."""

    item: Table

    def __call__(self, value: Any, key: str) -> dict[str, Any]:
        _expect(isinstance(value, dict), key, "a table of named tables", value)
        return {name: self.item(v, key_path(key, name)) for name, v in value.items()}


@dataclass(frozen=True)
class ArrayOf:
    """An array of tables: [[ownership]], [[waivers]]."""

    item: Table

    def __call__(self, value: Any, key: str) -> list[dict[str, Any]]:
        _expect(isinstance(value, list), key, "an array of tables ([[...]])", value)
        return [self.item(v, f"{key}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class MapOf:
    """A table whose keys are free (endpoints, check ids) and values share one type."""

    value: Check | Table
    key_check: Check | None = None

    def __call__(self, value: Any, key: str) -> dict[str, Any]:
        _expect(isinstance(value, dict), key, "a table", value)
        out = {}
        for name, item in value.items():
            sub = f'{key}."{name}"'
            if self.key_check is not None:
                self.key_check(name, sub)
            out[name] = self.value(item, sub)
        return out


def _unknown_key_hint(name: str, fields: Mapping[str, Any]) -> str:
    if f"{name}_env" in fields:
        return (f"secrets never go in the config file; put the value in an environment "
                f"variable and name it with '{name}_env'")
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(fields))}"
    return f"unknown key{hint}"


def _endpoint_key(value: Any, key: str) -> str:
    return endpoint(value, key) if " " in str(value) else path(value, key)


# ---------------------------------------------------------------------------------------
# The schema. Keep it in the order of PRODUCT.md so the two are easy to compare.
# ---------------------------------------------------------------------------------------

_BASE_FIELDS: dict[str, Any] = {
    "base_url": url,
    "page": path,
    "allowed_origins": list_of(origin),
    "cors_paths": list_of(path),
    "protected": list_of(endpoint),
    "openapi": path,
    "health": list_of(path),
    "health_budget_ms": integer(1),
    "version_paths": list_of(path),
    "allowed_hosts": list_of(string),
    "max_concurrency": integer(1, 64),
    "request_budget": integer(1),
    "timeout_s": number(0, 300),
    "max_body_bytes": integer(1024),
    "retries": integer(0, 5),
    "fail_on": severity,
    "auth": Table({
        "token_env": env_name,
        "expired_token_env": env_name,
        "header": string,
        "scheme": string,
    }),
    "identities": TableOf(Table({"token_env": env_name, "cookie_env": env_name, "tenant": string})),
    "ownership": ArrayOf(Table({"path": path, "owner": string}, required=("path", "owner"))),
    "authz": Table({"list_paths": list_of(path)}),
    "csrf": Table({"endpoints": list_of(endpoint), "identity": string}),
    "metrics": Table({"path": path, "token_env": env_name}),
    "tls": Table({"ca_bundle": string, "http_url": url, "min_days": integer(0), "hosts": list_of(host_port),
                  # false for a deliberately HTTP-only internal service: no https:// is tried
                  "require_https": boolean}),
    "cookies": Table({"paths": list_of(path)}),  # pages that set cookies (a login page)
    "webhooks": TableOf(Table({
        "path": path,
        "scheme": one_of("stripe", "github", "slack", "standard", "hmac-sha1", "hmac-sha256", "hmac-sha512"),
        "header": string,
        "secret_env": env_name,
        "tolerance_s": integer(0),
        "payload": string,
        "payload_file": string,
        "encoding": one_of("hex", "base64"),
        "prefix": string,
        "timestamp_header": string,
        "signed_content": string,
        "accepted": list_of(integer(100, 599)),
        "rejected": list_of(integer(100, 599)),
    }, required=("path", "scheme", "secret_env"))),
    "rate_limits": MapOf(rate, key_check=_endpoint_key),
    "latency": MapOf(Table({
        "p95_ms": number(0), "p99_ms": number(0), "requests": integer(1, 10_000),
        "max_error_rate": number(-1e-9, 1.0),
    }), key_check=_endpoint_key),
    "dns": Table({
        "domain": string, "expect_caa": boolean, "mail": boolean, "nameserver": host_port,
        "names": list_of(string), "expect": list_of(string),
    }),
    "network": Table({
        "host": string, "closed_ports": list_of(integer(1, 65535)),
        "redis": list_of(host_port), "postgres": list_of(host_port),
    }),
    "exposure": Table({"allow": list_of(path), "extra_paths": list_of(path)}),
    # pages: more pages and routes the errors checks probe with odd input (debug pages
    # usually show only where something raises)
    "errors": Table({"json_endpoints": list_of(endpoint), "pages": list_of(endpoint)}),
    "severity": MapOf(severity),
    "waivers": ArrayOf(Table({"id": string, "reason": string, "expires": date},
                             required=("id", "reason"))),
}

# A profile overrides any base key except other profiles.
PROFILE = Table(dict(_BASE_FIELDS))
ROOT = Table({**_BASE_FIELDS, "env": TableOf(PROFILE)})


def find_secret_literals(value: Any, key: str) -> None:
    """Refuse a string anywhere in the config that looks like a credential."""
    if isinstance(value, dict):
        for name, item in value.items():
            find_secret_literals(item, key_path(key, str(name)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            find_secret_literals(item, f"{key}[{i}]")
    elif isinstance(value, str) and any(p.search(value) for p in SECRET_LITERALS):
        raise ConfigError(key, "this value looks like a secret; secrets never go in the config "
                               "file: put it in an environment variable and name that variable "
                               "with a *_env key")
