"""One-line assertions for QA tests: each checklist line is one call.

Every helper runs the same built-in check the suite runs, and raises `CheckFailure` (an
AssertionError) whose message shows the request sent, the response seen (masked), and
the fix. A check that cannot judge (target error, rate limited) raises CannotJudge; one
with nothing to judge skips the test with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_prodready import schema
from pytest_prodready.checking import RENDERED_EXCHANGES, Result, run_check
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge, CheckFailure
from pytest_prodready.target import Target

HEADER_CHECKS = ("hsts", "content_type_options", "frame_options", "csp", "referrer_policy",
                 "no_version_disclosure")


def _raise_for(results: Iterable[Result]) -> list[Result]:
    __tracebackhide__ = True
    results = list(results)
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        exchanges = list(dict.fromkeys(ex for r in failed for ex in r.exchanges))
        raise CheckFailure("; ".join(r.message for r in failed), exchanges,
                           remediation=failed[0].remediation, check_id=failed[0].check_id,
                           rendered=_render(failed))
    errors = [r for r in results if r.outcome == "error"]
    if errors:
        raise CannotJudge("; ".join(f"[{r.check_id}] {r.message}" for r in errors))
    if results and all(r.outcome == "skipped" for r in results):
        import pytest

        pytest.skip("; ".join(f"[{r.check_id}] {r.message}" for r in results))
    return results


def _render(failed: list[Result]) -> str:
    """The failures' details; one whose evidence is already shown above gets only its verdict.

    Several checks often judge the same exchange (HSTS and CSP from one GET, two CORS rules
    from one preflight): the transcript is printed once, not once per check.
    """
    shown: set[Exchange] = set()
    parts = []
    for result in failed:
        seen = list(result.exchanges)
        if seen and shown.issuperset(seen):
            parts.append(f"[{result.check_id}] {result.message}\nFix: {result.remediation}\n"
                         "(evidence: the exchange(s) shown above)")
        else:
            parts.append(result.detail or f"[{result.check_id}] {result.message}")
            shown.update(seen[:RENDERED_EXCHANGES])
    return "\n\n".join(parts)


def assert_check(target: Target, check_id: str, subject: str = "", **settings: object) -> Result:
    """Run any built-in check by id; the helpers below are named shortcuts of this."""
    __tracebackhide__ = True
    return _raise_for([run_check(check_id, target, subject, **settings)])[0]


# -- CORS -------------------------------------------------------------------------------
def assert_cors_rejects_unknown_origin(target: Target, path: str = "/") -> None:
    """An unknown Origin is not granted, and never with credentials."""
    __tracebackhide__ = True
    _raise_for(run_check(c, target, schema.path(path, "path"))
               for c in ("cors.unknown_origin_rejected", "cors.no_wildcard_with_credentials"))


def assert_cors_rejects_null_origin(target: Target, path: str = "/") -> None:
    __tracebackhide__ = True
    assert_check(target, "cors.null_origin_rejected", schema.path(path, "path"))


def assert_cors_allows_origin(target: Target, path: str, origin: str) -> None:
    """Positive control: a listed origin is allowed."""
    __tracebackhide__ = True
    assert_check(target, "cors.allowed_origin_accepted", schema.path(path, "path"),
                 allowed_origins=[schema.origin(origin, "origin")])


# -- authentication -----------------------------------------------------------------------
def assert_requires_auth(target: Target, endpoint: str) -> None:
    """'GET /api/agents' (or '/api/agents') refuses an anonymous caller with 401/403."""
    __tracebackhide__ = True
    assert_check(target, "auth.required", schema.endpoint(endpoint, "endpoint"),
                 protected=[schema.endpoint(endpoint, "endpoint")])


def assert_rejects_invalid_token(target: Target, endpoint: str) -> None:
    __tracebackhide__ = True
    assert_check(target, "auth.invalid_token_rejected", schema.endpoint(endpoint, "endpoint"),
                 protected=[schema.endpoint(endpoint, "endpoint")])


# -- exposure -----------------------------------------------------------------------------
def assert_not_served(target: Target, *paths: str) -> None:
    """Each path (default: the built-in list of /.env, /.git/config, dumps...) is not served."""
    __tracebackhide__ = True
    subjects = [schema.path(p, "path") for p in paths] or [""]
    _raise_for(run_check("exposure.sensitive_paths", target, p) for p in subjects)


def assert_no_admin_surfaces(target: Target, allow: Iterable[str] = ()) -> None:
    """No admin UI, metrics or API docs is public, except the paths in `allow` and in the
    config's exposure.allow."""
    __tracebackhide__ = True
    exposure = dict(target.settings.get("exposure") or {})
    allowed = [*exposure.get("allow", []), *(schema.path(p, "allow") for p in allow)]
    exposure["allow"] = list(dict.fromkeys(allowed))
    assert_check(target, "exposure.admin_surfaces", exposure=exposure)


