"""pytest_prodready.leaks: every format found with its name, every decoy left alone.

The fake secrets come from tests.corpus.leaks (random values of each format's shape, made
at run time): no secret-shaped literal is committed. The decoys are the documentation
examples and placeholders real responses quote, written out here.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, Response

from pytest_prodready.checking import run_check
from pytest_prodready.leaks import MAX_MATCHES_PER_RULE, Leak, find_leaks, preview
from pytest_prodready.target import Target
from tests.corpus.leaks import DOCS, FAKES, Sample, build, fake_secret
from tests.targets.webapp import serve_app

# How each fake is shown in a response for the per-format test: "{}" is the fake's text.
# Formats that need context to be told apart (an AWS secret is 40 base64 characters, a Twilio
# auth token 32 hex digits) get the context real leaks have.
CONTEXT = {
    "aws_secret": "aws_secret_access_key = {}",
    "twilio_auth_token": '{{"account_sid": "AC0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a", "auth_token": "{}"}}',
    "password": "DB_PASSWORD={}",
    "secret": '{{"jwt_secret": "{}"}}',
    "api_key": "apiKey: '{}',",
    "client_secret": '"client_secret": "{}"',
    "token": 'export AUTH_TOKEN="{}"',
}
GENERIC_KINDS = {
    "password": "password assigned to DB_PASSWORD",
    "secret": "secret assigned to jwt_secret",
    "api_key": "API key assigned to apiKey",
    "client_secret": "client secret assigned to client_secret",
    "token": "token assigned to AUTH_TOKEN",
}


def only_leak(text: str) -> Leak:
    leaks = find_leaks(text)
    assert len(leaks) == 1, leaks
    return leaks[0]


@pytest.mark.parametrize("slot", sorted(FAKES))
def test_every_format_is_found_with_its_name(slot: str) -> None:
    """Each format, in a realistic line, is one finding: its name, exactly the secret."""
    inserted, secret = fake_secret(slot)
    text = "2024-09-01 INFO config loaded\n" + CONTEXT.get(slot, "value: {}").format(inserted) + "\nok\n"
    leaks = find_leaks(text)
    kind = GENERIC_KINDS.get(slot, FAKES[slot].kind)
    assert [(leak.kind, leak.value) for leak in leaks] == [(kind, secret)]
    assert text[leaks[0].start:leaks[0].end] == secret


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_formats_are_found_whatever_the_random_part(seed: int) -> None:
    """Other draws of the same shapes: the rules hold for the format, not for one value."""
    for slot in FAKES:
        inserted, secret = fake_secret(slot, seed)
        text = CONTEXT.get(slot, "value: {}").format(inserted)
        assert secret in [leak.value for leak in find_leaks(text)], (slot, text)


def test_anthropic_keys_are_anthropic_not_openai() -> None:
    anthropic = fake_secret("anthropic")[1]
    openai = fake_secret("openai_project")[1]
    assert only_leak(f"ANTHROPIC_API_KEY={anthropic}").kind == "Anthropic API key"
    assert only_leak(f"OPENAI_API_KEY={openai}").kind == "OpenAI API key"
    admin = "sk-ant-admin01-" + anthropic[len("sk-ant-api03-"):]
    assert only_leak(admin).kind == "Anthropic admin API key"


def test_aws_secret_is_found_near_its_key_id_and_in_assignments() -> None:
    """The secret access key has no prefix: it is found beside its key id or by its name."""
    key_id, secret = fake_secret("aws_key_id")[1], fake_secret("aws_secret")[1]
    csv = f"User name,Access key ID,Secret access key\ndeploy,{key_id},{secret}\n"
    assert [(leak.kind, leak.value) for leak in find_leaks(csv)] == [
        ("AWS access key ID", key_id), ("AWS secret access key", secret)]
    for line in (f'"SecretAccessKey": "{secret}"', f"secretAccessKey: '{secret}'",
                 f"AWS_SECRET_ACCESS_KEY={secret}", '"aws_secret_access_key": "'
                 + secret.replace("/", "\\/") + '"'):  # PHP's json_encode escapes slashes
        assert only_leak(line).kind == "AWS secret access key", line
    # alone, 40 base64 characters are just that (a nonce, a digest)
    assert find_leaks(f"nonce {secret} ok") == []


def test_twilio_auth_token_needs_its_account() -> None:
    token = fake_secret("twilio_auth_token")[1]
    assert only_leak(f"TWILIO_AUTH_TOKEN={token}").kind == "Twilio auth token"
    url = f"https://AC0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a:{token}@api.twilio.com/2010-04-01/Accounts"
    assert only_leak(url).kind == "Twilio auth token"
    assert find_leaks(f"etag {token}") == []


@pytest.mark.parametrize(("line", "value"), [
    ("DB_PASSWORD=Xq7vR2mK9pLw4tNs", "Xq7vR2mK9pLw4tNs"),                          # .env
    ("export DB_PASSWORD='Xq7vR2mK9pLw4tNs'", "Xq7vR2mK9pLw4tNs"),                  # shell
    ('{"password": "Xq7vR2mK9pLw4tNs"}', "Xq7vR2mK9pLw4tNs"),                        # JSON
    ('{\\"password\\":\\"Xq7vR2mK9pLw4tNs\\"}', "Xq7vR2mK9pLw4tNs"),                 # JSON in a string
    ("  password: Xq7vR2mK9pLw4tNs", "Xq7vR2mK9pLw4tNs"),                            # YAML
    ("const cfg={password:\"Xq7vR2mK9pLw4tNs\",user:\"a\"}", "Xq7vR2mK9pLw4tNs"),    # minified JS
    ("$db_password = 'Xq7vR2mK9pLw4tNs';", "Xq7vR2mK9pLw4tNs"),                       # PHP
    ("define( 'DB_PASSWORD', 'Xq7vR2mK9pLw4tNs' );", "Xq7vR2mK9pLw4tNs"),            # wp-config.php
    ("<password>Xq7vR2mK9pLw4tNs</password>", "Xq7vR2mK9pLw4tNs"),                   # XML
    ("spring.datasource.password=Xq7vR2mK9pLw4tNs", "Xq7vR2mK9pLw4tNs"),            # .properties
    ('"spring.datasource.password":{"value":"Xq7vR2mK9pLw4tNs"}', "Xq7vR2mK9pLw4tNs"),  # actuator
    ("connect(host='db', password='Xq7vR2mK9pLw4tNs')", "Xq7vR2mK9pLw4tNs"),         # Python call
    ("{&#x27;password&#x27;: &#x27;Xq7vR2mK9pLw4tNs&#x27;}", "Xq7vR2mK9pLw4tNs"),   # Django page
    ("&quot;client_secret&quot;: &quot;Xq7vR2mK9pLw4tNs&quot;", "Xq7vR2mK9pLw4tNs"),
    ("SECRET_KEY = 'django-insecure-8f3k2m9q7x1v'", "django-insecure-8f3k2m9q7x1v"),
    ("x-api-key: 5f0c7a1e9b2d4c6a8e3f1b0d7c9a2e4f", "5f0c7a1e9b2d4c6a8e3f1b0d7c9a2e4f"),
])
def test_generic_assignments_in_every_syntax(line: str, value: str) -> None:
    leak = only_leak(line)
    assert leak.value == value and line[leak.start:leak.end] == value


def test_pem_private_keys_need_a_body() -> None:
    """A header alone (docs, an error message) is not a finding; a key with material is."""
    body = fake_secret("rsa_key")[1]
    assert find_leaks("-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----") == []
    assert find_leaks("error: expected '-----BEGIN PRIVATE KEY-----' at line 1") == []
    assert find_leaks("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg...\n-----END PRIVATE KEY-----") == []
    assert find_leaks("-----BEGIN PRIVATE KEY-----\n" + "A" * 1600 + "\n-----END PRIVATE KEY-----") == []
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"
    assert [(leak.kind, leak.value) for leak in find_leaks(pem)] == [("RSA private key", body)]
    # JSON-escaped, and cut off before its END line (a truncated body)
    escaped = body.replace("\n", "\\n")
    assert only_leak(f'{{"key": "-----BEGIN EC PRIVATE KEY-----\\n{escaped}\\n-----END EC PRIVATE KEY-----"}}'
                     ).value == escaped
    assert only_leak(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body[:900]}").kind == "OpenSSH private key"
    # public material is not a leak
    assert find_leaks(f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----") == []
    assert find_leaks(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----") == []


def test_gcp_service_account_key_is_named_as_such() -> None:
    inserted, body = fake_secret("gcp_service_account")
    leak = only_leak(inserted)
    assert leak.kind == "Google Cloud service account key" and leak.value == body


# Decoys: documentation examples, placeholders, templates, masks, references, hashes, ids,
# public keys. A response showing these leaks nothing.
DECOYS = [
    "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX",
    "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "GH_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "SLACK_BOT_TOKEN=xoxb-your-bot-token",
    "xoxb-123456789012-1234567890123-xxxxxxxxxxxxxxxxxxxxxxxx",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DB",
    "postgres://postgres:postgres@localhost:5432/app",
    "mysql://user:pass@localhost/db",
    "redis://:${REDIS_PASSWORD}@redis:6379/0",
    "amqp://guest:guest@localhost:5672/",
    "mongodb+srv://<username>:<password>@cluster0.example.mongodb.net/",
    "mongodb+srv://&lt;user&gt;:&lt;password&gt;@cluster0.mongodb.net/",
    "postgresql://app:s3cr3t@db.example.com/app",
    "API_KEY=<your-key>",
    "API_KEY=${API_KEY}",
    "api_key: {{ .Values.apiKey }}",
    "ADMIN_PASSWORD=changeme",
    'password: "********"',
    "SECRET_KEY='********************'",
    "password=[FILTERED]",
    "password=***",
    'OPENAI_API_KEY="sk-..."',
    "ANTHROPIC_API_KEY=sk-ant-api03-...",
    "OPENAI_API_KEY=sk-your-openai-key-here",
    "STRIPE_SECRET_KEY=" + DOCS["stripe_docs_test_key"],
    "stripe_key = 'sk_live_xxxxxxxxxxxxxxxxxxxxxxxx'",
    "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
    "AccountKey=" + DOCS["azurite_account_key"],
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ij"
    "oxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "auth_token=your_auth_token",
    "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    '{"client_secret": "YOUR_CLIENT_SECRET", "api_key": "xxxxxxxxxxxxxxxxxxxx"}',
    '{"password": "password123", "token": "<token>"}',
    'curl -H "Authorization: Bearer <YOUR_TOKEN>"',
    "Authorization: Bearer ${TOKEN}",
    "password: ENC[AES256_GCM,data:3q2+7w==,iv:a,tag:b,type:str]",
    "apiKey: process.env.API_KEY, password: config.db.password",
    'SECRET_KEY = os.environ["SECRET_KEY"]',
    'token = request.headers.get("X-Token")',
    "GOOGLE_APPLICATION_CREDENTIALS=/var/run/secrets/gcp/sa.json",
    "private_key: /etc/ssl/private/server.key",
    "password_min_length: 12\ntoken_ttl: 3600\napi_key_header: X-API-Key\nsecret_name: prod/db",
    '{"token_type": "Bearer", "expires_in": 3600, "token_endpoint": "https://login.acme.test/token"}',
    '<meta name="csrf-token" content="kT9Qw2Zr7YpX4LmN8bV3cJ6hF1dS5aG0eR2tU7iO9pA">',
    '<input type="hidden" name="csrfmiddlewaretoken" value="kT9Qw2Zr7YpX4LmN8bV3cJ6hF1dS5aG0eR2tU7iO9pA">',
    '<input type="password" name="password" placeholder="Password" autocomplete="current-password">',
    '{"password": "Password", "forgot_password": "Forgot your password?"}',
    '"password_hash": "$2b$12$KIXQJwXzFZ0Vb8.b7Zz1Oe3n9yq1uVw1P0wQbq4cVq6pPqA1g3VbK"',
    '"stripe_publishable_key": "pk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"',
    '"mapboxToken": "pk.eyJ1IjoiYWNtZSIsImEiOiJja2Z4eXo5OTkwMDAwIn0.Zm9vYmFyYmF6cXV4cXV1eA"',
    '"recaptcha_site_key": "6LcXq7vR2mK9pLw4tNsAAAAAFkT9Qw2Zr7YpX4Lm"',
    "https://a1b2c3d4e5f60718293a4b5c6d7e8f90@o123456.ingest.sentry.io/1234567",
    "X-Amz-Credential=ASIAQWERTYUIOPASDFGH%2F20240901%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Signature=5f0c7a1e9b2d4c6a8e3f1b0d7c9a2e4f5f0c7a1e9b2d4c6a8e3f1b0d7c9a2e4f",
    "/reset?token=Xq7vR2mK9pLw4tNs8bV3&amp;next_token=kT9Qw2Zr7YpX4LmN",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 request_id=3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    'integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"',
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    '.sk-fading-circle .sk-circle-rotate-animation-delayed { color: red }',
    "task-runner-4821 disk-usage-monitor key-value-store-primary",
    "if (password.length > 8) { return token == null; }",
    "private_key: PrivateKeyTypes\nsigning_key = private_key\nself.allow_credentials = allow_credentials",
    "password: 'bm90IG15IHJlYWwgcGFzc3dvcmQ='",
    '"supabaseAnonKey": "' + ".".join([
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        "eyJpc3MiOiJzdXBhYmFzZSIsInJlZiI6ImFjbWUiLCJyb2xlIjoiYW5vbiIsImlhdCI6MTcwMDAwMDAwMH0",
        "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"]) + '"',
]


@pytest.mark.parametrize("text", DECOYS)
def test_decoys_are_not_leaks(text: str) -> None:
    assert find_leaks(text) == []


@pytest.fixture(scope="module")
def corpus() -> list[Sample]:
    return build()


def test_corpus_every_planted_secret_found_with_its_name(corpus: list[Sample]) -> None:
    """The realistic bodies (config dump, window.__CONFIG__, .env, Django and Express error
    pages, a JS bundle chunk, logs, YAML, PEM exports): each planted secret, correctly named."""
    problems = []
    for sample in corpus:
        leaks = find_leaks(sample.text)
        for planted in sample.planted:
            hits = [leak for leak in leaks if planted.overlaps(leak.start, leak.end)]
            named = [leak for leak in hits if leak.kind == planted.kind
                     or (not planted.exact and leak.kind.startswith(planted.kind))]
            if not named:
                problems.append((sample.name, planted.slot, planted.kind, [leak.kind for leak in hits]))
    assert not problems
    assert sum(len(sample.planted) for sample in corpus) >= 60


def test_corpus_has_no_false_alarms(corpus: list[Sample]) -> None:
    """Nothing outside the planted secrets is flagged: decoys, placeholders, docs examples."""
    alarms = [(sample.name, leak.kind, leak.value[:24]) for sample in corpus
              for leak in find_leaks(sample.text)
              if not any(planted.overlaps(leak.start, leak.end) for planted in sample.planted)]
    assert alarms == []


def test_every_value_is_exactly_its_span(corpus: list[Sample]) -> None:
    for sample in corpus:
        for leak in find_leaks(sample.text):
            assert sample.text[leak.start:leak.end] == leak.value
    non_ascii = "\u00dcn\u00efc\u00f6d\u00e9 \u2018quotes\u2019 \u0130 " + fake_secret("github_classic")[1]
    leak = only_leak(non_ascii)
    assert non_ascii[leak.start:leak.end] == leak.value == fake_secret("github_classic")[1]


def test_preview_shows_only_a_public_prefix() -> None:
    github = only_leak(fake_secret("github_classic")[1])
    assert preview(github) == "ghp_\u2026"
    assert preview(only_leak("DB_PASSWORD=Xq7vR2mK9pLw4tNs")) == ""
    assert preview(only_leak(fake_secret("postgres_url")[0])) == ""


# Hostile bodies: each must stay linear (a hang guard with a generous bound, not a
# performance measurement: benchmarks/bench_leaks.py measures).
HOSTILE = {
    "dense keywords": "key-" * 262144,
    "assignments": "password=" * 116508,
    "headers without bodies": "-----BEGIN PRIVATE KEY-----\n" * 37449,
    "prefix runs": "sk-" * 349525,
    "URL without @": "x://" + ":" * 1048572,
    "JWT-like": "eyJhbGciOiJIUzI1NiJ9." * 49932,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bodies_stay_bounded(name: str) -> None:
    started = time.perf_counter()
    leaks = find_leaks(HOSTILE[name])
    assert time.perf_counter() - started < 5.0
    assert len(leaks) <= MAX_MATCHES_PER_RULE


def test_many_real_looking_keys_are_capped() -> None:
    """A body of 50,000 key ids is judged up to the per-rule cap, not for seconds."""
    rng = random.Random(5)
    many = " ".join("AKIA" + "".join(rng.choices(string.ascii_uppercase + "234567", k=16))
                    for _ in range(50000))
    assert MAX_MATCHES_PER_RULE * 0.9 < len(find_leaks(many)) <= MAX_MATCHES_PER_RULE


# -- exposure.secrets_in_responses on a real server ---------------------------------------
def _app(pages: dict[str, tuple[str, str]], headers: dict[str, str] | None = None) -> Flask:
    app = Flask("leaky_config")

    def page(path: str) -> Callable[[], Response]:
        def view() -> Response:
            body, mimetype = pages[path]
            return Response(body, mimetype=mimetype, headers=headers or {})
        view.__name__ = "view_" + path.strip("/").replace("/", "_")
        return view

    for path in pages:
        app.add_url_rule(path, view_func=page(path))
    app.add_url_rule("/api/health", "health",
                     lambda: Response('{"status": "ok"}', mimetype="application/json"))
    return app


@pytest.fixture(scope="module")
def leaky_server(corpus: list[Sample]) -> Iterator[tuple[str, Sample, str]]:
    """A service whose home page is a config dump with a dozen leaks, and a leaking header."""
    dump = next(sample for sample in corpus if sample.name == "config_dump.json")
    header_token = fake_secret("jwt")[1]
    app = _app({"/": (dump.text, "application/json")}, {"X-Upstream-Authorization": f"Bearer {header_token}"})
    with serve_app(app) as url:
        yield url, dump, header_token


@pytest.fixture(scope="module")
def placeholder_server(corpus: list[Sample]) -> Iterator[str]:
    """A service whose pages only quote placeholders, docs examples and decoys."""
    docs = next(sample for sample in corpus if sample.name == "docs_placeholders.html")
    data = next(sample for sample in corpus if sample.name == "data_decoys.json")
    app = _app({"/": (docs.text, "text/html"), "/version": (data.text, "application/json")})
    with serve_app(app) as url:
        yield url


def test_config_dump_fails_naming_each_format(
        leaky_server: tuple[str, Sample, str], target_for: Callable[..., Target]) -> None:
    url, dump, header_token = leaky_server
    result = run_check("exposure.secrets_in_responses", target_for(url))
    assert result.outcome == "failed"
    for named in ("PostgreSQL database URL with password in GET /",
                  "Redis database URL with password in GET /",
                  "AWS access key ID 'AKIA\u2026' in GET /", "AWS secret access key in GET /",
                  "Stripe live secret key 'sk_live_\u2026' in GET /",
                  "Stripe webhook signing secret 'whsec_\u2026' in GET /",
                  "SendGrid API key 'SG.\u2026' in GET /", "Twilio auth token in GET /",
                  "Google Cloud service account key in GET /",
                  "client secret assigned to client_secret in GET /",
                  "secret assigned to secret in GET /",
                  "JSON Web Token 'eyJ\u2026' in GET /"):  # the one in a response header
        assert named in result.message, named
    assert "/api/health" not in result.message  # the clean response is not named
    # Every leaked value is masked wherever the run shows the response.
    secrets = [dump.text[p.span[0]:p.span[1]] for p in dump.planted] + [header_token]
    outputs = (result.message, result.detail, json.dumps(result.evidence()))
    assert not [s[:8] for s in secrets for out in outputs if s in out]
    assert '"service": "orders-api"' in result.detail  # the rest of the evidence is shown


def test_placeholders_and_decoys_pass(placeholder_server: str, target_for: Callable[..., Target]) -> None:
    target = target_for(placeholder_server, version_paths=["/version"])
    result = run_check("exposure.secrets_in_responses", target)
    assert result.outcome == "passed", result.detail
    assert {"/", "/version"} <= {ex.url.removeprefix(placeholder_server) for ex in result.exchanges}
