"""The demo tells its story: every built-in check has its intended outcome against the
embedded demo service, for the intended reason.

The demo runs in-process here (library level: DemoServer, load_settings, Target, execute),
exactly as `prodready demo` configures it, over real HTTPS on loopback with its own
throwaway CA. A change to the demo or to a check that breaks the story (a planted defect
no longer caught, a ready part no longer passing, a family skipped) fails here, by name.
The `prodready demo` console script itself is run as a subprocess in tests/test_cli.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import stripe

from pytest_prodready.checking import Outcome, Result, execute
from pytest_prodready.checks.webhooks import plan_for
from pytest_prodready.config import Overrides, Settings, load_settings
from pytest_prodready.demo.service import (
    DEMO_TOKEN,
    DEMO_TOKEN_ENV,
    DEMO_WEBHOOK_SECRET,
    DEMO_WEBHOOK_SECRET_ENV,
    WEBHOOK_PATH,
    DemoServer,
    stripe_signature_ok,
)
from pytest_prodready.registry import all_checks
from pytest_prodready.signing import sign
from pytest_prodready.target import Target

# Every registered check -> its outcome on the demo (on every subject), and a fragment its
# message must contain: the reason, so a check failing for another cause is caught too.
EXPECTED: dict[str, tuple[Outcome, str]] = {
    # headers: nosniff, framing and referrer policy are set; HSTS and CSP are not; the
    # Server header discloses a version.
    "headers.hsts": ("failed", "no Strict-Transport-Security header"),
    "headers.hsts_include_subdomains": ("skipped", "headers.hsts judges that"),
    "headers.content_type_options": ("passed", "nosniff"),
    "headers.frame_options": ("passed", "DENY"),
    "headers.csp": ("failed", "no Content-Security-Policy header"),
    "headers.referrer_policy": ("passed", "strict-origin-when-cross-origin"),
    "headers.no_version_disclosure": ("failed", "Server: gunicorn/20.1.0"),
    # a session cookie without flags, served over HTTPS
    "cookies.flags": ("failed", "session (GET /): not Secure, a session cookie without HttpOnly"),
    # any Origin reflected, with credentials (so the allowed one is accepted too)
    "cors.unknown_origin_rejected": ("failed", "was echoed in Access-Control-Allow-Origin"),
    "cors.null_origin_rejected": ("failed", "'Origin: null' is allowed"),
    "cors.no_wildcard_with_credentials": ("failed", "Access-Control-Allow-Credentials: true"),
    "cors.allowed_origin_accepted": ("passed", "configured origin(s) allowed"),
    "auth.required": ("passed", "refuses anonymous callers (401)"),
    "auth.invalid_token_rejected": ("passed", "refuses malformed and unknown tokens"),
    "exposure.sensitive_paths": ("failed", "served to anyone: /.env"),
    "exposure.admin_surfaces": ("passed", "admin surface(s) public"),
    "exposure.secrets_in_responses": ("passed", "no credential patterns"),
    "errors.not_found_is_404": ("passed", "404"),
    "errors.malformed_input_is_4xx": ("failed", "answered 500, expected 400 or 422"),
    "errors.no_stack_traces": ("failed", "Python traceback in POST /api/chat (500)"),
    "errors.no_internal_hosts": ("passed", "no internal address"),
    "health.endpoint_ok": ("passed", "/api/health healthy"),
    "health.version_exposed": ("passed", "version=2.3.1"),
    "metrics.prometheus_valid": ("passed", "request metrics"),
    # TLS: a valid, strong certificate from the throwaway CA, TLS 1.2/1.3 only; but the
    # certificate has 10 days left (min_days 14) and plain HTTP redirects with a 302.
    "tls.https_reachable": ("passed", "-> 200 over TLSv1."),
    "tls.http_redirects_to_https": ("failed", "-> 302 to https://localhost:"),
    "tls.cert_valid": ("passed", "demo-ca.pem and matches localhost"),
    "tls.cert_expiry": ("failed", "expires in 10.0 days"),
    "tls.cert_strength": ("passed", "EC 256 bits"),
    "tls.legacy_protocols_refused": ("passed", "refuses TLS 1.0 and TLS 1.1"),
    "tls.tls13_offered": ("passed", "offers TLS 1.3"),
    # a Stripe webhook that verifies its signature but never checks the timestamp's age
    "webhook.unsigned_rejected": ("passed", "refuses requests without a signature"),
    "webhook.bad_signature_rejected": ("passed", "refuses wrong signatures and tampered bodies"),
    "webhook.replay_rejected": ("failed", "900s old (tolerance 300s) was accepted (200"),
    "webhook.valid_accepted": ("passed", "accepts a correctly signed request (200)"),
    # network: the demo configures no database or cache host
    "network.ports_closed": ("skipped", "not configured: set network.host"),
    "network.redis_requires_auth": ("skipped", "not configured: set network.redis"),
    "network.postgres_requires_tls": ("skipped", "not configured: set network.postgres"),
    "network.memcached_requires_auth": ("skipped", "not configured: set network.memcached"),
    "network.elasticsearch_requires_auth": ("skipped", "not configured: set network.elasticsearch"),
    "network.mongodb_requires_auth": ("skipped", "not configured: set network.mongodb"),
    "network.mysql_offers_tls": ("skipped", "not configured: set network.mysql"),
    # dns: the demo configures no domain
    "dns.resolves": ("skipped", "not configured: set dns.domain"),
    "dns.caa": ("skipped", "not configured: set dns.domain"),
    "dns.spf": ("skipped", "not configured: set dns.domain"),
    "dns.dmarc": ("skipped", "not configured: set dns.domain"),
    "dns.dangling_cname": ("skipped", "not configured: set dns.names"),
    "dns.dnssec": ("skipped", "not configured: set dns.domain"),
    # default credentials: the demo is no admin product, so no login is tried
    "exposure.default_credentials": ("skipped", "nothing to try"),
    # ratelimit: active, and the demo configures no rate limits
    "ratelimit.enforced": ("skipped", "not configured: set rate_limits"),
    "ratelimit.login_lockout": ("skipped", "not configured: set lockout.endpoint"),
    # perf: latency is active and unconfigured; the demo's pages are all under 1 KiB; no
    # static assets are configured
    "perf.latency_budget": ("skipped", "not configured: set latency"),
    "perf.compression": ("skipped", "no text response over 1 KiB"),
    "perf.static_caching": ("skipped", "not configured: set perf.static"),
    # authz: the demo configures no identities
    "authz.cross_tenant_denied": ("skipped", "not configured: set identities, ownership"),
    "authz.header_spoofing_ignored": ("skipped", "not configured: set identities"),
    # csrf: the demo has no cookie sessions nor OAuth login
    "csrf.cross_site_post_rejected": ("skipped", "not configured: set csrf.endpoints, csrf.identity"),
    "csrf.oauth_state_validated": ("skipped", "not configured: set csrf.oauth_callback"),
    # ws: the demo serves no WebSocket
    "ws.auth_required": ("skipped", "not configured: set websocket.paths"),
    # container: the demo configures no image
    "container.non_root": ("skipped", "not configured: set container.image"),
    "container.graceful_shutdown": ("skipped",
                                    "not configured: set container.image, container.slow_path"),
    "container.fails_without_secrets": ("skipped",
                                        "not configured: set container.image, container.secrets"),
    # jwt: the demo's token is opaque, not a JWT
    "jwt.valid_accepted": ("skipped", "is not a JWT"),
    "jwt.alg_none_rejected": ("skipped", "is not a JWT"),
    "jwt.bad_signature_rejected": ("skipped", "is not a JWT"),
    "jwt.expired_rejected": ("skipped", "is not a JWT"),
    "jwt.weak_secret_rejected": ("skipped", "is not a JWT"),
    "jwt.alg_confusion_rejected": ("skipped", "not configured: set auth.public_key_file or auth.jwks_url"),
    # openapi: the demo serves no spec
    "openapi.operations_require_auth": ("skipped", "not configured: set openapi"),
    # backup: the demo configures no dump
    "backup.restore": ("skipped",
                       "not configured: set backup.dump, backup.queries"),
}
SECRETS = (DEMO_TOKEN, DEMO_WEBHOOK_SECRET)
LOOPBACK_NAMES = {"localhost", "127.0.0.1"}


@dataclass
class DemoRun:
    server: DemoServer
    settings: Settings
    results: list[Result]
    elapsed_s: float
    started_s: float


def run_suite(settings: Settings) -> list[Result]:
    """The built-in suite as the plugin runs it: preflight, prefetch, then every check on
    every subject (a check missing its config is one item, which skips)."""
    checks = all_checks().values()
    items = [(spec, subject) for spec in checks
             for subject in (spec.subjects_for(settings) if not spec.missing_config(settings) else [""])]
    with Target(settings) as target:
        target.preflight()
        target.prefetch([probe for spec, subject in items if not spec.missing_config(settings)
                         for probe in spec.probes_for(settings, subject)])
        return [execute(spec, target, subject) for spec, subject in items]


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoRun]:
    start = time.monotonic()
    with DemoServer() as server:
        started = time.monotonic() - start
        server.write_config()
        # The secrets come from the demo alone, never from the shell running the tests.
        settings = load_settings(server.directory, Overrides(), environ=server.env)
        results = run_suite(settings)
        yield DemoRun(server, settings, results, time.monotonic() - start, started)


def test_the_table_covers_every_registered_check() -> None:
    """A new check must be given its place in the demo's story (and in this table)."""
    assert sorted(EXPECTED) == sorted(all_checks())


