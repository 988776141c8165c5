"""A corpus of realistic response bodies with planted FAKE secrets, and decoys.

Nothing secret-shaped is committed: the templates next to this file hold markers
(``{{FAKE:slot}}``, ``{{DECOY:slot}}``, ``{{ID:slot}}``) and documented placeholders only;
`build(seed)` fills the markers with random values of the right shape. Random values of a
real format's shape are not anybody's key (and GitHub push protection, which scans pushes,
never sees them: they exist only in memory or a temporary directory).

- FAKE: a secret a detector must find, with the format's expected name;
- DECOY: something a detector must NOT flag (a hash, a UUID, a public key, a CSRF token...);
- ID: a non-secret identifier a secret refers to (a Twilio account SID), same value per name.

Each filled sample records where every planted secret is (`Planted.region`, the whole
inserted text, e.g. a full connection string, and `Planted.span`, the secret inside it) so a
finding from any tool can be matched to it by overlap.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
UPPER32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Planted:
    slot: str
    kind: str            # the name a detector should give it
    exact: bool          # False: the generic rule, whose kind starts with `kind`
    region: tuple[int, int]
    span: tuple[int, int]

    def overlaps(self, start: int, end: int) -> bool:
        return start < self.region[1] and self.region[0] < end


@dataclass
class Sample:
    name: str            # the template's file name, e.g. "dotenv.env"
    text: str
    planted: list[Planted] = field(default_factory=list)
    decoys: int = 0


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _mixed(rng: random.Random, alphabet: str, n: int) -> str:
    """Random, with at least one lower, upper and digit (a real key's odds, made certain)."""
    while True:
        value = _rand(rng, alphabet, n)
        if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(
                c.isdigit() for c in value):
            return value


def _b64url_json(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _pem_body(rng: random.Random, lines: int = 25, sep: str = "\n") -> str:
    return sep.join(_rand(rng, B64, 64) for _ in range(lines)) + sep + _rand(rng, B64, 40) + "=="


@dataclass(frozen=True)
class Fake:
    kind: str
    make: Callable[[random.Random], tuple[str, tuple[int, int]]]  # (text, secret span in it)
    exact: bool = True


def _whole(make: Callable[[random.Random], str]) -> Callable[[random.Random], tuple[str, tuple[int, int]]]:
    def inner(rng: random.Random) -> tuple[str, tuple[int, int]]:
        value = make(rng)
        return value, (0, len(value))
    return inner


def _part(make: Callable[[random.Random], tuple[str, str, str]]) -> Callable[
        [random.Random], tuple[str, tuple[int, int]]]:
    """make() -> (before, secret, after): the text is all three, the secret the middle."""
    def inner(rng: random.Random) -> tuple[str, tuple[int, int]]:
        before, secret, after = make(rng)
        return before + secret + after, (len(before), len(before) + len(secret))
    return inner


def _password(rng: random.Random, n: int = 20) -> str:
    return rng.choice(ALNUM) + _mixed(rng, ALNUM + "_-", n - 1)


def _pem(label: str, sep: str = "\n") -> Callable[[random.Random], tuple[str, str, str]]:
    def make(rng: random.Random) -> tuple[str, str, str]:
        return f"-----BEGIN {label}-----{sep}", _pem_body(rng, sep=sep), f"{sep}-----END {label}-----"
    return make


def _gcp_service_account(rng: random.Random) -> tuple[str, str, str]:
    project = "acme-" + _rand(rng, string.ascii_lowercase, 6)
    body = _pem_body(rng, sep="\\n")
    key_id, client_id = _rand(rng, HEX, 40), _rand(rng, string.digits, 21)
    head = (f'{{"type": "service_account", "project_id": "{project}", "private_key_id": "{key_id}", '
            '"private_key": "-----BEGIN PRIVATE KEY-----\\n')
    tail = ('\\n-----END PRIVATE KEY-----\\n", '
            f'"client_email": "deployer@{project}.iam.gserviceaccount.com", '
            f'"client_id": "{client_id}", "token_uri": "https://oauth2.googleapis.com/token"}}')
    return head, body, tail


def _jwt(rng: random.Random) -> str:
    header = _b64url_json({"alg": "HS256", "typ": "JWT"})
    payload = _b64url_json({"sub": _rand(rng, HEX, 12), "role": "service_role",
                            "iat": 1700000000 + rng.randrange(10**7)})
    return f"{header}.{payload}.{_rand(rng, B64URL, 43)}"


FAKES: dict[str, Fake] = {
    "aws_key_id": Fake("AWS access key ID", _whole(lambda r: "AKIA" + _rand(r, UPPER32, 16))),
    "aws_secret": Fake("AWS secret access key", _whole(lambda r: _mixed(r, B64, 40))),
    "azure_conn": Fake("Azure storage account key", _part(lambda r: (
        f"DefaultEndpointsProtocol=https;AccountName=acmeprod{_rand(r, string.digits, 3)};AccountKey=",
        _mixed(r, B64, 86) + "==", ";EndpointSuffix=core.windows.net"))),
    "azure_servicebus": Fake("Azure shared access key (Service Bus / Event Hubs)", _part(lambda r: (
        "Endpoint=sb://acme-events.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=", _mixed(r, B64, 43) + "=", ""))),
    "google_api_key": Fake("Google API key", _whole(lambda r: "AIzaSy" + _mixed(r, B64URL, 33))),
    "gcp_service_account": Fake("Google Cloud service account key", _part(_gcp_service_account)),
    "github_classic": Fake("GitHub personal access token (classic)",
                           _whole(lambda r: "ghp_" + _mixed(r, ALNUM, 36))),
    "github_fine_grained": Fake("GitHub fine-grained personal access token", _whole(
        lambda r: "github_pat_11" + _mixed(r, ALNUM, 20) + "_" + _mixed(r, ALNUM, 59))),
    "github_app": Fake("GitHub server-to-server token", _whole(lambda r: "ghs_" + _mixed(r, ALNUM, 36))),
    "gitlab_pat": Fake("GitLab personal access token", _whole(lambda r: "glpat-" + _mixed(r, B64URL, 20))),
    "slack_bot": Fake("Slack bot token", _whole(lambda r: "-".join((
        "xoxb", _rand(r, string.digits, 12), _rand(r, string.digits, 13), _mixed(r, ALNUM, 24))))),
    "slack_user": Fake("Slack user token", _whole(lambda r: "-".join((
        "xoxp", _rand(r, string.digits, 12), _rand(r, string.digits, 12), _rand(r, string.digits, 13),
        _rand(r, HEX, 32))))),
    "slack_webhook": Fake("Slack webhook URL", _part(lambda r: (
        "https://hooks.slack.com/services/",
        f"T{_rand(r, UPPER32, 10)}/B{_rand(r, UPPER32, 10)}/{_mixed(r, ALNUM, 24)}", ""))),
    "stripe_live": Fake("Stripe live secret key", _whole(lambda r: "sk_live_51" + _mixed(r, ALNUM, 97))),
    "stripe_restricted": Fake("Stripe live restricted key",
                              _whole(lambda r: "rk_live_51" + _mixed(r, ALNUM, 97))),
    "stripe_whsec": Fake("Stripe webhook signing secret", _whole(lambda r: "whsec_" + _mixed(r, ALNUM, 32))),
    "twilio_api_key": Fake("Twilio API key", _whole(lambda r: "SK" + _rand(r, HEX, 32))),
    "twilio_auth_token": Fake("Twilio auth token", _whole(lambda r: _rand(r, HEX, 32))),
    "mailgun": Fake("Mailgun API key", _whole(lambda r: "key-" + _rand(r, HEX, 32))),
    "sendgrid": Fake("SendGrid API key", _whole(
        lambda r: "SG." + _mixed(r, B64URL, 22) + "." + _mixed(r, B64URL, 43))),
    "openai_project": Fake("OpenAI API key", _whole(
        lambda r: "sk-proj-" + _mixed(r, B64URL, 74) + "T3BlbkFJ" + _mixed(r, B64URL, 74))),
    "openai_legacy": Fake("OpenAI API key", _whole(
        lambda r: "sk-" + _mixed(r, ALNUM, 20) + "T3BlbkFJ" + _mixed(r, ALNUM, 20))),
    "anthropic": Fake("Anthropic API key", _whole(
        lambda r: "sk-ant-api03-" + _mixed(r, B64URL, 93) + "AA")),
    "jwt": Fake("JSON Web Token", _whole(_jwt)),
    "npm": Fake("npm access token", _whole(lambda r: "npm_" + _mixed(r, ALNUM, 36))),
    "rsa_key": Fake("RSA private key", _part(_pem("RSA PRIVATE KEY"))),
    "openssh_key": Fake("OpenSSH private key", _part(_pem("OPENSSH PRIVATE KEY"))),
    "pkcs8_key_json": Fake("PKCS#8 private key", _part(_pem("PRIVATE KEY", sep="\\n"))),
    "postgres_url": Fake("PostgreSQL database URL with password", _part(lambda r: (
        "postgresql://orders_svc:", _password(r), "@db-primary.internal:5432/orders"))),
    "mysql_url": Fake("MySQL database URL with password", _part(lambda r: (
        "mysql://wp_app:", _password(r, 18), "@mysql.prod.internal:3306/wordpress"))),
    "mongodb_url": Fake("MongoDB database URL with password", _part(lambda r: (
        "mongodb+srv://admin:", _password(r, 16),
        f"@cluster0.{_rand(r, string.ascii_lowercase + string.digits, 5)}.mongodb.net/prod"
        "?retryWrites=true"))),
    "redis_url": Fake("Redis database URL with password", _part(lambda r: (
        "redis://:", _password(r, 24), "@cache.internal:6379/0"))),
    "amqp_url": Fake("AMQP broker URL with password", _part(lambda r: (
        "amqp://billing:", _password(r, 20), "@rabbitmq.internal:5672/%2F"))),
    # The generic rule: a secret-named key with a random literal (the name is the template's).
    "password": Fake("password assigned to", _whole(_password), exact=False),
    "secret": Fake("secret assigned to", _whole(lambda r: _mixed(r, ALNUM, 40)), exact=False),
    "api_key": Fake("API key assigned to", _whole(lambda r: _rand(r, HEX, 32)), exact=False),
    "client_secret": Fake("client secret assigned to", _whole(lambda r: _mixed(r, B64URL, 40)),
                          exact=False),
    "token": Fake("token assigned to", _whole(lambda r: _mixed(r, ALNUM, 32)), exact=False),
}


def _uuid(rng: random.Random) -> str:
    h = _rand(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


DECOYS: dict[str, Callable[[random.Random], str]] = {
    "uuid": _uuid,
    "sha256": lambda r: _rand(r, HEX, 64),
    "sha1": lambda r: _rand(r, HEX, 40),
    "md5": lambda r: _rand(r, HEX, 32),
    "b64img": lambda r: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA" + _rand(r, B64, 4096) + "=",
    "b64blob": lambda r: _rand(r, B64, 2400) + "==",
    "stripe_publishable": lambda r: "pk_live_51" + _mixed(r, ALNUM, 97),
    "csrf": lambda r: _mixed(r, B64URL, 43),
    "integrity": lambda r: "sha384-" + _mixed(r, B64, 64),
    "public_pem": lambda r: "-----BEGIN PUBLIC KEY-----\n" + _pem_body(r, 6) + "\n-----END PUBLIC KEY-----",
    "certificate": lambda r: ("-----BEGIN CERTIFICATE-----\n" + _pem_body(r, 18)
                              + "\n-----END CERTIFICATE-----"),
    "presigned_url": lambda r: (
        "https://acme-uploads.s3.amazonaws.com/reports/q3.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=ASIA" + _rand(r, UPPER32, 16) + "%2F20240901%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20240901T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + _rand(r, HEX, 64)),
    "mapbox_public": lambda r: "pk." + _b64url_json({"u": "acme", "a": _rand(r, ALNUM, 25)}) + "." + _rand(
        r, B64URL, 22),
    "sentry_dsn": lambda r: "https://{}@o{}.ingest.sentry.io/{}".format(  # noqa: UP032 (draw order)
        _rand(r, HEX, 32), _rand(r, string.digits, 6), _rand(r, string.digits, 7)),
    "bcrypt": lambda r: "$2b$12$" + _rand(r, ALNUM + "./", 53),
    "supabase_anon": lambda r: _b64url_json({"alg": "HS256", "typ": "JWT"}) + "." + _b64url_json(
        {"iss": "supabase", "ref": _rand(r, string.ascii_lowercase, 20), "role": "anon",
         "iat": 1700000000, "exp": 2000000000}) + "." + _rand(r, B64URL, 43),
    "session_id": lambda r: _rand(r, HEX, 32),
    "recaptcha": lambda r: "6L" + _mixed(r, B64URL, 38),
}
# Documented examples that have a real key's shape, assembled here so that no committed file
# holds them whole (the templates say {{DOC:name}}).
DOCS = {
    "stripe_docs_test_key": "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "azurite_account_key": ("Eby8vdM02xNOcqFlqUwJPLlm" + "EtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq"
                            "/K1SZFPTOtr/KBHBeksoGMGw=="),
}
IDS: dict[str, Callable[[random.Random], str]] = {
    "twilio_sid": lambda r: "AC" + _rand(r, HEX, 32),
}
_MARKER = re.compile(r"\{\{(FAKE|DECOY|ID|DOC):([a-z0-9_]+)(?:#(\d+))?\}\}")
TEMPLATES = sorted(p for p in HERE.iterdir() if p.suffix == ".tmpl")


def fill(name: str, template: str, rng: random.Random) -> Sample:
    """The template with its markers filled; `slot#n` gives the same value at each use."""
    sample = Sample(name, "")
    out: list[str] = []
    pos = length = 0
    same: dict[str, tuple[str, tuple[int, int]]] = {}
    for marker in _MARKER.finditer(template):
        out.append(template[pos:marker.start()])
        length += marker.start() - pos
        pos = marker.end()
        what, slot, instance = marker.groups()
        key = f"{what}:{slot}#{instance}"
        if instance and key in same:
            text, span = same[key]
        elif what == "FAKE":
            text, span = FAKES[slot].make(rng)
        elif what == "DECOY":
            text, span = DECOYS[slot](rng), (0, 0)
        elif what == "DOC":
            text, span = DOCS[slot], (0, 0)
        else:
            text, span = IDS[slot](rng), (0, 0)
        if instance:
            same[key] = (text, span)
        if what == "FAKE":
            fake = FAKES[slot]
            sample.planted.append(Planted(slot, fake.kind, fake.exact, (length, length + len(text)),
                                          (length + span[0], length + span[1])))
        elif what in ("DECOY", "DOC"):
            sample.decoys += 1
        out.append(text)
        length += len(text)
    out.append(template[pos:])
    sample.text = "".join(out)
    return sample


def build(seed: int = 20240901) -> list[Sample]:
    """Every template filled with fresh fakes, deterministically for a seed."""
    rng = random.Random(seed)
    return [fill(path.name.removesuffix(".tmpl"), path.read_text(encoding="utf-8"), rng)
            for path in TEMPLATES]


def fake(slot: str, seed: int = 7) -> str:
    """One fake value (the whole inserted text) for a slot, e.g. fake('github_classic')."""
    return FAKES[slot].make(random.Random(f"{slot}:{seed}"))[0]


def fake_secret(slot: str, seed: int = 7) -> tuple[str, str]:
    """(the inserted text, the secret inside it) for a slot."""
    text, (a, b) = FAKES[slot].make(random.Random(f"{slot}:{seed}"))
    return text, text[a:b]