def assert_no_secrets_in_responses(target: Target, *paths: str) -> None:
    """No key, token or DSN in the responses of these paths (default: the run's usual probes)."""
    __tracebackhide__ = True
    subjects = [schema.path(p, "path") for p in paths] or [""]
    _raise_for(run_check("exposure.secrets_in_responses", target, p) for p in subjects)


# -- headers and cookies ------------------------------------------------------------------
def assert_security_headers(target: Target, path: str = "/",
                            checks: Iterable[str] = HEADER_CHECKS) -> None:
    """HSTS, nosniff, framing, CSP, Referrer-Policy and no version disclosure on a page."""
    __tracebackhide__ = True
    page = schema.path(path, "path")
    if isinstance(checks, str):  # checks="hsts" means that one check, not 'h', 's', 't', 's'
        checks = (checks,)
    _raise_for(run_check(f"headers.{c}", target, page=page) for c in checks)


def assert_cookie_flags(target: Target, path: str = "/") -> None:
    __tracebackhide__ = True
    assert_check(target, "cookies.flags", schema.path(path, "path"))


# -- errors -------------------------------------------------------------------------------
def assert_not_found_is_404(target: Target) -> None:
    __tracebackhide__ = True
    assert_check(target, "errors.not_found_is_404")


def assert_malformed_json_rejected(target: Target, endpoint: str) -> None:
    """Malformed JSON gets a 4xx, with no stack trace in the answer."""
    __tracebackhide__ = True
    normal = schema.endpoint(endpoint, "endpoint")
    _raise_for([run_check("errors.malformed_input_is_4xx", target, normal,
                          errors={"json_endpoints": [normal]})])


def assert_no_stack_traces(target: Target) -> None:
    __tracebackhide__ = True
    assert_check(target, "errors.no_stack_traces")


def assert_no_internal_hosts(target: Target) -> None:
    __tracebackhide__ = True
    assert_check(target, "errors.no_internal_hosts")


# -- health and metrics -------------------------------------------------------------------
def assert_healthy(target: Target, path: str = "/health", budget_ms: int | None = None) -> None:
    """The health endpoint answers 200 with a healthy body (within budget_ms if given)."""
    __tracebackhide__ = True
    extra = {"health_budget_ms": budget_ms} if budget_ms is not None else {}
    assert_check(target, "health.endpoint_ok", schema.path(path, "path"),
                 health=[schema.path(path, "path")], **extra)


def assert_version_exposed(target: Target, *paths: str) -> None:
    __tracebackhide__ = True
    extra = {"version_paths": [schema.path(p, "path") for p in paths]} if paths else {}
    assert_check(target, "health.version_exposed", "", **extra)


def assert_prometheus_metrics(target: Target, path: str = "/metrics") -> None:
    __tracebackhide__ = True
    metrics = dict(target.settings.get("metrics") or {})
    metrics["path"] = schema.path(path, "path")
    assert_check(target, "metrics.prometheus_valid", metrics=metrics)


