"""Bad config is one clear usage error that names the key, before any request is sent.

Each malformed config runs a real `pytest --prodready` (pytester) pointed at a real target
whose log must stay empty. Every problem of a file is listed at once, each blamed on its
source (the file's key path, the option, the env var, the ini value), and no error quotes
a value that looks like a secret. tests/test_config_fuzz.py feeds random tables to the
validator and the loader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from pytest_prodready import config, schema
from pytest_prodready.exceptions import ConfigError
from tests.targets.webapp import Served, serve

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz"
STRIPE_KEY = "sk_live_51HxQz8Kf3mPq7Lr2"
MISSING_ENV = "PRODREADY_TEST_SURELY_UNSET_TOKEN"
EMPTY_ENV = "PRODREADY_TEST_EMPTY_TOKEN"
BASE = 'base_url = "{url}"\n'


@dataclass(frozen=True)
class Case:
    id: str
    toml: str  # '{url}' is the live target's URL
    expect: tuple[str, ...]  # all of these in the error
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    file: str = "prodready"
    problems: int = 1  # one problem is one line; n problems are a heading and n lines
    ini: str = ""


DEEP_ARRAYS = "health = " + "[" * 2000 + "]" * 2000 + "\n"
DEEP_TABLES = "page = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HOOK = '[webhooks.kommo]\npath = "/api/crm/webhook"\nscheme = "hmac-sha256"\n'

CASES = [
    Case("unknown-key", BASE + "max_concurency = 8\n",
         ("prodready config (prodready.toml): max_concurency: unknown key",
          "did you mean 'max_concurrency'?")),
    Case("unknown-nested-key", BASE + '[metrics]\npaths = "/metrics"\n',
         ("metrics.paths: unknown key", "did you mean 'path'?")),
    Case("unknown-key-in-profile", BASE + '[env.production]\nbase_ur = "https://api.example.com"\n',
         ("env.production.base_ur", "did you mean 'base_url'?")),
    Case("string-for-max_concurrency", BASE + 'max_concurrency = "8"\n',
         ("max_concurrency: expected an integer, got a string '8'",)),
    Case("int-for-base_url", "base_url = 8080\n", ("base_url: expected a string, got an integer 8080",)),
    Case("max_concurrency-out-of-range", BASE + "max_concurrency = 0\n",
         ("max_concurrency: 0 is out of range", "from 1 to 64")),
    Case("nan-timeout", BASE + "timeout_s = nan\n", ("timeout_s: nan is not a finite number",)),
    Case("ftp-base_url", 'base_url = "ftp://files.example.com"\n',
         ("base_url: 'ftp://files.example.com' is not an http(s) URL",)),
    Case("unparsable-base_url", 'base_url = "http://[::1"\n',
         ("base_url: 'http://[::1' is not a valid URL",)),
    Case("port-out-of-range", 'base_url = "http://127.0.0.1:99999"\n',
         ("base_url: 'http://127.0.0.1:99999' is not a valid URL",)),
    Case("origin-with-a-path", BASE + 'allowed_origins = ["https://app.example.com/login"]\n',
         ("allowed_origins[0]", "is an origin, so it has no path")),
    Case("relative-path", BASE + 'health = ["/api/health", "api/ready"]\n',
         ("health[1]: 'api/ready' must be a path starting with '/'",)),
    Case("unknown-method-in-protected", BASE + 'protected = ["/api/agents", "FETCH /api/chat"]\n',
         ("protected[1]: 'FETCH /api/chat': unknown method 'FETCH'",)),
    Case("host-with-a-scheme-in-allowed_hosts", BASE + 'allowed_hosts = ["https://cdn.example.com"]\n',
         ("allowed_hosts[0]: 'https://cdn.example.com' is not a host name", "'cdn.example.com'")),
    # Blame the right source: the option, the env var or the ini value that was given.
    Case("bad-url-on-command-line", BASE, ("prodready config: --prodready-url: 'staging.example.com'",
                                           "is not an http(s) URL"),
         args=("--prodready-url", "staging.example.com")),
    Case("bad-url-in-env", BASE, ("prodready config: PRODREADY_URL (env): 'staging.example.com'",),
         env={"PRODREADY_URL": "staging.example.com"}),
    Case("bad-severity-in-fail-on-option", BASE, ("--prodready-fail-on", "'urgent' is not a severity"),
         args=("--prodready-fail-on", "urgent")),
    Case("bad-severity-in-fail-on-env", BASE,
         ("prodready config: PRODREADY_FAIL_ON (env): 'urgent' is not a severity",),
         env={"PRODREADY_FAIL_ON": "urgent"}),
    Case("bad-severity-in-fail-on-ini", BASE,
         ("prodready config: prodready_fail_on (ini): 'urgent' is not a severity",),
         ini="[pytest]\nprodready_fail_on = urgent\n"),
    Case("bad-severity-in-severity-table", BASE + '[severity]\n"headers.csp" = "urgent"\n',
         ('severity."headers.csp"', "'urgent' is not a severity")),
    Case("unknown-check-in-severity-table", BASE + '[severity]\n"headers.cps" = "low"\n',
         ('prodready config (prodready.toml): severity."headers.cps"', "did you mean 'headers.csp'?")),
    Case("missing-env-var", BASE + f'[auth]\ntoken_env = "{MISSING_ENV}"\n',
         ("auth.token_env", f"environment variable {MISSING_ENV} is not set")),
    Case("empty-env-var", BASE + f'[metrics]\npath = "/metrics"\ntoken_env = "{EMPTY_ENV}"\n',
         ("metrics.token_env", f"environment variable {EMPTY_ENV} is empty"), env={EMPTY_ENV: ""}),
    Case("missing-env-var-of-a-webhook", BASE + HOOK + f'secret_env = "{MISSING_ENV}"\n',
         ("webhooks.kommo.secret_env", MISSING_ENV)),
    Case("value-not-an-env-name", BASE + '[auth]\ntoken_env = "my token"\n',
         ("auth.token_env: 'my token' is not an environment variable name",)),
    # A secret given where the NAME of its variable belongs is refused without being repeated.
    Case("random-token-as-env-name", BASE + '[auth]\ntoken_env = "tok-valid-3b8f1c9a7d2e!"\n',
         ("auth.token_env: this looks like a secret value, not a variable name",)),
    Case("webhook-secret-as-env-name", BASE + HOOK + f'secret_env = "{WHSEC}"\n',
         ("webhooks.kommo.secret_env: this looks like a secret value, not a variable name",)),
    Case("jwt-as-env-name", BASE + f'[metrics]\npath = "/metrics"\ntoken_env = "{JWT}"\n',
         ("metrics.token_env: this looks like a secret value, not a variable name",)),
    Case("jwt-literal", BASE + f'[[waivers]]\nid = "headers.csp"\nreason = "{JWT}"\n',
         ("waivers[0].reason: this value looks like a secret",)),
    Case("stripe-key-literal", BASE + f'allowed_hosts = ["cdn.example.com", "{STRIPE_KEY}"]\n',
         ("allowed_hosts[1]: this value looks like a secret",)),
    Case("stripe-key-where-a-url-belongs", f'base_url = "{STRIPE_KEY}"\n',
         ("base_url: this value looks like a secret",)),
    Case("secret-in-an-unknown-key", BASE + f'[auth]\ntoken = "{WHSEC}"\n',
         ("auth.token: this value looks like a secret", "auth.token: secrets never go in the config file"),
         problems=2),
    Case("password-in-url", BASE + '[tls]\nhttp_url = "http://admin:hunter2hunter2@staging.example.com"\n',
         ("tls.http_url: this value looks like a secret",)),
    Case("token-under-auth", BASE + '[auth]\ntoken = "abc123def456"\n',
         ("auth.token:", "secrets never go in the config file", "'token_env'")),
    # Header names are RFC 9110 tokens; header values carry no CR, LF, NUL or controls.
    Case("header-name-with-a-space", BASE + '[auth]\nheader = "X Bad: y"\n',
         ("auth.header: 'X Bad: y' is not a valid header name", "RFC 9110")),
    Case("header-name-with-a-newline", BASE + '[auth]\nheader = "X-Api-Key\\n"\n',
         ("auth.header: 'X-Api-Key\\n' is not a valid header name",)),
    Case("auth-scheme-with-a-newline", BASE + '[auth]\nscheme = "Bearer\\r\\n"\n',
         ("auth.scheme: 'Bearer\\r\\n' is not a valid auth scheme",)),
    Case("webhook-header-and-prefix", BASE + HOOK + 'secret_env = "KOMMO_SECRET"\n'
         'header = "X-Signature:"\nprefix = "sha256=\\u0000"\ntimestamp_header = "X Timestamp"\n',
         ("3 problems", "webhooks.kommo.header: 'X-Signature:' is not a valid header name",
          "webhooks.kommo.prefix: 'sha256=\\x00' contains a NUL byte",
          "webhooks.kommo.timestamp_header: 'X Timestamp' is not a valid header name"), problems=3),
    # Sizes have upper bounds, stated in the error.
    Case("request-budget-too-big", BASE + "request_budget = 100000000\n",
         ("request_budget: 100000000 is out of range; expected an integer from 1 to 100000",)),
    Case("body-cap-too-big", BASE + "max_body_bytes = 10000000000\n",
         ("max_body_bytes: 10000000000 is out of range", "67108864")),
    Case("min-days-too-big", BASE + "[tls]\nmin_days = 100000\n",
         ("tls.min_days: 100000 is out of range; expected an integer from 0 to 398",)),
    Case("tolerance-too-big", BASE + HOOK + 'secret_env = "KOMMO_SECRET"\ntolerance_s = 9999999999\n',
         ("webhooks.kommo.tolerance_s: 9999999999 is out of range", "86400")),
    Case("health-budget-too-big", BASE + "health_budget_ms = 3600000\n",
         ("health_budget_ms: 3600000 is out of range", "60000")),
    Case("invalid-toml", BASE + 'protected = ["/api/agents"\nhealth = []\n',
         ("prodready.toml is not valid TOML",)),
    Case("deeply-nested-arrays", BASE + DEEP_ARRAYS,
         ("prodready.toml nests arrays or inline tables hundreds of levels deep",)),
    Case("deeply-nested-inline-tables", BASE + DEEP_TABLES,
         ("prodready.toml nests arrays or inline tables hundreds of levels deep",)),
    Case("nested-deeper-than-any-setting", BASE + "health = " + "[" * 40 + "]" * 40 + "\n",
         ("health[0][0][0]", "is nested more than 32 levels deep"), problems=1),
    Case("unknown-profile", BASE + '[env.production]\nbase_url = "https://api.example.com"\n',
         ("--prodready-env: profile 'staging' is not defined in prodready.toml", "profiles: production"),
         args=("--prodready-env", "staging")),
    Case("unknown-profile-from-env", BASE, ("PRODREADY_ENV (env): profile 'staging'", "none defined"),
         env={"PRODREADY_ENV": "staging"}),
    Case("waiver-with-a-bad-date", BASE + '[[waivers]]\nid = "headers.csp"\nreason = "SEC-142"\n'
         'expires = "next spring"\n', ("waivers[0].expires: 'next spring' is not a date",)),
    Case("waiver-without-a-reason", BASE + '[[waivers]]\nid = "headers.csp"\n',
         ("waivers[0].reason: is required here",)),
    Case("waiver-for-an-unknown-check", BASE + '[[waivers]]\nid = "headers.cps"\nreason = "SEC-142"\n',
         ("prodready config (prodready.toml): waivers[0].id", "no check 'headers.cps'",
          "did you mean 'headers.csp'?")),
    Case("waiver-with-unbalanced-brackets", BASE + '[[waivers]]\nid = "headers.csp[/x"\nreason = "r"\n',
         ("prodready config (prodready.toml): waivers[0].id: 'headers.csp[/x'", "not balanced")),
    Case("waiver-id-not-a-check-id", BASE + '[[waivers]]\nid = "headers csp"\nreason = "r"\n',
         ("waivers[0].id: 'headers csp' is not a check id", "'category.name[subject]'")),
    Case("unknown-category-in-only", BASE, ("--prodready-only", "unknown category 'corss'"),
         args=("--prodready-only", "corss")),
    Case("missing-config-file", BASE, ("--prodready-config: config file nowhere.toml not found",),
         args=("--prodready-config", "nowhere.toml")),
    Case("missing-config-file-from-env", BASE, ("PRODREADY_CONFIG (env): config file nowhere.toml",),
         env={"PRODREADY_CONFIG": "nowhere.toml"}),
    Case("pyproject-prefix", BASE.replace("base_url", "[tool.prodready]\nbase_url") + "retries = 9\n",
         ("pyproject.toml", "tool.prodready.retries: 9 is out of range"), file="pyproject"),
    # Every problem at once: the file's, and those of the options and the environment.
    Case("every-problem-of-the-file", BASE + "max_concurency = 8\ntimeout_s = 0\n"
         '[auth]\nheader = "X Bad: y"\n[[waivers]]\nid = "headers.csp[/x"\nreason = "r"\n',
         ("prodready config (prodready.toml): 4 problems:", "  max_concurency: unknown key",
          "  timeout_s: 0 is out of range", "  auth.header: 'X Bad: y'", "  waivers[0].id:"), problems=4),
    Case("file-and-environment-problems", BASE + "retries = 9\n",
         ("prodready config (prodready.toml): 3 problems:", "  retries: 9 is out of range",
          "  PRODREADY_FAIL_ON (env): 'urgent'", "  --prodready-only: unknown category 'corss'"),
         env={"PRODREADY_FAIL_ON": "urgent"}, args=("--prodready-only", "corss"), problems=3),
    Case("every-missing-env-var", BASE + f'[auth]\ntoken_env = "{MISSING_ENV}"\n'
         f'[metrics]\npath = "/metrics"\ntoken_env = "{MISSING_ENV}_2"\n',
         ("2 problems", "auth.token_env: environment variable", "metrics.token_env: environment variable"),
         problems=2),
    Case("every-unknown-check-id", BASE + '[severity]\n"headers.cps" = "low"\n'
         '[[waivers]]\nid = "tls.cert_vaild"\nreason = "r"\n',
         ("prodready config (prodready.toml): 2 problems:", 'severity."headers.cps"', "waivers[0].id"),
         problems=2),
]
SECRET_LITERALS = (JWT, STRIPE_KEY, WHSEC, "hunter2hunter2", "abc123def456", "tok-valid-3b8f1c9a7d2e!")


@pytest.fixture(scope="module")
def target() -> Iterator[Served]:
    """One real target for the module: no bad config may ever reach it."""
    with serve() as served:
        yield served


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_is_a_one_line_usage_error_naming_the_key(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, target: Served, case: Case) -> None:
    monkeypatch.delenv(MISSING_ENV, raising=False)
    monkeypatch.delenv(f"{MISSING_ENV}_2", raising=False)
    monkeypatch.setenv("KOMMO_SECRET", "a-webhook-secret-for-the-tests")
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    pytester.makefile(".toml", **{case.file: case.toml.replace("{url}", target.url)})
    if case.ini:
        pytester.makeini(case.ini)
    pytester.makepyfile(test_smoke="def test_smoke():\n    pass\n")

    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", *case.args)

    out = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    lines = [line for line in result.errlines if line.strip()]
    assert lines[0].startswith("ERROR: "), out
    # One problem is one line; several are a heading and one indented line each.
    assert len(lines) == (1 if case.problems == 1 else 1 + case.problems), out
    error = "\n".join(lines)
    for expected in case.expect:
        assert expected in error, out
    for secret in SECRET_LITERALS:
        assert secret not in out  # the refusal does not repeat the secret it refuses
    assert target.log == [], [f"{s.method} {s.path}" for s in target.log]


def test_good_config_of_the_same_shape_reaches_the_target(
        pytester: pytest.Pytester, target: Served) -> None:
    """Control: the harness above does reach the target when the config is fine."""
    pytester.makefile(".toml", prodready=BASE.format(url=target.url) + "max_concurrency = 8\n")
    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "--prodready-only", "errors",
                                "-k", "not_found")
    assert result.ret == pytest.ExitCode.OK, "\n".join(result.outlines + result.errlines)
    assert target.log
    target.log.clear()


def test_only_the_schemas_env_keys_name_secrets() -> None:
    """A free key ending in '_env' (a rate-limited path) is not an environment variable name."""
    validated = {**config.validate({"auth": {"token_env": "PRODREADY_TOKEN"}}),
                 "rate_limits": {"/api/dev_env": "5/minute"}}  # a free-keyed table (planned family)
    assert config.resolve_secrets(validated, {"PRODREADY_TOKEN": "s3cret-value"}) == {
        "auth.token_env": "s3cret-value"}


def test_dates_in_waivers_accept_toml_dates_and_strings() -> None:
    table = {"waivers": [{"id": "headers.csp", "reason": "r", "expires": dt.date(2027, 1, 31)},
                         {"id": "headers.hsts", "reason": "r", "expires": "2027-01-31"}]}
    validated = config.validate(table)
    assert [w["expires"] for w in validated["waivers"]] == [dt.date(2027, 1, 31)] * 2


def test_every_problem_is_collected_and_the_first_is_key_and_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        config.validate({"max_concurency": 8, "auth": {"header": "X Bad: y", "scheme": "Bearer\n"},
                         "waivers": [{"id": "headers.csp[/x", "reason": "r"}], "retries": 9})
    error = caught.value
    assert [key for key, _ in error.problems] == [
        "max_concurency", "auth.header", "auth.scheme", "waivers[0].id", "retries"]
    assert (error.key, error.problem) == error.problems[0]
    assert str(error).splitlines()[0] == "prodready config: 5 problems:"


def test_a_single_error_still_has_problems() -> None:
    error = ConfigError("base_url", "is wrong")
    assert error.problems == [("base_url", "is wrong")]
    assert str(error) == "prodready config: base_url: is wrong"


def test_no_message_quotes_a_secret_wherever_it_comes_from() -> None:
    """Secrets in keys, in values that fail their format, and in a list are never quoted."""
    raw = {STRIPE_KEY: 1, "base_url": f" {STRIPE_KEY}", "health": [JWT, "/ok"],
           "auth": {"token_env": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "header": f"x {JWT}"}}
    with pytest.raises(ConfigError) as caught:
        config.validate(raw)
    message = str(caught.value)
    for secret in (STRIPE_KEY, JWT, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"):
        assert secret not in message
    assert not schema.looks_like_secret(message)
    assert "auth.token_env: this looks like a secret value, not a variable name" in message


def test_the_product_example_validates_now_its_families_have_landed() -> None:
    """Every family PRODUCT.md's config example names has landed: the example validates, and
    no key is left in schema.PLANNED (the refusal of not-yet-built families stays ready for
    the next announced one, see schema.Table's `planned`)."""
    product_example = {
        "openapi": "/openapi.json",
        "identities": {"alice": {"token_env": "ALICE_TOKEN", "cookie_env": "ALICE_COOKIE", "tenant": "acme"}},
        "ownership": [{"path": "/api/conversations/123", "owner": "alice"}],
        "authz": {"list_paths": ["/api/conversations"]},
        "csrf": {"endpoints": ["POST /api/settings"], "identity": "alice"},
        "rate_limits": {"POST /api/auth/login": "5/minute", "/api": "100/minute"},
        "latency": {"/api/health": {"p95_ms": 200, "requests": 50, "max_error_rate": 0.01}},
        "dns": {"domain": "example.com", "expect_caa": True, "mail": True, "nameserver": "192.0.2.53:53",
                "names": ["example.com", "www.example.com"]},
        "network": {"host": "staging.example.com", "closed_ports": [5432, 6379],
                    "redis": ["cache.internal:6379"], "postgres": ["db.internal:5432"]},
    }
    assert schema.PLANNED == {}
    validated = config.validate(product_example)
    assert validated["rate_limits"]["/api"] == "100/minute"
    future = schema.Table({"base_url": schema.url}, planned={"grafana": schema.string})
    with pytest.raises(ConfigError) as caught:
        schema.validate_table({"grafana": "x"}, future)
    assert "not available in this version" in caught.value.problems[0][1]


@pytest.mark.parametrize(("waiver_id", "ok"), [
    ("headers.csp", True), ("cors.null_origin_rejected[/legacy]", True),
    ("tls.cert_valid[[::1]:443]", True), ("auth.required[POST /api/chat]", True),
    ("headers.csp[/x", False), ("headers.csp[]", False), ("headers.csp]", False),
    ("headers.csp[a]]", False), ("headers.csp[a]b", False), ("headers", False), (".csp", False),
    ("headers.csp[/x\n]", False),
])
def test_waiver_ids(waiver_id: str, ok: bool) -> None:
    try:
        schema.waiver_id(waiver_id, "waivers[0].id")
    except ConfigError as exc:
        assert not ok, exc
        assert exc.key == "waivers[0].id"
    else:
        assert ok


@pytest.mark.parametrize(("name", "ok"), [
    ("X-Signature", True), ("x-hub-signature-256", True), ("X_Custom.1!", True),
    ("X Bad: y", False), ("X-Sig\n", False), ("X-Sig:", False), ("", False), ("Ünicode", False),
])
def test_header_names_are_rfc_9110_tokens(name: str, ok: bool) -> None:
    try:
        schema.header_name(name, "auth.header")
    except ConfigError:
        assert not ok
    else:
        assert ok
