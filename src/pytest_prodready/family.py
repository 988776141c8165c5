"""The check-family contract: a family is one module that declares everything about itself.

A family module registers its checks with `@check(...)` (see checking.py) and declares a
module-level `FAMILY = Family(...)`: its config fragment (top-level keys and their schema),
their defaults, the validation that runs before any request, the hosts it adds to the
allowlist and the header names whose values are secrets. The core assembles the root
schema, the defaults, the allowlist and the masking from the families, and knows no
family's keys.

Families are found in two places: the built-in modules of `pytest_prodready.checks`
(BUILTIN below) and installed packages that declare an entry point in the group
`pytest_prodready.families` (value: a module with a FAMILY, or `module:attribute`), the way
pytest finds its plugins. See docs/extending.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_prodready.config import Settings

ENTRY_POINT_GROUP = "pytest_prodready.families"

# The built-in families, in catalogue order (modules of pytest_prodready.checks).
BUILTIN: tuple[str, ...] = (
    "headers", "cookies", "cors", "auth", "exposure", "errors", "health", "metrics", "tls",
    "webhooks", "network", "dns", "credentials",
    "ratelimit", "container", "authz", "csrf", "websocket", "jwt", "perf", "backup",
    "openapi_sweep",
)


def _no_hosts(_settings: Settings) -> Iterable[str]:
    return ()


def _no_problems(_settings: Settings) -> None:
    return None


@dataclass(frozen=True)
class Family:
    """What a family tells the core about itself.

    config: top-level config keys this family owns -> their schema (schema.py validators:
        Table, list_of, path, ...). A key may belong to one family only.
    defaults: default values for some of those keys.
    validate: run once the settings are loaded, before any request; raises ConfigError.
    hosts: host names (beyond the base URL's) this family's settings make part of the target.
    secret_headers: header names whose values are secrets (masked by name, never sent
        across origins), e.g. a webhook scheme's signature header.
    """

    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    validate: Callable[[Settings], None] = _no_problems
    hosts: Callable[[Settings], Iterable[str]] = _no_hosts
    secret_headers: frozenset[str] = frozenset()
    module: str = ""  # filled in when loaded: where its checks are registered

    @property
    def checks(self) -> list[Any]:
        """Its registered checks (CheckSpec), in registration order."""
        from pytest_prodready.checking import REGISTRY

        return [spec for spec in REGISTRY.values() if spec.module == self.module]


class FamilyError(Exception):
    """An installed family cannot be loaded or clashes with another; names both."""


def _family_of(module: ModuleType, attribute: str = "FAMILY") -> Family:
    family = getattr(module, attribute, None)
    if not isinstance(family, Family):
        raise FamilyError(f"{module.__name__} declares no {attribute} = Family(...)")
    return family if family.module else _with_module(family, module.__name__)


def _with_module(family: Family, module: str) -> Family:
    from dataclasses import replace

    return replace(family, module=module)


def _entry_point_families() -> list[Family]:
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken third-party package must say who it is
            raise FamilyError(f"the check family {ep.name!r} ({ep.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        if isinstance(loaded, ModuleType):
            found.append(_family_of(loaded))
        elif isinstance(loaded, Family):
            module = ep.value.partition(":")[0]
            found.append(loaded if loaded.module else _with_module(loaded, module))
        else:
            raise FamilyError(f"the entry point {ep.name!r} ({ep.value}) is neither a module "
                              "with FAMILY nor a Family")
    return found


# The families, loaded once per registry: a process-wide cache is right (the installed
# modules do not change during a run; pytest caches its plugins' entry points the same way),
# but it is keyed by the registry module itself, so a test harness that unloads and
# re-imports the package (pytester's in-process runs) gets its families registered again.
_LOADED: dict[int, dict[str, Family]] = {}


def families() -> dict[str, Family]:
    """Every family, built-in first, then installed ones."""
    from pytest_prodready import checking

    key = id(checking.REGISTRY)
    if key not in _LOADED:
        found = [_family_of(importlib.import_module(f"pytest_prodready.checks.{name}"))
                 for name in BUILTIN]
        found += _entry_point_families()
        loaded: dict[str, Family] = {}
        owners: dict[str, str] = {}
        for family in found:
            if family.name in loaded:
                raise FamilyError(f"two check families are named {family.name!r} "
                                  f"({loaded[family.name].module}, {family.module})")
            for config_key in family.config:
                if config_key in owners:
                    raise FamilyError(f"the config key {config_key!r} is claimed by the families "
                                      f"{owners[config_key]!r} and {family.name!r}")
                owners[config_key] = family.name
            loaded[family.name] = family
        _LOADED.clear()
        _LOADED[key] = loaded
    return _LOADED[key]


def config_fragments() -> dict[str, Any]:
    """Every family's config keys -> schema, for the root schema."""
    return {key: spec for family in families().values() for key, spec in family.config.items()}


def defaults() -> dict[str, Any]:
    return {key: value for family in families().values() for key, value in family.defaults.items()}


def validate(settings: Settings) -> None:
    """Each family's own checks of the settings, before any request (ConfigError)."""
    from pytest_prodready.exceptions import ConfigError
    from pytest_prodready.schema import config_error

    problems: list[tuple[str, str]] = []
    for family in families().values():
        try:
            family.validate(settings)
        except ConfigError as exc:
            problems += list(exc.problems)
    if problems:
        raise config_error(problems)


def hosts(settings: Settings) -> set[str]:
    return {host for family in families().values() for host in family.hosts(settings)}


def secret_headers() -> frozenset[str]:
    names: set[str] = set()
    for family in families().values():
        names |= {name.lower() for name in family.secret_headers}
    return frozenset(names)