# -- webhooks -----------------------------------------------------------------------------
WEBHOOK_CHECKS = ("webhook.valid_accepted", "webhook.unsigned_rejected",
                  "webhook.bad_signature_rejected", "webhook.replay_rejected")


def assert_webhook_verifies_signature(target: Target, path: str, scheme: str | None = None,
                                      secret: str | None = None, **options: object) -> None:
    """The webhook at `path` verifies its signature: it accepts a correctly signed request,
    and refuses an unsigned one, a wrong signature, a tampered body and (for schemes with a
    timestamp) a replay.

    `scheme` is stripe, github, slack, standard or hmac-sha1/256/512; `options` are the keys
    of a `[webhooks.NAME]` table (header, tolerance_s, payload, timestamp_header, accepted...).
    Without `secret`, the webhook configured at `path` is used, with its own secret.
    """
    __tracebackhide__ = True
    from dataclasses import replace

    from pytest_prodready.exceptions import ConfigError

    webhook_path = schema.path(path, "path")
    configured = {name: table for name, table in (target.settings.get("webhooks") or {}).items()
                  if table.get("path") == webhook_path}
    if secret is None:
        if not configured:
            raise ConfigError("secret", f"no webhook is configured at {webhook_path}: pass "
                                        "scheme=... and secret=... (e.g. from os.environ)")
        name, table = next(iter(configured.items()))
        secret = target.settings.secret(f"webhooks.{name}.secret_env")
        if not secret:
            raise ConfigError(f"webhooks.{name}.secret_env", "the secret is not available")
        table = {**table, **({"scheme": scheme} if scheme else {}), **options}
    else:
        if scheme is None:
            raise ConfigError("scheme", "pass scheme=: stripe, github, slack, standard, hmac-sha1, "
                                        "hmac-sha256 or hmac-sha512")
        name = scheme
        # The secret is handed over by value; secret_env only names where it would come from.
        table = {"path": webhook_path, "scheme": scheme,
                 "secret_env": "PRODREADY_WEBHOOK_SECRET", **options}
    target.masker.add(secret)
    webhooks = schema.PROFILE({"webhooks": {name: table}}, "")["webhooks"]
    view = target.scoped(webhooks=webhooks)
    view.settings = replace(view.settings,
                            secrets={**view.settings.secrets, f"webhooks.{name}.secret_env": secret})
    _raise_for([run_check(check_id, view, name) for check_id in WEBHOOK_CHECKS])


# -- TLS ----------------------------------------------------------------------------------
def _tls_settings(target: Target, endpoint: str | None) -> tuple[str, dict[str, object]]:
    """The subject and a tls table for one call; an endpoint named here joins tls.hosts (and
    so the allowlist), by the caller's own word, as if it were in the config."""
    tls = dict(target.settings.get("tls") or {})
    if not endpoint:
        return "", tls
    endpoint = schema.host_port(endpoint, "endpoint")
    hosts = list(tls.get("hosts") or [])
    tls["hosts"] = list(dict.fromkeys([*hosts, endpoint]))
    return endpoint, tls


def assert_certificate_valid(target: Target, min_days: int = 14, endpoint: str | None = None) -> None:
    """The certificate verifies (chain, name, SNI) and is valid for at least `min_days` more
    days; on the base URL's host:port, or on `endpoint` ('host:port')."""
    __tracebackhide__ = True
    subject, tls = _tls_settings(target, endpoint)
    tls["min_days"] = int(min_days)
    _raise_for(run_check(c, target, subject, tls=tls) for c in ("tls.cert_valid", "tls.cert_expiry"))


def assert_legacy_tls_refused(target: Target, endpoint: str | None = None) -> None:
    """TLS 1.0 and 1.1 handshakes are refused (base URL's host:port, or `endpoint`)."""
    __tracebackhide__ = True
    subject, tls = _tls_settings(target, endpoint)
    assert_check(target, "tls.legacy_protocols_refused", subject, tls=tls)


