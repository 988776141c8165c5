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
from pytest_prodready.exceptions import ConfigError
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
    "fail_on": "low",
}


def defaults() -> dict[str, Any]:
    """The core's defaults and every family's (family.py)."""
    from pytest_prodready import family

    return {**DEFAULTS, **family.defaults()}


# Who to blame for an override that is wrong, when the caller does not say (Overrides.blame).
_DEFAULT_BLAME = {
    "url": "--prodready-url / PRODREADY_URL",
    "config_path": "--prodready-config / PRODREADY_CONFIG",
    "profile": "--prodready-env / PRODREADY_ENV",
    "fail_on": "--prodready-fail-on / PRODREADY_FAIL_ON",
    "sensitive_url": "--prodready-sensitive-url / PRODREADY_SENSITIVE_URL",
    "fallback_url": "--base-url",
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
    # Where a relative config_path is read from (the invocation dir for one typed on the
    # command line or set in the environment); None: the rootdir.
    config_dir: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    # field name -> where its value came from, as an error names it: '--prodready-fail-on',
    # 'PRODREADY_FAIL_ON (env)', 'prodready_fail_on (ini)'
    blame: Mapping[str, str] = field(default_factory=dict)

    def blamed(self, name: str) -> str:
        return self.blame.get(name) or _DEFAULT_BLAME[name]


@dataclass(frozen=True)
class Settings:
    """The validated, merged configuration of one run."""

    values: Mapping[str, Any]
    secrets: Mapping[str, str]  # key path of a *_env key -> the secret value
    sources: Mapping[str, str]  # setting -> where it came from, for the report header
    config_file: Path | None = None
    config_prefix: str = ""  # the table the keys live under in config_file ('tool.prodready')
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


class Problems:
    """Every problem of one load, each blamed on its source, raised as one ConfigError.

    `in_file` problems are key paths of the config file (the table prefix is added and the
    message names the file); `outside` ones already name their source (an option, an
    environment variable, an ini value); `absorb` takes another load's error as it is.
    """

    def __init__(self, file: Path | None = None, prefix: str = "") -> None:
        self.file = file
        self.prefix = prefix
        self.problems: list[tuple[str, str]] = []
        self.where = ""

    def __bool__(self) -> bool:
        return bool(self.problems)

    def in_file(self, error: ConfigError) -> None:
        for key, problem in error.problems:
            full = f"{self.prefix}.{key}" if self.prefix and key else key
            self.problems.append((full, problem))
        if self.file is not None:
            self.where = f" ({self.file.name})"

    def outside(self, error: ConfigError) -> None:
        self.problems.extend(error.problems)

    def absorb(self, error: ConfigError) -> None:
        self.problems.extend(error.problems)
        if isinstance(error, schema.ConfigProblems) and error.where:
            self.where = error.where

    def error(self) -> ConfigError:
        return schema.config_error(self.problems, self.where)

    def raise_if_any(self) -> None:
        if self.problems:
            raise self.error()


def find_config_file(rootdir: Path, explicit: str | None,
                     blame: str = _DEFAULT_BLAME["config_path"]) -> tuple[Path | None, str]:
    """The config file and the table prefix its keys live under ('' or 'tool.prodready')."""
    if explicit:
        candidate = Path(explicit)
        if not candidate.is_absolute():
            candidate = rootdir / candidate
        try:
            found = candidate.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            raise schema.config_error([(blame, f"config file {schema.show(explicit)[1:-1]} not found "
                                               f"(looked at {candidate})")])
        return candidate, "tool.prodready" if candidate.name == "pyproject.toml" else ""
    own = rootdir / "prodready.toml"
    if own.is_file():
        return own, ""
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file():
        return pyproject, "tool.prodready"
    return None, ""


def read_table(path: Path, prefix: str) -> dict[str, Any]:
    """The prodready table of the TOML file at `path` (under `prefix`, if given)."""
    return read_config(path, prefix)[0]


def read_config(path: Path, prefix: str) -> tuple[dict[str, Any], str]:
    """The prodready table of the file and the prefix it was found under: a prodready.toml
    may hold a [tool.prodready] table too, and errors must then name the keys by it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path.name} is not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a few hundred levels
        # exhaust the stack. No prodready setting nests deeper than five.
        raise ConfigError("", f"{path.name} nests arrays or inline tables hundreds of levels deep "
                              f"and cannot be read; no prodready setting nests deeper than "
                              f"{schema.MAX_DEPTH}") from None
    if not prefix and isinstance(data.get("tool"), dict) and "prodready" in data["tool"]:
        prefix = "tool.prodready"
    table: Any = data
    for part in prefix.split(".") if prefix else ():
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(prefix, f"expected a table in {path.name}, got {schema.show(table) or 'a value'}")
    return table, prefix


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check a config table (keys as in prodready.toml) against the schema.

    Returns the normalised table, or raises one ConfigError listing every problem (its
    `.key`/`.problem` are the first, `.problems` all of them).
    """
    return schema.validate_table(raw)


def resolve_secrets(values: Mapping[str, Any], environ: Mapping[str, str], key: str = "") -> dict[str, str]:
    """Read every *_env key's variable; each missing one is a problem naming its key.

    Only the schema's own *_env keys count (bare names); a free key that happens to end in
    '_env', like the path of a rate limit "/api/dev_env", is not one.
    """
    found: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    _resolve(values, environ, key, found, problems)
    if problems:
        raise schema.config_error(problems)
    return found


def _resolve(values: Mapping[str, Any], environ: Mapping[str, str], key: str,
             found: dict[str, str], problems: list[tuple[str, str]]) -> None:
    for name, value in values.items():
        sub = f"{key}.{name}" if key else str(name)
        if isinstance(value, Mapping):
            _resolve(value, environ, sub, found, problems)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    _resolve(item, environ, f"{sub}[{i}]", found, problems)
        elif str(name).endswith("_env") and str(name).isidentifier() and isinstance(value, str):
            secret = environ.get(value)
            if not secret:
                state = "is empty" if value in environ else "is not set"
                problems.append((sub, f"environment variable {value} {state}; export it "
                                      f"(e.g. `export {value}=...`) or remove this key"))
            else:
                found[sub] = secret


def _resolve_files(values: dict[str, Any], base: Path) -> None:
    """Make file settings absolute (relative to the config file) and check they exist."""
    tls = values.get("tls")
    if isinstance(tls, dict) and tls.get("ca_bundle"):
        path = Path(str(tls["ca_bundle"])).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise ConfigError("tls.ca_bundle", f"{schema.show(tls['ca_bundle'])} is not a file (looked at "
                                               f"{path}; a relative path is read from the config file's "
                                               "folder)")
        tls["ca_bundle"] = str(path)


def load_settings(rootdir: Path, overrides: Overrides, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the run's Settings, or raise one ConfigError listing every problem found."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    file, prefix = find_config_file(overrides.config_dir or rootdir, overrides.config_path,
                                    overrides.blamed("config_path"))
    raw, prefix = read_config(file, prefix) if file else ({}, prefix)
    problems = Problems(file, prefix)
    validated: dict[str, Any] = {}
    try:
        validated = validate(raw)
    except ConfigError as exc:
        problems.in_file(exc)

    # The command line and the environment are checked with the file: one run, every problem.
    url = fallback = fail_on = None
    for name, given, check in (("url", overrides.url, schema.url),
                               ("fallback_url", overrides.fallback_url, schema.url),
                               ("fail_on", overrides.fail_on, schema.severity)):
        if given:
            try:
                checked = check(given, overrides.blamed(name))
            except ConfigError as exc:
                problems.outside(exc)
                continue
            if name == "url":
                url = checked
            elif name == "fallback_url":
                fallback = checked
            else:
                fail_on = checked
    profiles: dict[str, Any] = validated.pop("env", {}) or {}
    profile = overrides.profile
    if profile and not problems and profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none defined"
        in_where = f" in {file.name}" if file else " (no config file found)"
        problems.outside(ConfigError(overrides.blamed("profile"),
                                     f"profile {schema.show(profile)} is not defined{in_where}; "
                                     f"profiles: {known}"))
    problems.raise_if_any()

    values = defaults()
    for key in values:
        sources[key] = "default"
    values = _deep_merge(values, validated)
    for key in validated:
        sources[key] = f"{file.name}" if file else "config"
    if profile:
        values = _deep_merge(values, profiles[profile])
        for key in profiles[profile]:
            sources[key] = f"profile {profile}"

    if url:
        values["base_url"] = url
    elif "base_url" not in values and fallback:
        values["base_url"] = fallback
        sources["base_url"] = "--base-url (pytest-base-url)"
    if fail_on:
        values["fail_on"] = fail_on

    sources.update(overrides.sources)
    try:
        secrets = resolve_secrets(values, env)
    except ConfigError as exc:
        secrets = {}
        problems.in_file(exc)
    try:
        _resolve_files(values, file.parent if file else rootdir)
    except ConfigError as exc:
        problems.in_file(exc)
    problems.raise_if_any()

    settings = Settings(values=values, secrets=secrets, sources=sources, config_file=file,
                        config_prefix=prefix, profile=profile, only=overrides.only,
                        active=overrides.active)
    return _apply_sensitive(settings, overrides)


def _apply_sensitive(settings: Settings, overrides: Overrides) -> Settings:
    import re

    pattern = overrides.sensitive_url
    if not (pattern and settings.active and settings.base_url):
        return settings
    try:
        hit = re.search(pattern, settings.base_url)
    except re.error as exc:
        raise schema.config_error([(overrides.blamed("sensitive_url"),
                                    f"{schema.show(pattern)} is not a valid regex: {exc}")]) from None
    if hit and not overrides.force_active:
        return replace(settings, active=False,
                       active_refused=f"{settings.base_url} matches --prodready-sensitive-url; "
                                      "active checks refused (add --prodready-force-active to override)")
    return settings
