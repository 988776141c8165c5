"""Load, merge and validate the configuration; resolve secrets from the environment.

Precedence: command line > environment > config file (base table, then the chosen
profile) > defaults. Everything is checked here, before any request is sent.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_prodready import schema
from pytest_prodready.errors import ConfigError
from pytest_prodready.masking import Masker

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

DEFAULTS: dict[str, Any] = {
    "page": "/",
    "max_concurrency": 8,
    "request_budget": 2000,
    "timeout_s": 10.0,
    "max_body_bytes": 1024 * 1024,
    "retries": 2,
    "health_budget_ms": 2000,
    "fail_on": "low",
}


@dataclass(frozen=True)
class Overrides:
    """What the command line and the environment say; None means 'not given'."""

    url: str | None = None
    config_path: str | None = None
    profile: str | None = None
    fail_on: str | None = None
    only: tuple[str, ...] = ()
    active: bool = False
    force_active: bool = False
    sensitive_url: str | None = None
    fallback_url: str | None = None  # pytest-base-url's --base-url, lowest precedence
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """The validated, merged configuration of one run."""

    values: Mapping[str, Any]
    secrets: Mapping[str, str]  # key path of a *_env key -> the secret value
    sources: Mapping[str, str]  # setting -> where it came from, for the report header
    config_file: Path | None = None
    profile: str | None = None
    only: tuple[str, ...] = ()
    active: bool = False
    active_refused: str = ""  # why active checks are refused on this target, if they are

    def __repr__(self) -> str:
        # Never show secret values, even in `pytest -l` locals or a debugger.
        return (f"Settings(base_url={self.base_url!r}, profile={self.profile!r}, "
                f"secrets={sorted(self.secrets)!r})")

    @property
    def base_url(self) -> str:
        return str(self.values.get("base_url", ""))

    def get(self, key: str, default: Any = None) -> Any:
        """A value by dotted key path, e.g. settings.get('metrics.path')."""
        node: Any = self.values
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def secret(self, key: str) -> str | None:
        """The value of the env var named by a *_env key, e.g. secret('auth.token_env')."""
        return self.secrets.get(key)

    def with_values(self, **values: Any) -> Settings:
        return replace(self, values={**self.values, **values})

    def masker(self) -> Masker:
        return Masker(self.secrets.values())


def find_config_file(rootdir: Path, explicit: str | None) -> tuple[Path | None, str]:
    """The config file and the table prefix its keys live under ('' or 'tool.prodready')."""
    if explicit:
        candidate = Path(explicit)
        if not candidate.is_absolute():
            candidate = rootdir / candidate
        if not candidate.is_file():
            raise ConfigError("", f"config file {explicit} not found (from --prodready-config "
                                  "or PRODREADY_CONFIG)")
        return candidate, "tool.prodready" if candidate.name == "pyproject.toml" else ""
    own = rootdir / "prodready.toml"
    if own.is_file():
        return own, ""
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file():
        return pyproject, "tool.prodready"
    return None, ""


def read_table(path: Path, prefix: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path.name} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read {path}: {exc}") from None
    if not prefix and isinstance(data.get("tool"), dict) and "prodready" in data["tool"]:
        prefix = "tool.prodready"
    table: Any = data
    for part in prefix.split(".") if prefix else ():
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(prefix, "expected a table")
    return table


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _with_prefix(prefix: str, error: ConfigError, file: Path | None) -> ConfigError:
    where = f" ({file.name})" if file else ""
    key = f"{prefix}.{error.key}" if prefix and error.key else error.key
    wrapped = ConfigError(key, error.problem)
    wrapped.args = (f"prodready config{where}: {key}: {error.problem}" if key
                    else f"prodready config{where}: {error.problem}",)
    return wrapped


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check a config table (keys as in prodready.toml) against the schema.

    Returns the normalised table, or raises ConfigError naming the first bad key path.
    """
    schema.find_secret_literals(raw, "")
    return schema.ROOT(raw, "")