def assert_redirects_to_https(target: Target, http_url: str | None = None) -> None:
    """Plain HTTP (tls.http_url, `http_url`, or the base URL on http://) answers 301/308 to
    HTTPS on the same host, with no downgrade on the way."""
    __tracebackhide__ = True
    _, tls = _tls_settings(target, None)
    if http_url:
        tls["http_url"] = schema.url(http_url, "http_url")
    assert_check(target, "tls.http_redirects_to_https", tls=tls)


# -- network -------------------------------------------------------------------------------
def _network(target: Target, **values: object) -> dict[str, object]:
    """The network table for one call; a host named here joins the allowlist by the caller's word."""
    return {**dict(target.settings.get("network") or {}), **values}


def assert_ports_closed(target: Target, host: str, *ports: int) -> None:
    """No TCP connection is accepted on `ports` of `host` (default: the database and cache ports)."""
    __tracebackhide__ = True
    host = schema.hostname(host, "host")
    extra = {"closed_ports": [schema.integer(1, 65535)(p, "port") for p in ports]} if ports else {}
    assert_check(target, "network.ports_closed", host, network=_network(target, host=host, **extra))


def assert_redis_requires_auth(target: Target, *endpoints: str) -> None:
    """Each Redis 'host:port' answers an anonymous PING with NOAUTH (or DENIED, protected mode)."""
    __tracebackhide__ = True
    hosts = [schema.host_port(e, "endpoint") for e in endpoints]
    view = target.scoped(network=_network(target, redis=hosts))
    _raise_for(run_check("network.redis_requires_auth", view, e) for e in hosts)


def assert_postgres_requires_tls(target: Target, *endpoints: str) -> None:
    """Each PostgreSQL 'host:port' refuses a plain-text (non-TLS) startup."""
    __tracebackhide__ = True
    hosts = [schema.host_port(e, "endpoint") for e in endpoints]
    view = target.scoped(network=_network(target, postgres=hosts))
    _raise_for(run_check("network.postgres_requires_tls", view, e) for e in hosts)


def assert_mysql_offers_tls(target: Target, *endpoints: str) -> None:
    """Each MySQL/MariaDB 'host:port' offers TLS in its greeting (or refuses this host)."""
    __tracebackhide__ = True
    hosts = [schema.host_port(e, "endpoint") for e in endpoints]
    view = target.scoped(network=_network(target, mysql=hosts))
    _raise_for(run_check("network.mysql_offers_tls", view, e) for e in hosts)


# -- JWT ------------------------------------------------------------------------------------
JWT_ATTACKS = ("jwt.alg_none_rejected", "jwt.bad_signature_rejected", "jwt.expired_rejected",
               "jwt.weak_secret_rejected", "jwt.alg_confusion_rejected")


def _get_endpoint(endpoint: str) -> str:
    checked = schema.endpoint(endpoint, "endpoint")
    if not checked.startswith("GET "):
        from pytest_prodready.exceptions import ConfigError

        raise ConfigError("endpoint", f"{checked}: forged tokens are sent to GET endpoints only")
    return checked


def assert_rejects_alg_none(target: Target, endpoint: str) -> None:
    """A token with alg none (none/None/NONE/nOnE) is refused where the configured token
    (auth.token_env) is accepted."""
    __tracebackhide__ = True
    checked = _get_endpoint(endpoint)
    _raise_for(run_check(c, target, checked, protected=[checked])
               for c in ("jwt.valid_accepted", "jwt.alg_none_rejected"))


def assert_rejects_forged_tokens(target: Target, endpoint: str) -> None:
    """Every jwt attack (alg none, bad signatures, expired, weak secrets, alg confusion) is
    refused where the configured token is accepted; unconfigured ones are skipped."""
    __tracebackhide__ = True
    checked = _get_endpoint(endpoint)
    _raise_for(run_check(c, target, checked, protected=[checked])
               for c in ("jwt.valid_accepted", *JWT_ATTACKS))


