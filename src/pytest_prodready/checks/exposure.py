"""exposure.*: files, consoles and admin UIs that must not be public; secrets in responses.

Soft-404 aware by construction: a path counts as served only when the response *looks
like the thing* (a .env has KEY=value lines, a .git/config has [core]), so an SPA that
answers 200 with its index page to every path is not flagged, and a real .env behind it is.
Extra paths from config, which have no signature, are compared with the not-found baseline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import base_probes, not_found_probe
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.family import Family
from pytest_prodready.leaks import Leak, preview, response_leaks, values_to_mask
from pytest_prodready.target import Probe


@dataclass(frozen=True)
class Surface:
    path: str
    what: str
    looks_like: Callable[[bytes], bool]


def text_match(pattern: str, flags: int = re.MULTILINE) -> Callable[[bytes], bool]:
    regex = re.compile(pattern.encode(), flags)

    def looks_like(body: bytes) -> bool:
        # An HTML page (an SPA's index, a styled 404) is never a dotfile or a dump.
        head = body[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) and b"<html" not in pattern.encode():
            return False
        return regex.search(body) is not None

    return looks_like


def magic(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda body: body.startswith(prefixes)


def html_match(pattern: str) -> Callable[[bytes], bool]:
    regex = re.compile(pattern.encode(), re.IGNORECASE)
    return lambda body: regex.search(body[:65536]) is not None


_ENV = text_match(r"^\s*(export\s+)?[A-Z][A-Z0-9_]*\s*=")
_SQL = text_match(r"(CREATE TABLE|INSERT INTO|-- MySQL dump|PostgreSQL database dump)")
_KEY = text_match(r"-----BEGIN (RSA |OPENSSH |EC |DSA )?PRIVATE KEY-----")

SENSITIVE: tuple[Surface, ...] = (
    Surface("/.env", "environment file", _ENV),
    Surface("/.env.local", "environment file", _ENV),
    Surface("/.env.production", "environment file", _ENV),
    Surface("/.git/config", "git repository config", text_match(r"^\[core\]")),
    Surface("/.git/HEAD", "git repository HEAD", text_match(r"^ref: refs/")),
    Surface("/.DS_Store", "macOS folder index", magic(b"\x00\x00\x00\x01Bud1")),
    Surface("/.htpasswd", "password file", text_match(r"^[^:\s]+:(\$apr1\$|\$2[aby]\$|\{SHA\}|\$[156]\$)")),
    Surface("/.aws/credentials", "AWS credentials", text_match(r"aws_secret_access_key", re.I)),
    Surface("/.npmrc", "npm credentials", text_match(r"_authToken")),
    Surface("/id_rsa", "SSH private key", _KEY),
    Surface("/backup.sql", "database dump", _SQL),
    Surface("/dump.sql", "database dump", _SQL),
    Surface("/db.sql", "database dump", _SQL),
    Surface("/backup.zip", "backup archive", magic(b"PK\x03\x04")),
    Surface("/backup.tar.gz", "backup archive", magic(b"\x1f\x8b")),
    Surface("/wp-config.php.bak", "WordPress config backup", text_match(r"DB_PASSWORD")),
    Surface("/docker-compose.yml", "compose file", text_match(r"^services:\s*$")),
    Surface("/config/database.yml", "Rails database config", text_match(r"^\s*(adapter|password):")),
    Surface("/phpinfo.php", "phpinfo page", html_match(r"phpinfo\(\)|PHP Version \d")),
    Surface("/server-status", "Apache server status", html_match(r"Apache Server Status")),
    Surface("/actuator/env", "Spring actuator environment",
            text_match(r'"(propertySources|activeProfiles)"')),
    Surface("/actuator/heapdump", "JVM heap dump", magic(b"JAVA PROFILE")),
    Surface("/debug/pprof/", "Go pprof", html_match(r"Types of profiles available")),
    Surface("/console", "debug console", html_match(r"Werkzeug Debugger|H2 Console|interactive console")),
    Surface("/_profiler/", "Symfony profiler", html_match(r"Symfony Profiler")),
)

PROMETHEUS_TEXT = text_match(r"^# (HELP|TYPE) \w+")
ADMIN: tuple[Surface, ...] = (
    Surface("/metrics", "Prometheus metrics", PROMETHEUS_TEXT),
    Surface("/actuator", "Spring actuator", text_match(r'"_links"\s*:')),
    Surface("/swagger-ui.html", "Swagger UI", html_match(r"swagger-ui")),
    Surface("/swagger-ui/", "Swagger UI", html_match(r"swagger-ui")),
    Surface("/docs", "API docs UI", html_match(r"swagger-ui|redoc")),
    Surface("/openapi.json", "OpenAPI spec", text_match(r'"(openapi|swagger)"\s*:')),
    Surface("/swagger.json", "OpenAPI spec", text_match(r'"(openapi|swagger)"\s*:')),
    Surface("/login", "Grafana", html_match(r"<title>Grafana|grafana-app")),
    Surface("/graph", "Prometheus UI", html_match(r"<title>Prometheus")),
    Surface("/admin/", "admin console", html_match(r"Django administration|Site administration")),
    Surface("/phpmyadmin/", "phpMyAdmin", html_match(r"phpMyAdmin")),
)


def admin_surfaces_of(settings: Settings) -> tuple[Surface, ...]:
    """The admin surfaces to look at: the known ones, and the configured metrics.path when
    it lives elsewhere (judged like /metrics), minus what exposure.allow lists."""
    surfaces = ADMIN
    metrics_path = settings.get("metrics.path")
    if metrics_path and metrics_path not in {s.path for s in ADMIN}:
        surfaces = (*ADMIN, Surface(str(metrics_path), "Prometheus metrics", PROMETHEUS_TEXT))
    allowed = set(settings.get("exposure.allow", []))
    return tuple(s for s in surfaces if s.path not in allowed)


def _extra(settings: Settings) -> list[str]:
    return list(settings.get("exposure.extra_paths", []))


def _sensitive_probes(settings: Settings, subject: str) -> list[Probe]:
    paths = [subject] if subject else [s.path for s in SENSITIVE] + _extra(settings)
    return [not_found_probe(), *(Probe.get(p, follow_redirects=False) for p in paths)]


def _admin_probes(settings: Settings, _subject: str) -> list[Probe]:
    return [Probe.get(s.path, follow_redirects=False) for s in admin_surfaces_of(settings)]


def same_as_baseline(ex: Exchange, baseline: Exchange) -> bool:
    """True when a response is the target's generic answer to any unknown path."""
    if baseline.status != ex.status:
        return False
    a, b = ex.body, baseline.body
    return a[:256] == b[:256] and abs(len(a) - len(b)) <= max(64, len(b) // 20)


def served(ctx: Context, surfaces: tuple[Surface, ...], paths: list[str]) -> list[tuple[str, Exchange]]:
    """(description, exchange) for each path the target really serves. A path that got no
    answer (or a 429) hides nothing the others show; the check just cannot pass."""
    by_path = {s.path: s for s in surfaces}
    baseline_probe = not_found_probe()
    probes = {path: Probe.get(path, follow_redirects=False) for path in paths}
    usable = ctx.answers([baseline_probe, *probes.values()])
    answered = {id(ex) for ex in usable}
    baseline = ctx.target.fetch(baseline_probe)
    hits = []
    for path, probe in probes.items():
        ex = ctx.target.fetch(probe)
        if id(ex) not in answered or not ex.ok or not ex.body:
            continue
        surface = by_path.get(path)
        if surface is not None:
            if surface.looks_like(ex.body):
                hits.append((f"{path} ({surface.what})", ex))
        elif id(baseline) in answered and not same_as_baseline(ex, baseline):
            # (without the baseline an unknown path's answer cannot be told from it; the
            # baseline is then missing, and the check cannot pass)
            hits.append((f"{path} (answers {ex.status}, unlike an unknown path)", ex))
    return hits


@check("exposure.sensitive_paths", title="/.env, /.git, backups, dumps, debug consoles are not served",
       severity="critical", probes=_sensitive_probes,
       remediation="Do not deploy these files; deny dotfiles and backups at the web server "
                   "(e.g. nginx 'location ~ /\\. { deny all; }').")
def sensitive_paths(ctx: Context) -> None:
    paths = [ctx.subject] if ctx.subject else [s.path for s in SENSITIVE] + _extra(ctx.settings)
    hits = served(ctx, SENSITIVE, paths)
    for _, ex in hits:
        # The file is shown as evidence; the credentials in it must not travel on into
        # CI logs and reports.
        for value in leaked_values(ex, assignments=True):
            ctx.target.masker.add(value)
    if hits:
        ctx.fail("served to anyone: " + "; ".join(what for what, _ in hits), *(ex for _, ex in hits))
    ctx.passed(f"none of {len(paths)} sensitive path(s) served")


@check("exposure.admin_surfaces", title="metrics, actuator, API docs and admin UIs are not public",
       severity="medium", probes=_admin_probes,
       remediation="Put these behind authentication or an internal network; list intended "
                   "public ones in exposure.allow.")
def admin_surfaces(ctx: Context) -> None:
    surfaces = admin_surfaces_of(ctx.settings)
    paths = [s.path for s in surfaces]
    hits = served(ctx, surfaces, paths)
    if hits:
        ctx.fail("public without authentication: " + "; ".join(what for what, _ in hits)
                 + " (allow intended ones with exposure.allow)", *(ex for _, ex in hits))
    ctx.passed(f"none of {len(paths)} admin surface(s) public")


# In a served .env, config or dump: assignments whose name says they hold a secret.
_ASSIGNMENT = re.compile(r"""^\s*(?:export\s+)?([A-Za-z_][\w.-]*)\s*[=:]\s*["']?([^"'\s#]+)""",
                         re.MULTILINE)
_SECRET_NAME = re.compile(r"(secret|token|passw|pwd|key|credential|auth|dsn|salt)", re.IGNORECASE)


def find_secrets(ex: Exchange) -> list[Leak]:
    """Every leaked credential in a response's headers (Set-Cookie aside) and body."""
    return response_leaks(ex.headers, ex.text)


def leaked_values(ex: Exchange, *, assignments: bool = False, found: list[Leak] | None = None) -> list[str]:
    """The values a response leaks, to be masked in every output from here on (leaks'
    values_to_mask); with `assignments`, also the values of every secret-named KEY=value
    line, however weak, for a served .env or config file. `found`: the response's leaks,
    when the caller already has them (the scan is the costly part)."""
    values = values_to_mask(find_secrets(ex) if found is None else found, ex.text)
    if assignments:
        values += [value for name, value in _ASSIGNMENT.findall(ex.text) if _SECRET_NAME.search(name)]
    return values


def _secret_probes(settings: Settings, subject: str) -> list[Probe]:
    if subject:
        return [Probe.get(subject)]
    return base_probes(settings) + [Probe.get(p) for p in settings.get("version_paths", [])]


# A message names each finding; past this many it says how many more there are.
MAX_FINDINGS_SHOWN = 12


@check("exposure.secrets_in_responses", title="no key, token or DSN patterns in probed responses",
       severity="critical", probes=_secret_probes,
       remediation="Remove the credential from the response, then rotate it: it has been public.")
def secrets_in_responses(ctx: Context) -> None:
    findings: list[str] = []
    evidence: list[Exchange] = []
    responses = ctx.responses()
    for ex in responses:
        # The leaked values are masked in every output from here on; the message shows
        # only their kind, and a format's public prefix (ghp_…, AKIA…).
        # Scanned once, when the client fetched it (Target.leaks_in); masked from then on.
        found = ctx.target.leaks_in(ex)
        shown: set[tuple[str, str]] = set()
        for leak in found:
            if (leak.kind, leak.value) in shown:
                continue  # the same key twice in one response is one finding
            shown.add((leak.kind, leak.value))
            prefix = preview(leak)
            named = f"{leak.kind} '{prefix}'" if prefix else leak.kind
            findings.append(f"{named} in {ex.where}")
            if not any(ex is seen for seen in evidence):
                evidence.append(ex)
    if findings:
        more = len(findings) - MAX_FINDINGS_SHOWN
        ctx.fail("credentials in responses: " + "; ".join(findings[:MAX_FINDINGS_SHOWN])
                 + (f"; and {more} more" if more > 0 else ""), *evidence)
    ctx.passed(f"no credential patterns in {len(responses)} response(s)")


FAMILY = Family(
    name="exposure",
    config={"exposure": schema.Table({"allow": schema.list_of(schema.path),
                                      "extra_paths": schema.list_of(schema.path)})},
)