def test_every_check_has_its_intended_outcome(demo: DemoRun) -> None:
    seen = {r.check_id for r in demo.results}
    assert seen == set(EXPECTED), "checks not run at all: " + ", ".join(sorted(set(EXPECTED) - seen))
    wrong = [f"{r.check_id}[{r.subject}]: {r.outcome} (expected {EXPECTED[r.check_id][0]}): {r.message}"
             for r in demo.results if r.outcome != EXPECTED[r.check_id][0]]
    assert not wrong, "the demo's story broke:\n" + "\n".join(wrong)


def test_every_verdict_is_for_the_intended_reason(demo: DemoRun) -> None:
    wrong = [f"{r.check_id}[{r.subject}]: {r.message!r} lacks {EXPECTED[r.check_id][1]!r}"
             for r in demo.results if EXPECTED[r.check_id][1] not in r.message]
    assert not wrong, "\n".join(wrong)


def test_nothing_is_skipped_and_every_family_is_demonstrated(demo: DemoRun) -> None:
    """No skip (but for a check that only refines one the demo fails), no 'cannot judge';
    every failure shows its evidence and its fix."""
    assert [r for r in demo.results if r.outcome not in ("passed", "failed")
            and EXPECTED[r.check_id][0] != "skipped"] == []
    for result in (r for r in demo.results if r.outcome == "failed"):
        assert result.exchanges or result.facts, result.check_id
        assert f"Fix: {result.remediation}" in result.detail


