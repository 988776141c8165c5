"""Named users of the target, from config: who they are and how the client speaks as them.

    [identities.alice]
    token_env = "ALICE_TOKEN"     # sent as 'Authorization: Bearer <token>'
    cookie_env = "ALICE_COOKIE"   # or a cookie session, 'name=value', sent as 'Cookie: ...'
    tenant = "acme"               # her org/tenant id (spoofing probes set it in X-Org-Id & co.)
    user_id = "u-123"             # optional: her user id (X-User-Id & co.; default: her name)

A probe never holds a secret: it names the credential by its config key
(`credential="identities.alice.token_env"`) and the client adds the header at send time,
so probes, cache keys and evidence stay free of the raw value (target.credential_headers).
Every identity's token and cookie are secrets of the run, masked in every output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_prodready.target import Probe

__all__ = ["Identity", "identities", "identity", "read_probe"]


@dataclass(frozen=True)
class Identity:
    """One named user: the config keys of her credentials (not their values) and her ids."""

    name: str
    token_key: str | None = None  # 'identities.<name>.token_env' when configured and set
    cookie_key: str | None = None  # 'identities.<name>.cookie_env'
    tenant: str | None = None
    user_id: str | None = None

    @property
    def credential(self) -> str | None:
        """The credential a read as this identity sends: the token, else the cookie."""
        return self.token_key or self.cookie_key

    @property
    def uid(self) -> str:
        """Her user id for X-User-Id & co.: the configured one, else her name."""
        return self.user_id or self.name


def identities(settings: Any) -> dict[str, Identity]:
    """Every configured identity, by name, in config order.

    A credential key counts only when its variable resolved (settings.secret): the loader
    refuses a named variable that is not set, so for a loaded config that is all of them.
    """
    table = settings.get("identities") or {}
    out: dict[str, Identity] = {}
    if not isinstance(table, Mapping):
        return out
    for name, entry in table.items():
        if not isinstance(entry, Mapping):
            continue
        token = f"identities.{name}.token_env"
        cookie = f"identities.{name}.cookie_env"
        out[str(name)] = Identity(
            name=str(name),
            token_key=token if entry.get("token_env") and settings.secret(token) else None,
            cookie_key=cookie if entry.get("cookie_env") and settings.secret(cookie) else None,
            tenant=str(entry["tenant"]) if entry.get("tenant") else None,
            user_id=str(entry["user_id"]) if entry.get("user_id") else None,
        )
    return out


def identity(settings: Any, name: str) -> Identity:
    """One identity by name (KeyError naming the configured ones when it is not there)."""
    found = identities(settings)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise KeyError(f"no identity {name!r} in [identities] (configured: {known})")
    return found[name]


def read_probe(who: Identity, path: str, headers: dict[str, str] | None = None) -> Probe:
    """A GET of `path` as `who` (her token, else her cookie)."""
    return Probe.get(path, headers, credential=who.credential)
