"""authz.*: one identity cannot read another's resources, by asking or by a spoofed header.

    [identities.alice]   token_env = "ALICE_TOKEN"   tenant = "acme"
    [identities.bob]     token_env = "BOB_TOKEN"     tenant = "globex"
    [[ownership]]        path = "/api/conversations/123"   owner = "alice"
    [authz]              list_paths = ["/api/conversations"]

- authz.cross_tenant_denied: the owner's read is the baseline (a clean 2xx, else cannot
  judge); another identity's read of the same path is a finding when it answers 2xx with a
  body substantially like the owner's (similarity.likeness): a target that answers
  200 with an error body is refusing, not leaking.
- authz.header_spoofing_ignored: another identity's read with X-Org-Id & co. set to the
  owner's tenant (or user id) must not get the owner's data. A finding is attributed to
  the header only when the same read without it did not get that data (an IDOR is not
  spoofing; authz.cross_tenant_denied reports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge
from pytest_prodready.family import Family
from pytest_prodready.identities import Identity, fetch_as, identities, read_probe
from pytest_prodready.similarity import DEFAULT_THRESHOLD, error_phrases, likeness
from pytest_prodready.target import Probe

SPOOF_HEADERS: tuple[str, ...] = ("X-Org-Id", "X-Tenant-Id", "X-User-Id", "X-Forwarded-User",
                                  "X-Original-User")
# Headers whose value is a tenant (organisation) id; the others carry a user id.
TENANT_HEADER = re.compile(r"org|tenant|account|company|workspace|team|customer", re.IGNORECASE)


# -- who owns what ---------------------------------------------------------------------------
def owners(settings: Settings) -> dict[str, str]:
    """Each owned path -> its owner's name ([[ownership]], the first entry of a path wins)."""
    out: dict[str, str] = {}
    for entry in settings.get("ownership") or ():
        out.setdefault(str(entry["path"]), str(entry["owner"]))
    return out


def _callers(settings: Settings) -> dict[str, Identity]:
    return {name: who for name, who in identities(settings).items() if who.credential}


def _owned_pairs(settings: Settings, path: str) -> list[tuple[Identity, Identity]]:
    """(owner, other) for an owned path: the owner against every other identity."""
    callers = _callers(settings)
    owner = callers.get(owners(settings).get(path, ""))
    if owner is None:
        return []
    return [(owner, other) for other in callers.values() if other.name != owner.name]


def _list_pairs(settings: Settings, path: str) -> list[tuple[Identity, Identity]]:
    """(whose list, who reads it) for a tenant-scoped list: every ordered pair of identities."""
    callers = list(_callers(settings).values())
    return [(a, b) for a in callers for b in callers if a.name != b.name]


def _pairs(settings: Settings, path: str) -> list[tuple[Identity, Identity]]:
    if path in owners(settings):
        return _owned_pairs(settings, path)
    return _list_pairs(settings, path)


def spoof_headers(settings: Settings) -> tuple[str, ...]:
    return tuple(settings.get("authz.spoof_headers") or SPOOF_HEADERS)


def spoof_value(header: str, owner: Identity) -> str | None:
    """What a caller pretending to be `owner` puts in `header` (None: nothing to pretend)."""
    return owner.tenant if TENANT_HEADER.search(header) else owner.uid


def _threshold(settings: Settings) -> float:
    return float(settings.get("authz.similarity") or DEFAULT_THRESHOLD)


# -- probes -----------------------------------------------------------------------------------
def _prefetchable(*people: Identity) -> bool:
    # An identity with a login flow has no credential before her judge logs her in.
    return not any(who.needs_login for who in people)


def _cross_probes(settings: Settings, path: str) -> dict[str, Probe]:
    probes: dict[str, Probe] = {}
    for owner, other in _owned_pairs(settings, path):
        if _prefetchable(owner):
            probes[f"read:{owner.name}"] = read_probe(owner, path)
        if _prefetchable(other):
            probes[f"read:{other.name}"] = read_probe(other, path)
    return probes