def test_the_counts_the_scorecard_shows(demo: DemoRun) -> None:
    """The families this work added: TLS 5 passed / 2 failed, webhooks 3 / 1."""
    def counts(category: str) -> tuple[int, int]:
        mine = [r for r in demo.results if r.check_id.startswith(category + ".")]
        return (sum(r.outcome == "passed" for r in mine), sum(r.outcome == "failed" for r in mine))

    assert counts("tls") == (5, 2)
    assert counts("webhook") == (3, 1)
    assert sum(r.outcome == "failed" for r in demo.results) == 16
    assert sum(r.outcome == "passed" for r in demo.results) == 24


def test_failures_show_the_evidence_a_newcomer_needs(demo: DemoRun) -> None:
    by_id = {r.check_id: r for r in demo.results}
    expiry = by_id["tls.cert_expiry"].detail
    assert "negotiated TLSv1.3" in expiry and "SANs      DNS:localhost, IP:127.0.0.1" in expiry
    assert "(10.0 days left)" in expiry
    redirect = by_id["tls.http_redirects_to_https"].detail
    assert "< 302 Found" in redirect and "< Location: https://localhost:" in redirect
    replay = by_id["webhook.replay_rejected"].detail
    assert f"> POST {demo.server.url}{WEBHOOK_PATH}" in replay
    assert "> Stripe-Signature: ****" in replay and "< 200 OK" in replay


def test_no_secret_in_any_output(demo: DemoRun) -> None:
    """The token, the webhook secret and every signature the run made stay masked in
    messages, failure texts and the report's evidence."""
    plan = plan_for(demo.settings, "stripe")  # the same Settings: the same signatures as the run
    assert plan is not None
    signatures = [v for v in plan.secret_values if len(v) >= 16]
    assert signatures
    for result in demo.results:
        text = "\n".join([result.message, result.detail,
                          json.dumps(result.evidence(), default=str)])
        for secret in (*SECRETS, *signatures):
            assert secret not in text, f"a secret in the output of {result.check_id}"


def test_only_loopback_is_touched(demo: DemoRun) -> None:
    assert demo.server.httpsd.server_address[0] == "127.0.0.1"
    assert demo.server.httpd.server_address[0] == "127.0.0.1"
    for url in (demo.server.url, demo.server.http_url, demo.settings.base_url,
                str(demo.settings.get("tls.http_url"))):
        assert urlsplit(url).hostname in LOOPBACK_NAMES, url
    for result in demo.results:
        for item in result.evidence():
            where = str(item["request"]["url"] if "request" in item else item["tls"]["endpoint"])
            host = urlsplit(where).hostname if "//" in where else where.rpartition(":")[0]
            assert host in LOOPBACK_NAMES, (result.check_id, where)


def test_the_demo_is_fast(demo: DemoRun) -> None:
    """Start-up (minting the CA and the leaf, binding two ports) is milliseconds; the whole
    suite a second or two. Generous bounds: the tests run two at a time on two cores."""
    assert demo.started_s < 2.0
    assert demo.elapsed_s < 15.0