def resolve_secrets(values: Mapping[str, Any], environ: Mapping[str, str], key: str = "") -> dict[str, str]:
    """Read every *_env key's variable; a missing one is a config error naming the key.

    Only the schema's own *_env keys count (bare names); a free key that happens to end in
    '_env', like the path of a rate limit "/api/dev_env", is not one.
    """
    found: dict[str, str] = {}
    for name, value in values.items():
        sub = f"{key}.{name}" if key else name
        if isinstance(value, Mapping):
            found.update(resolve_secrets(value, environ, sub))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    found.update(resolve_secrets(item, environ, f"{sub}[{i}]"))
        elif name.endswith("_env") and name.isidentifier() and isinstance(value, str):
            secret = environ.get(value)
            if not secret:
                state = "is empty" if value in environ else "is not set"
                raise ConfigError(sub, f"environment variable {value} {state}; export it "
                                       f"(e.g. `export {value}=...`) or remove this key")
            found[sub] = secret
    return found


def _resolve_files(values: dict[str, Any], base: Path) -> None:
    """Make file settings absolute (relative to the config file) and check they exist."""
    tls = values.get("tls")
    if isinstance(tls, dict) and tls.get("ca_bundle"):
        path = Path(str(tls["ca_bundle"])).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise ConfigError("tls.ca_bundle", f"{tls['ca_bundle']!r} is not a file (looked at {path}; "
                                               "a relative path is read from the config file's folder)")
        tls["ca_bundle"] = str(path)


def load_settings(rootdir: Path, overrides: Overrides, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the run's Settings, or raise ConfigError naming the first problem."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    file, prefix = find_config_file(rootdir, overrides.config_path)
    raw = read_table(file, prefix) if file else {}
    try:
        validated = validate(raw)
    except ConfigError as exc:
        raise _with_prefix(prefix, exc, file) from None

    profiles: dict[str, Any] = validated.pop("env", {})
    values = {**DEFAULTS}
    for key in values:
        sources[key] = "default"
    values = _deep_merge(values, validated)
    for key in validated:
        sources[key] = f"{file.name}" if file else "config"
    profile = overrides.profile
    if profile:
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError("env", f"profile {profile!r} (from --prodready-env or PRODREADY_ENV) "
                                     f"is not defined; profiles: {known}")
        values = _deep_merge(values, profiles[profile])
        for key in profiles[profile]:
            sources[key] = f"profile {profile}"

    if overrides.url:
        values["base_url"] = schema.url(overrides.url, "--prodready-url / PRODREADY_URL")
    elif "base_url" not in values and overrides.fallback_url:
        values["base_url"] = schema.url(overrides.fallback_url, "--base-url")
        sources["base_url"] = "--base-url (pytest-base-url)"
    if overrides.fail_on:
        values["fail_on"] = schema.severity(overrides.fail_on, "--prodready-fail-on")

    sources.update(overrides.sources)
    try:
        secrets = resolve_secrets(values, env)
        _resolve_files(values, file.parent if file else rootdir)
    except ConfigError as exc:
        raise _with_prefix(prefix, exc, file) from None

    settings = Settings(values=values, secrets=secrets, sources=sources, config_file=file,
                        profile=profile, only=overrides.only, active=overrides.active)
    return _apply_sensitive(settings, overrides)


def _apply_sensitive(settings: Settings, overrides: Overrides) -> Settings:
    import re

    pattern = overrides.sensitive_url
    if not (pattern and settings.active and settings.base_url):
        return settings
    try:
        hit = re.search(pattern, settings.base_url)
    except re.error as exc:
        raise ConfigError("--prodready-sensitive-url", f"{pattern!r} is not a valid regex: {exc}") from None
    if hit and not overrides.force_active:
        return replace(settings, active=False,
                       active_refused=f"{settings.base_url} matches --prodready-sensitive-url; "
                                      "active checks refused (add --prodready-force-active to override)")
    return settings