def _spoof_probes(settings: Settings, path: str) -> dict[str, Probe]:
    probes: dict[str, Probe] = {}
    for owner, other in _pairs(settings, path):
        if _prefetchable(owner):
            probes[f"read:{owner.name}"] = read_probe(owner, path)
        if not _prefetchable(other):
            continue
        probes[f"read:{other.name}"] = read_probe(other, path)
        for header in spoof_headers(settings):
            value = spoof_value(header, owner)
            if value is not None:
                probes[f"spoof:{other.name}:{header}:{owner.name}"] = read_probe(
                    other, path, {header: value})
    return probes


def _spoof_subjects(settings: Settings) -> list[str]:
    return list(owners(settings)) + [str(p) for p in settings.get("authz.list_paths") or ()]


# -- judging ----------------------------------------------------------------------------------
def baseline_problem(ex: Exchange) -> str | None:
    """Why the owner's own read cannot serve as the baseline (None when it can)."""
    status = ex.status or 0
    if not 200 <= status < 300:
        return f"answered {status}"
    if not ex.text.strip():
        return f"answered {status} with an empty body"
    phrases = error_phrases(ex.text)
    if phrases:
        return f"answered {status} with an error body ({', '.join(repr(p) for p in phrases[:3])})"
    return None


def _baseline(ctx: Context, owner: Identity, path: str) -> Exchange:
    ex = fetch_as(ctx, owner, path)
    problem = baseline_problem(ex)
    if problem:
        raise CannotJudge(f"{owner.name}'s own read of {path} {problem}: without a clean 2xx "
                          f"baseline there is nothing to compare; check {owner.name}'s credential "
                          "and the path")
    return ex


@dataclass(frozen=True)
class Read:
    """Another identity's read judged against the owner's."""

    exchange: Exchange
    leaked: bool
    how: str


def judge_read(owner_ex: Exchange, ex: Exchange, threshold: float) -> Read:
    status = ex.status or 0
    if not 200 <= status < 300:
        return Read(ex, False, f"refused ({status})")
    alike = likeness(owner_ex.text, ex.text, threshold)
    if alike.same_data:
        return Read(ex, True, f"{status}, {alike.describe()}")
    return Read(ex, False, f"{status} but not the owner's data ({alike.describe()})")


@check("authz.cross_tenant_denied", title="identity B cannot read a resource owned by identity A",
       severity="critical", subjects=lambda s: list(owners(s)), probes=_cross_probes,
       needs=("identities", "ownership"),
       remediation="Check on every read that the object belongs to the caller's user or tenant "
                   "(scope the query by the caller's id, never by an id from the request alone); "
                   "answer 404 or 403 otherwise.")
def cross_tenant_denied(ctx: Context) -> None:
    path = ctx.subject
    pairs = _owned_pairs(ctx.settings, path)
    if not pairs:
        ctx.skip(f"{path}: only its owner has a credential; configure another identity in "
                 "[identities] to read it as someone else")
    owner = pairs[0][0]
    owner_ex = _baseline(ctx, owner, path)
    threshold = _threshold(ctx.settings)
    reads = {other.name: judge_read(owner_ex, fetch_as(ctx, other, path), threshold)
             for _, other in pairs}
    leaked = {name: r for name, r in reads.items() if r.leaked}
    if leaked:
        ctx.fail("; ".join(f"{name} read {owner.name}'s {path} ({r.how})" for name, r in leaked.items()),
                 owner_ex, *(r.exchange for r in leaked.values()))
    ctx.passed(f"{path} ({owner.name}'s, {owner_ex.status}): "
               + "; ".join(f"{name} {r.how}" for name, r in reads.items()))


@check("authz.header_spoofing_ignored",
       title="X-Org-Id / X-Tenant-Id / X-User-Id headers do not change what a caller may read",
       severity="critical", subjects=_spoof_subjects, probes=_spoof_probes, needs=("identities",),
       remediation="Take the tenant and user from the verified credential only; ignore (or strip "
                   "at the edge) identity headers such as X-Org-Id, X-Tenant-Id and X-User-Id "
                   "sent by clients.")