def test_the_config_is_what_a_team_would_write(demo: DemoRun) -> None:
    config = demo.server.config()
    assert DEMO_TOKEN not in config and DEMO_WEBHOOK_SECRET not in config
    assert f'token_env = "{DEMO_TOKEN_ENV}"' in config
    assert f'secret_env = "{DEMO_WEBHOOK_SECRET_ENV}"' in config
    assert 'ca_bundle = "certs/demo-ca.pem"' in config  # relative to the config file
    assert demo.settings.get("tls.ca_bundle") == str(demo.server.ca_file)
    assert demo.server.ca_file.parent.parent == demo.server.directory
    assert demo.server.pki.key_file.stat().st_mode & 0o077 == 0  # the key: owner only


def test_the_certificate_is_trusted_through_the_demo_ca_only(demo: DemoRun) -> None:
    """The leaf verifies against the throwaway CA for both names it carries, and nothing
    else vouches for it."""
    port = int(urlsplit(demo.server.url).port or 0)
    with requests.get(f"{demo.server.url}/api/health", verify=str(demo.server.ca_file), timeout=5) as r:
        assert r.status_code == 200
    with requests.get(f"https://127.0.0.1:{port}/api/health", verify=str(demo.server.ca_file),
                      timeout=5) as r:
        assert r.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{demo.server.url}/api/health", timeout=5)  # the system store alone


def test_the_webhook_verifier_and_its_planted_defect() -> None:
    """The demo's verifier agrees with Stripe's own library on everything but the
    timestamp's age, which it never checks: the one defect webhook.replay_rejected shows."""
    body = b'{"id": "evt_1", "type": "invoice.paid"}'
    now = int(time.time())
    fresh = sign("stripe", body, DEMO_WEBHOOK_SECRET, timestamp=now)["Stripe-Signature"]
    stale = sign("stripe", body, DEMO_WEBHOOK_SECRET, timestamp=now - 3600)["Stripe-Signature"]
    wrong = sign("stripe", body, "whsec_not_the_secret", timestamp=now)["Stripe-Signature"]
    assert stripe_signature_ok(fresh, body, DEMO_WEBHOOK_SECRET)
    stripe.WebhookSignature.verify_header(body.decode(), fresh, DEMO_WEBHOOK_SECRET, tolerance=300)
    assert not stripe_signature_ok(wrong, body, DEMO_WEBHOOK_SECRET)
    assert not stripe_signature_ok(fresh, body + b" ", DEMO_WEBHOOK_SECRET)
    for broken in ("", "t=,v1=", f"t={now}", "v1=" + fresh.partition("v1=")[2], "garbage"):
        assert not stripe_signature_ok(broken, body, DEMO_WEBHOOK_SECRET), broken
    # The defect: a replay an hour old is accepted; Stripe's library refuses it.
    assert stripe_signature_ok(stale, body, DEMO_WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError, match="outside the tolerance"):
        stripe.WebhookSignature.verify_header(body.decode(), stale, DEMO_WEBHOOK_SECRET, tolerance=300)


def test_broken_clients_neither_stop_the_demo_nor_print(capfd: pytest.CaptureFixture[str]) -> None:
    """A legacy-TLS client, plain HTTP on the HTTPS port, a client that connects and hangs
    up, one that stalls: the demo's output stays clean and the next request is served."""
    with DemoServer() as server:
        port = int(urlsplit(server.url).port or 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # asking for TLS 1.0 is the point
            legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            legacy.check_hostname, legacy.verify_mode = False, ssl.CERT_NONE
            legacy.minimum_version = legacy.maximum_version = ssl.TLSVersion.TLSv1
            legacy.set_ciphers("ALL:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                pytest.raises(ssl.SSLError):
            legacy.wrap_socket(raw, server_hostname="localhost")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):  # the handshake failed: hung up on
                assert raw.recv(100) == b""
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        stalled = socket.create_connection(("127.0.0.1", port), timeout=5)  # says nothing
        try:
            with requests.get(f"{server.url}/api/health", verify=str(server.ca_file), timeout=5) as r:
                assert r.status_code == 200
            with requests.get(server.http_url, allow_redirects=False, timeout=5) as r:
                assert (r.status_code, r.headers["Location"]) == (302, f"{server.url}/")
        finally:
            stalled.close()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_its_own_directory_is_removed_on_exit() -> None:
    with DemoServer() as server:
        directory = server.directory
        assert server.ca_file.is_file()
    assert not directory.exists()


def test_a_given_directory_is_kept(tmp_path: Path) -> None:
    with DemoServer(tmp_path) as server:
        config = server.write_config()
    assert config == tmp_path / "prodready.toml"
    assert (tmp_path / "certs" / "demo-ca.pem").is_file()
