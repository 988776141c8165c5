"""Named users of the target, from config: who they are and how the client speaks as them.

    [identities.alice]
    token_env = "ALICE_TOKEN"     # sent as 'Authorization: Bearer <token>'
    cookie_env = "ALICE_COOKIE"   # or a cookie session, 'name=value', sent as 'Cookie: ...'
    tenant = "acme"               # her org/tenant id (spoofing probes set it in X-Org-Id & co.)
    user_id = "u-123"             # optional: her user id (X-User-Id & co.; default: her name)

Or a login flow, for staging tokens that expire:

    [identities.bob.login]
    endpoint = "POST /api/auth/login"
    username_env = "BOB_USER"       # optional; sent as username_field (default "username")
    password_env = "BOB_PASSWORD"   # sent as password_field (default "password")
    form = false                    # JSON body by default; true: form-encoded
    token_pointer = "/access_token" # the token at this JSON pointer of the answer, or
    cookie = "sessionid"            # this cookie from its Set-Cookie

The login is sent when a check first needs the identity (never in the prefetch), once per
target; a read that gets 401 logs in again once and is retried. The token or cookie it
returns is masked like any secret from the environment.

A probe never holds a secret: it names the credential by its config key
(`credential="identities.alice.token_env"`) and the client adds the header at send time,
so probes, cache keys and evidence stay free of the raw value (target.credential_headers).
Every identity's token and cookie are secrets of the run, masked in every output.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge, TargetError
from pytest_prodready.target import Probe, Target

__all__ = ["Identity", "ensure_credential", "fetch_as", "identities", "identity", "log_in",
           "read_probe"]

_LOGIN_LOCK = threading.Lock()  # one login at a time: two checks must not both log bob in


@dataclass(frozen=True)
class Identity:
    """One named user: the config keys of her credentials (not their values) and her ids."""

    name: str
    token_key: str | None = None  # 'identities.<name>.token_env' when configured and set
    cookie_key: str | None = None  # 'identities.<name>.cookie_env'
    tenant: str | None = None
    user_id: str | None = None
    login: Mapping[str, Any] | None = None  # the [identities.NAME.login] table

    @property
    def login_key(self) -> str | None:
        """Where a logged-in credential is kept among the run's secrets (by its config-key-like
        name: a cookie one ends in cookie_env, so the client sends it as a Cookie)."""
        if not self.login:
            return None
        kind = "cookie_env" if self.login.get("cookie") else "token"
        return f"identities.{self.name}.login.{kind}"

    @property
    def credential(self) -> str | None:
        """The credential a read as this identity sends: the token, else the cookie, else
        what her login flow returns."""
        return self.token_key or self.cookie_key or self.login_key

    @property
    def needs_login(self) -> bool:
        return not (self.token_key or self.cookie_key) and self.login is not None

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
            login=entry["login"] if isinstance(entry.get("login"), Mapping) else None,
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


# -- the login flow ---------------------------------------------------------------------------
def _pointer(document: Any, pointer: str) -> Any:
    """RFC 6901: the value at `pointer` ('/data/token'), or None."""
    node = document
    for raw in pointer.split("/")[1:] if pointer else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def log_in(target: Target, who: Identity) -> tuple[str, Exchange]:
    """Send `who`'s login and return the credential it gives (token or 'name=value' cookie)
    and the exchange. Raises CannotJudge (masked) when the login does not give one."""
    login = who.login or {}
    settings = target.settings
    base = f"identities.{who.name}.login"
    fields = {str(login.get("password_field") or "password"): settings.secret(f"{base}.password_env") or ""}
    user = settings.secret(f"{base}.username_env")
    if user is not None:
        fields = {str(login.get("username_field") or "username"): user, **fields}
    if login.get("form"):
        body, kind = urlencode(fields).encode(), "application/x-www-form-urlencoded"
    else:
        body, kind = json.dumps(fields).encode(), "application/json"
    # Sent now, not from the probe cache: a second login must really go out.
    ex = target.send(Probe.endpoint(str(login["endpoint"]), {"Content-Type": kind}, body=body,
                                    follow_redirects=False))
    where = f"{who.name}'s login ({login['endpoint']})"
    if ex.status is None:
        raise TargetError(f"{where}: {ex.error}")
    if not 200 <= ex.status < 400:
        raise CannotJudge(f"{where} answered {ex.status}: check {base}.password_env and the endpoint")
    value: str | None = None
    if login.get("cookie"):
        name = str(login["cookie"])
        for line in ex.header_all("Set-Cookie"):
            pair = line.partition(";")[0].strip()
            if pair.partition("=")[0].strip() == name and pair.partition("=")[2]:
                value = pair
    else:
        try:
            found = _pointer(json.loads(ex.text), str(login.get("token_pointer") or ""))
        except ValueError:
            found = None
        value = found if isinstance(found, str) and found else None
    if value is None:
        what = f"cookie {login.get('cookie')!r}" if login.get("cookie") else \
            f"a string at {login.get('token_pointer')!r}"
        raise CannotJudge(f"{where} answered {ex.status} without {what}")
    target.masker.add(value)
    return value, ex


def ensure_credential(target: Target, who: Identity, *, again: bool = False) -> None:
    """Make sure `who` has a credential among the target's secrets, logging in if she has a
    login flow and no credential yet (or `again`, after a 401)."""
    key = who.login_key
    if not who.needs_login or key is None:
        return
    with _LOGIN_LOCK:
        if target.settings.secret(key) is not None and not again:
            return
        value, _ = log_in(target, who)
        settings = target.settings
        target.settings = replace(settings, secrets={**settings.secrets, key: value})


def fetch_as(ctx: Any, who: Identity, path: str, headers: dict[str, str] | None = None) -> Exchange:
    """A GET of `path` as `who` through the check's context; with a login flow, logged in
    first and, on a 401, logged in again once and retried."""
    ensure_credential(ctx.target, who)
    probe = read_probe(who, path, headers)
    ex: Exchange = ctx.fetch(probe)
    if ex.status == 401 and who.needs_login:
        ensure_credential(ctx.target, who, again=True)
        ex = ctx.target.send(probe)  # the cached 401 was the old credential's
        ctx.exchanges.append(ex)
        if ex.status is None:
            raise TargetError(f"{ex.request_line}: {ex.error}")
    return ex