def header_spoofing_ignored(ctx: Context) -> None:
    path = ctx.subject
    pairs = _pairs(ctx.settings, path)
    if not pairs:
        ctx.skip(f"{path}: configure at least two identities with credentials in [identities] "
                 "(and an owner in [[ownership]] for owned paths)")
    threshold = _threshold(ctx.settings)
    owned = path in owners(ctx.settings)
    findings: list[tuple[str, list[Exchange]]] = []
    judged: list[str] = []
    undecided: list[str] = []
    for owner, other in pairs:
        try:
            owner_ex = _baseline(ctx, owner, path)
        except CannotJudge as exc:
            undecided.append(str(exc))
            continue
        plain = judge_read(owner_ex, fetch_as(ctx, other, path), threshold)
        for header in spoof_headers(ctx.settings):
            value = spoof_value(header, owner)
            if value is None:
                continue
            ex = fetch_as(ctx, other, path, {header: value})
            spoofed = judge_read(owner_ex, ex, threshold)
            what = f"{other.name} with {header}: {value}"
            if not spoofed.leaked:
                judged.append(f"{what}: {spoofed.how}")
            elif plain.leaked:
                # The header is not what let the read through: an IDOR (owned paths) or two
                # lists that look the same. Not a spoofing finding.
                undecided.append(f"{what}: {other.name} gets {owner.name}'s data even without "
                                 "the header" + (" (an IDOR: see authz.cross_tenant_denied)"
                                                 if owned else " (the lists look the same)"))
            else:
                findings.append((f"{what} read {owner.name}'s {path} ({spoofed.how}); without "
                                 f"the header: {plain.how}", [owner_ex, plain.exchange, ex]))
    if findings:
        shown = list(dict.fromkeys(ex for _, exs in findings for ex in exs))
        ctx.fail(f"identity headers are trusted: {'; '.join(text for text, _ in findings)}", *shown)
    if not judged and not undecided:
        ctx.skip(f"{path}: no spoof header applies (org/tenant headers need the owner's tenant: "
                 "set identities.NAME.tenant)")
    if not judged:
        raise CannotJudge(f"{path}: no spoofed read could be judged: {'; '.join(undecided)}")
    ctx.passed(f"{path}: {len(judged)} spoofed read(s) changed nothing ({'; '.join(judged[:4])}"
               + (f"; +{len(judged) - 4} more" if len(judged) > 4 else "") + ")"
               + (f"; not judged: {'; '.join(undecided)}" if undecided else ""))


# -- config -----------------------------------------------------------------------------------
def _validate(settings: Settings) -> None:
    problems: list[tuple[str, str]] = []
    table = settings.get("identities") or {}
    for name, entry in table.items():
        if not (entry.get("token_env") or entry.get("cookie_env") or entry.get("login")):
            problems.append((f"identities.{name}", "set token_env, cookie_env or a login table: "
                                                   "an identity needs a credential to speak as her"))
        login = entry.get("login") or {}
        if login and bool(login.get("token_pointer")) == bool(login.get("cookie")):
            problems.append((f"identities.{name}.login", "set token_pointer (the token in the "
                                                         "JSON answer) or cookie (its name), one "
                                                         "of them"))
    known = ", ".join(sorted(table)) or "none"
    for i, entry in enumerate(settings.get("ownership") or ()):
        if entry.get("owner") not in table:
            problems.append((f"ownership[{i}].owner", f"no identity {entry.get('owner')!r} in "
                                                      f"[identities] (configured: {known})"))
    if problems:
        raise schema.config_error(problems)


FAMILY = Family(
    name="authz",
    config={
        # Named users: each one's token or cookie from env, her tenant (and user id) for
        # the spoofing probes. Used by authz.*, csrf.* and the QA helpers.
        "identities": schema.TableOf(schema.Table({
            "token_env": schema.env_name, "cookie_env": schema.env_name,
            "tenant": schema.header_value, "user_id": schema.header_value,
            "login": schema.Table({
                "endpoint": schema.endpoint, "username_env": schema.env_name,
                "password_env": schema.env_name, "username_field": schema.string,
                "password_field": schema.string, "form": schema.boolean,
                "token_pointer": schema.string, "cookie": schema.string,
            }, required=("endpoint", "password_env")),
        })),
        "ownership": schema.ArrayOf(schema.Table({"path": schema.path, "owner": schema.string},
                                                 required=("path", "owner"))),
        "authz": schema.Table({
            "list_paths": schema.list_of(schema.path),           # tenant-scoped lists
            "spoof_headers": schema.list_of(schema.header_name),  # default: SPOOF_HEADERS
            "similarity": schema.number(0.5, 1.0),                # "substantially like": 0.9
        }),
    },
    validate=_validate,
)