# -- identities: authz, CSRF, OAuth, WebSocket --------------------------------------------
def _people(target: Target, *names: str) -> dict[str, object]:
    configured = target.settings.get("identities") or {}
    missing = [n for n in names if n not in configured]
    if missing:
        raise KeyError(f"no identity {missing[0]!r} in [identities] "
                       f"(configured: {', '.join(sorted(configured)) or 'none'})")
    return {n: configured[n] for n in names}


def assert_cannot_read(target: Target, path: str, *, owner: str, reader: str) -> None:
    """`reader` cannot read `path`, which belongs to `owner` ("bob cannot read alice's
    conversation"): the owner's read is the baseline, the reader's is refused or is not
    substantially like it."""
    __tracebackhide__ = True
    path = schema.path(path, "path")
    assert_check(target, "authz.cross_tenant_denied", path, identities=_people(target, owner, reader),
                 ownership=[{"path": path, "owner": owner}])


def assert_identity_headers_ignored(target: Target, path: str, *, owner: str, reader: str,
                                    headers: Iterable[str] = ()) -> None:
    """X-Org-Id & co. set to `owner`'s tenant/id on `reader`'s read of `path` (owned by
    `owner`, or a tenant-scoped list) do not hand over the owner's data."""
    __tracebackhide__ = True
    path = schema.path(path, "path")
    authz = dict(target.settings.get("authz") or {})
    if headers:
        authz["spoof_headers"] = [schema.header_name(h, "headers") for h in headers]
    assert_check(target, "authz.header_spoofing_ignored", path, identities=_people(target, owner, reader),
                 ownership=[{"path": path, "owner": owner}], authz=authz)


def assert_cross_site_write_refused(target: Target, endpoint: str, identity: str, *,
                                    safe_to_call: bool = False) -> None:
    """A cookie-authenticated `endpoint` ('POST /api/settings') refuses a cross-site request
    with `identity`'s cookie and no CSRF token. It is a real write on a vulnerable target:
    sent only with --prodready-active, or when `safe_to_call` says this endpoint may be."""
    __tracebackhide__ = True
    checked = schema.endpoint(endpoint, "endpoint")
    csrf = {**dict(target.settings.get("csrf") or {}), "endpoints": [checked], "identity": identity,
            "safe_to_call": [checked] if safe_to_call else []}
    assert_check(target, "csrf.cross_site_post_rejected", checked, csrf=csrf)


def assert_oauth_state_validated(target: Target, callback: str, start: str | None = None) -> None:
    """The OAuth `callback` refuses a missing or foreign state; with `start` (the path that
    begins the flow) judged against a callback with the state the target issued."""
    __tracebackhide__ = True
    csrf = {**dict(target.settings.get("csrf") or {}), "oauth_callback": schema.path(callback, "callback")}
    csrf.pop("oauth_start", None)
    if start:
        csrf["oauth_start"] = schema.path(start, "start")
    assert_check(target, "csrf.oauth_state_validated", csrf=csrf)


def assert_websocket_requires_auth(target: Target, path: str, identity: str | None = None) -> None:
    """The WebSocket at `path` refuses anonymous clients and forged tokens ("the WebSocket
    refuses anonymous clients"); with `identity`, her credential is accepted (control)."""
    __tracebackhide__ = True
    path = schema.path(path, "path")
    ws = {**dict(target.settings.get("websocket") or {}), "paths": [path]}
    ws.pop("identity", None)
    if identity:
        _people(target, identity)
        ws["identity"] = identity
    assert_check(target, "ws.auth_required", path, websocket=ws)


# -- OpenAPI sweep --------------------------------------------------------------------------
def assert_every_operation_requires_auth(target: Target, spec: str | None = None) -> None:
    """Every operation the OpenAPI spec secures refuses an anonymous call (GET/HEAD only,
    unless the run is active or openapi_sweep.allow_writes is set). `spec`: a path on the
    target, a URL or a file; default: the `openapi` setting."""
    __tracebackhide__ = True
    from pytest_prodready.checks.openapi_sweep import spec_source

    source = spec_source(spec, "spec") if spec else str(target.settings.get("openapi") or "")
    assert_check(target, "openapi.operations_require_auth", source, openapi=source or None)


