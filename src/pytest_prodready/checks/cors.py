"""cors.*: an unknown or null Origin is never granted, credentials never go to strangers.

Each path is asked twice per origin: a simple GET and a preflight OPTIONS, because many
APIs only reveal their CORS policy on one of the two.

Besides a made-up origin, the unknown origins include look-alikes of each allowed origin
that an attacker can register and that a loose pattern grants: `re.match` or `startswith`
without an end anchor (`https://app.example.com.prodready-lookalike.example`), `endswith`
or a regex without a start anchor (`https://prodreadyexample.com`), and a regex whose dots
are not escaped (`https://app-example.com`). None of them is a subdomain of the allowed
origin's domain, so no intended policy grants them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import UNKNOWN_ORIGIN, protected_get_paths
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.family import Family
from pytest_prodready.target import Probe


def cors_paths(settings: Settings) -> list[str]:
    configured = settings.get("cors_paths")
    if configured:
        return list(configured)
    return [str(settings.get("page", "/")), *protected_get_paths(settings)]


def origin_probes(path: str, origin: str) -> list[Probe]:
    return [
        Probe.get(path, {"Origin": origin}),
        Probe.of("OPTIONS", path, {"Origin": origin, "Access-Control-Request-Method": "GET",
                                   "Access-Control-Request-Headers": "authorization"}),
    ]


def cors_path(settings: Settings, subject: str) -> str:
    """The path a CORS check asks: its subject, else the page (run_check without a subject)."""
    return subject or str(settings.get("page", "/"))


LOOKALIKE_DOMAIN = "prodready-lookalike.example"  # .example: reserved, never anyone's
LOOKALIKE_PREFIX = "prodready"


def lookalike_origins(allowed: list[str]) -> dict[str, str]:
    """{look-alike origin: what a pattern that grants it gets wrong} for the allowed origins
    (see the module docstring). IP literals and single-label hosts have none."""
    out: dict[str, str] = {}
    for origin in allowed:
        parts = urlsplit(origin)
        host, scheme = parts.hostname or "", parts.scheme
        port = f":{parts.port}" if parts.port else ""
        labels = host.split(".")
        if len(labels) < 2 or labels[-1].isdigit() or ":" in host:
            continue
        registrable = ".".join(labels[-2:])  # approximate (no public suffix list): enough here
        candidates = {
            f"{scheme}://{host}.{LOOKALIKE_DOMAIN}{port}": f"a prefix match for {origin} (no end anchor)",
            f"{scheme}://{LOOKALIKE_PREFIX}{registrable}{port}":
                f"a suffix match for {origin} without a dot boundary (endswith('{registrable}'))",
        }
        if len(labels) > 2:
            candidates[f"{scheme}://{labels[0]}-{'.'.join(labels[1:])}{port}"] = (
                f"'.' matching any character in the pattern for {origin}")
        for candidate, why in candidates.items():
            if candidate not in allowed:
                out.setdefault(candidate, why)
    return out


def unknown_origins(settings: Settings) -> dict[str, str]:
    """The origins cors.unknown_origin_rejected sends, with why each must be refused."""
    return {UNKNOWN_ORIGIN: "", **lookalike_origins(list(settings.get("allowed_origins") or []))}


def _unknown(settings: Settings, subject: str) -> list[Probe]:
    return origin_probes(cors_path(settings, subject), UNKNOWN_ORIGIN)


def _unknown_and_lookalikes(settings: Settings, subject: str) -> list[Probe]:
    path = cors_path(settings, subject)
    return [p for origin in unknown_origins(settings) for p in origin_probes(path, origin)]


def _null(settings: Settings, subject: str) -> list[Probe]:
    return origin_probes(cors_path(settings, subject), "null")


def _allowed(settings: Settings, subject: str) -> list[Probe]:
    path = cors_path(settings, subject)
    return [p for origin in settings.get("allowed_origins", []) for p in origin_probes(path, origin)]


def allow_origin(ex: Exchange) -> str | None:
    value = ex.header("Access-Control-Allow-Origin")
    return value.strip() if value is not None else None


def allows_credentials(ex: Exchange) -> bool:
    return (ex.header("Access-Control-Allow-Credentials") or "").strip().lower() == "true"


def granted(ctx: Context, origin: str) -> list[Exchange]:
    """The exchanges (GET and preflight) whose Access-Control-Allow-Origin grants `origin`."""
    exchanges = ctx.answers(origin_probes(cors_path(ctx.settings, ctx.subject), origin))
    return [ex for ex in exchanges if allow_origin(ex) == origin]


@check("cors.unknown_origin_rejected", title="an unknown Origin is not echoed in Access-Control-Allow-Origin",
       severity="critical", subjects=cors_paths, probes=_unknown_and_lookalikes,
       remediation="Only allow listed origins (allowed_origins); never reflect the request's Origin "
                   "nor answer '*' when the API has a list of origins; compare origins exactly, or "
                   "anchor a pattern at both ends with its dots escaped.")
def unknown_origin_rejected(ctx: Context) -> None:
    path = cors_path(ctx.settings, ctx.subject)
    origins = unknown_origins(ctx.settings)
    exchanges = ctx.answers(_unknown_and_lookalikes(ctx.settings, ctx.subject))
    hits = [ex for ex in exchanges if allow_origin(ex) == UNKNOWN_ORIGIN]
    if hits:
        creds = " with credentials allowed" if any(allows_credentials(ex) for ex in hits) else ""
        ctx.fail(f"{UNKNOWN_ORIGIN} was echoed in Access-Control-Allow-Origin{creds} "
                 f"({', '.join(ex.where for ex in hits)})", *hits)
    lookalikes = [ex for ex in exchanges if origins.get(allow_origin(ex) or "")]
    if lookalikes:
        granted = list(dict.fromkeys(str(allow_origin(ex)) for ex in lookalikes))
        creds = " with credentials allowed" if any(allows_credentials(ex) for ex in lookalikes) else ""
        ctx.fail(f"the look-alike origin {granted[0]} was granted{creds}: "
                 f"{origins[granted[0]]}" + (f" (and {len(granted) - 1} more look-alike(s))"
                                             if len(granted) > 1 else "")
                 + f" ({', '.join(ex.where for ex in lookalikes)})", *lookalikes)
    wildcard = [ex for ex in exchanges if allow_origin(ex) == "*"]
    if wildcard and ctx.settings.get("allowed_origins"):
        # The team listed its origins; '*' grants every other origin too.
        ctx.fail(f"Access-Control-Allow-Origin: * grants {UNKNOWN_ORIGIN} (and every origin), "
                 f"though allowed_origins lists the origins allowed "
                 f"({', '.join(ex.where for ex in wildcard)})", *wildcard)
    if wildcard:
        ctx.passed(f"Access-Control-Allow-Origin: * on {path} (a public API; no allowed_origins "
                   f"configured, and no credentials for it)")
        return
    answers = sorted({allow_origin(ex) or "no Access-Control-Allow-Origin" for ex in exchanges})
    ctx.passed(f"{UNKNOWN_ORIGIN} not granted on {path} (answered: {', '.join(answers)})")


@check("cors.null_origin_rejected", title="Origin: null is not allowed",
       severity="high", subjects=cors_paths, probes=_null,
       remediation="Never allow the 'null' origin: sandboxed iframes and file: pages send it.")
def null_origin_rejected(ctx: Context) -> None:
    hits = granted(ctx, "null")
    if hits:
        ctx.fail(f"'Origin: null' is allowed ({', '.join(ex.where for ex in hits)})", *hits)
    ctx.passed(f"'null' origin not granted on {cors_path(ctx.settings, ctx.subject)}")


@check("cors.no_wildcard_with_credentials",
       title="never '*' or a reflected origin together with credentials",
       severity="critical", subjects=cors_paths, probes=_unknown,
       remediation="Send Access-Control-Allow-Credentials only with an explicitly listed origin.")
def no_wildcard_with_credentials(ctx: Context) -> None:
    path = cors_path(ctx.settings, ctx.subject)
    exchanges = ctx.answers(origin_probes(path, UNKNOWN_ORIGIN))
    bad = [ex for ex in exchanges
           if allows_credentials(ex) and allow_origin(ex) in ("*", UNKNOWN_ORIGIN)]
    if bad:
        ctx.fail(f"Access-Control-Allow-Origin {allow_origin(bad[0])!r} together with "
                 f"Access-Control-Allow-Credentials: true for an unknown origin "
                 f"({', '.join(ex.where for ex in bad)})", *bad)
    ctx.passed(f"no credentialed CORS for unknown origins on {path}")


@check("cors.allowed_origin_accepted", title="each configured origin is allowed (positive control)",
       severity="medium", subjects=cors_paths, probes=_allowed, needs=("allowed_origins",),
       remediation="Allow each origin of allowed_origins, or remove it from the list.")
def allowed_origin_accepted(ctx: Context) -> None:
    path = cors_path(ctx.settings, ctx.subject)
    refused = []
    for origin in ctx.settings.get("allowed_origins", []):
        exchanges = ctx.fetch_all(origin_probes(path, origin))
        if not any(allow_origin(ex) in (origin, "*") for ex in exchanges):
            refused.append(origin)
    if refused:
        ctx.fail(f"configured origin(s) not allowed on {path}: {', '.join(refused)}")
    ctx.passed(f"all {len(ctx.settings.get('allowed_origins', []))} configured origin(s) allowed")


FAMILY = Family(
    name="cors",
    config={"allowed_origins": schema.list_of(schema.origin), "cors_paths": schema.list_of(schema.path)},
)