# -- DNS -----------------------------------------------------------------------------------
def _dns(target: Target, **values: object) -> dict[str, object]:
    return {**dict(target.settings.get("dns") or {}), **values}


def assert_dns_records(target: Target, domain: str, *, mail: bool = True, caa: bool = True) -> None:
    """`domain` resolves, has a restricting CAA set (caa=True), one valid SPF record and
    DMARC p=quarantine/reject (mail=True); asked of dns.nameserver or the system resolver."""
    __tracebackhide__ = True
    domain = schema.hostname(domain, "domain")
    view = target.scoped(dns=_dns(target, domain=domain, mail=bool(mail), expect_caa=bool(caa)))
    checks = ["dns.resolves"] + (["dns.caa"] if caa else []) + (["dns.spf", "dns.dmarc"] if mail else [])
    _raise_for(run_check(c, view, domain.rstrip(".").lower()) for c in checks)


def assert_dnssec_signed(target: Target, domain: str) -> None:
    """`domain`'s zone publishes DNSKEY (it is DNSSEC-signed): asked for, so an unsigned zone
    fails (the suite's dns.dnssec only reports it unless dns.expect_dnssec = true)."""
    __tracebackhide__ = True
    domain = schema.hostname(domain, "domain")
    view = target.scoped(dns=_dns(target, domain=domain, expect_dnssec=True))
    _raise_for([run_check("dns.dnssec", view, domain.rstrip(".").lower())])


def assert_no_dangling_cnames(target: Target, *names: str) -> None:
    """No CNAME among `names` points at a name that does not resolve (takeover risk)."""
    __tracebackhide__ = True
    listed = [schema.hostname(n, "name").rstrip(".").lower() for n in names]
    view = target.scoped(dns=_dns(target, names=listed))
    _raise_for(run_check("dns.dangling_cname", view, n) for n in listed)


# -- rate limits and performance (active ones: mark the test @pytest.mark.prodready_active) --
def assert_rate_limited(target: Target, endpoint: str, rate: str) -> None:
    """`endpoint` ('POST /api/auth/login') refuses a burst with 429 + Retry-After within
    `rate` ('5/minute') plus slack; sends at most limit x 1.5 + 5 requests."""
    __tracebackhide__ = True
    key = schema.endpoint(endpoint, "endpoint")
    assert_check(target, "ratelimit.enforced", key, rate_limits={key: schema.rate(rate, "rate")})


def assert_latency_budget(target: Target, endpoint: str, p95_ms: float | None = None,
                          requests: int = 50, **budget: object) -> None:
    """N requests at bounded concurrency; p95 (default 500 ms), p99_ms, max_error_rate,
    thresholds=["p(95)<200"] as in [latency]."""
    __tracebackhide__ = True
    from pytest_prodready.checks.perf import LATENCY_ENTRY

    key = schema.endpoint(endpoint, "endpoint")
    entry = {"requests": requests, **budget, **({"p95_ms": p95_ms} if p95_ms is not None else {})}
    assert_check(target, "perf.latency_budget", key, latency={key: LATENCY_ENTRY(entry, "latency")})


def assert_compressed(target: Target, *paths: str) -> None:
    """Text responses over 1 KiB (the page, and `paths`) are compressed for gzip clients."""
    __tracebackhide__ = True
    perf = dict(target.settings.get("perf") or {})
    perf["compress"] = [schema.path(p, "path") for p in paths]
    assert_check(target, "perf.compression", perf=perf)


def assert_static_cached(target: Target, *paths: str) -> None:
    """Static assets carry long-lived Cache-Control (immutable when fingerprinted) and validators."""
    __tracebackhide__ = True
    perf = dict(target.settings.get("perf") or {})
    perf["static"] = [schema.path(p, "path") for p in paths]
    assert_check(target, "perf.static_caching", perf=perf)
