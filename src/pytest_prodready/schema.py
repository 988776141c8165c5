"""The config schema: every key the plugin understands, its type, and how it is checked.

Validation walks the user's table against this schema and collects every problem, each
with its full key path, so a bad file is one error that lists all of them (a user fixes
the file once, not once per run). A config error never quotes a value that looks like a
secret: the file is committed to git, but the terminal and CI logs are read by more people.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import json
import math
import re
import reprlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_prodready.exceptions import ConfigError
from pytest_prodready.severity import SEVERITIES

HTTP_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# RFC 9110 section 5.6.2: a field name (and an auth-scheme) is a token of tchars.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHECK_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z][A-Za-z0-9_-]*")
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")

# No prodready setting nests deeper than five levels ([env.NAME.webhooks.NAME.accepted]);
# anything far deeper is a mistake or an attack, and is refused before any walk recurses.
MAX_DEPTH = 32
MAX_ITEMS = 10_000  # entries in one list: 10,000 protected endpoints is a big API already
MAX_TEXT = 8192  # characters in a URL, path or header value (servers refuse longer lines)
MAX_PAYLOAD = 1024 * 1024  # an inline webhook payload, as payload_file's limit
MAX_PROBLEMS_SHOWN = 50

# Literals that are unmistakably credentials. A config file is committed to git, so one of
# these in it is a leak already; we refuse it and point at the *_env form.
_SECRET_SHAPES: tuple[tuple[str, int], ...] = (
    (r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.", 0),  # a JWT
    (r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}", 0),  # Stripe secret keys
    (r"whsec_[A-Za-z0-9+/=]{8,}", 0),  # Stripe / Svix webhook secrets
    (r"(?:ghp|gho|ghs|ghu|github_pat)_[A-Za-z0-9_]{16,}", 0),  # GitHub tokens
    (r"xox[abprs]-[A-Za-z0-9-]{10,}", 0),  # Slack tokens
    (r"AKIA[0-9A-Z]{16}", 0),  # AWS access key ids
    (r"AIza[0-9A-Za-z_-]{30,}", 0),  # Google API keys
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", 0),
    (r"Bearer\s+\S{8,}", re.IGNORECASE),
    (r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", 0),  # a URL or DSN with a password
)
# A value that *is* a credential (refused in the file): it starts with one of the shapes.
SECRET_LITERALS = tuple(
    re.compile(shape if shape.startswith("-") else rf"^{shape}" + ("$" if shape.startswith("AKIA") else ""),
               flags)
    for shape, flags in _SECRET_SHAPES)
# A credential anywhere in a text (never quoted back in an error message).
_SECRET_ANYWHERE = tuple(re.compile(rf"(?<![A-Za-z0-9_]){shape}", flags) for shape, flags in _SECRET_SHAPES)
SECRET_SHOWN_AS = "<a value that looks like a secret, not shown>"
SECRET_NOT_A_NAME = ("this looks like a secret value, not a variable name; put the secret in an "
                     "environment variable and write that variable's NAME here, e.g. 'PRODREADY_TOKEN'")
_TOO_DEEP = f"is nested more than {MAX_DEPTH} levels deep; no prodready setting nests that deep"

Check = Callable[[Any, str], Any]
Problem = tuple[str, str]  # (key path, what is wrong there)


# -- showing values, never secrets ----------------------------------------------------------
def looks_like_secret(text: str) -> bool:
    """True when `text` is, or contains, something shaped like a credential."""
    return any(p.search(text) for p in _SECRET_ANYWHERE)


def _looks_random(text: str) -> bool:
    """A long run of letters and digits with no spaces: more likely a token than a name."""
    if len(text) < 16 or any(c.isspace() for c in text):
        return False
    if not (any(c.isdigit() for c in text) and any(c.isalpha() for c in text)):
        return False
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return entropy >= 3.5


def redact(text: str) -> str:
    """`text` with every secret-shaped run replaced: the last line of defence for messages."""
    for pattern in _SECRET_ANYWHERE:
        text = pattern.sub(SECRET_SHOWN_AS, text)
    return text


_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlong = 40


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", dict: "a table", dt.date: "a date", dt.datetime: "a date-time",
             dt.time: "a time"}
    return names.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """A value for an error message: short, one line, and never a secret."""
    if isinstance(value, str):
        if looks_like_secret(value):
            return SECRET_SHOWN_AS
        return _REPR.repr(value)
    if isinstance(value, (list, tuple)):
        return f"of {len(value)} item{'s' * (len(value) != 1)}"
    if isinstance(value, dict):
        return f"of {len(value)} key{'s' * (len(value) != 1)}"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _REPR.repr(value)
    return ""


def key_path(parent: str, name: Any) -> str:
    """A key's dotted path as TOML writes it: bare names as they are, others quoted."""
    name = str(name)
    part = name if _BARE_KEY.fullmatch(name) else json.dumps(name)
    return f"{parent}.{part}" if parent else part


# -- one error for many problems ------------------------------------------------------------
def _short_key(key: str) -> str:
    return key if len(key) <= 200 else f"{key[:200]}…"


def render(problems: Sequence[Problem], where: str = "") -> str:
    """The message of a config error listing `problems` (already redacted)."""
    head = f"prodready config{where}"
    if len(problems) == 1:
        key, problem = problems[0]
        if key:
            return f"{head}: {_short_key(key)}: {problem}"
        return f"{head}: {problem}" if where else f"prodready: {problem}"
    lines = [f"{head}: {len(problems)} problems:"]
    for key, problem in problems[:MAX_PROBLEMS_SHOWN]:
        lines.append(f"  {_short_key(key)}: {problem}" if key else f"  {problem}")
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return "\n".join(lines)


class ConfigProblems(ConfigError):
    """A ConfigError built from a list of problems; `where` names the file they are in."""

    where: str = ""


def config_error(problems: Iterable[Problem], where: str = "") -> ConfigProblems:
    """One ConfigError for all `problems`: `.key`/`.problem` are the first, `.problems` all.

    Every key and problem is redacted here, so no caller can quote a secret by mistake.
    """
    clean: list[Problem] = []
    for key, problem in problems:
        item = (redact(key), redact(problem))
        if item not in clean:
            clean.append(item)
    if not clean:
        raise ValueError("config_error() needs at least one problem")
    error = ConfigProblems(*clean[0])
    error.problems = clean
    error.where = where
    error.args = (render(clean, where),)
    return error


class _Collector:
    """Runs validators, keeping every ConfigError's problems instead of stopping at one."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def run(self, check: Check, value: Any, key: str) -> Any:
        try:
            return check(value, key)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None

    def add(self, key: str, problem: str) -> None:
        self.problems.append((key, problem))

    def raise_if_any(self) -> None:
        if self.problems:
            raise config_error(self.problems)


# -- scalar validators ------------------------------------------------------------------------
def _expect(cond: bool, key: str, expected: str, value: Any) -> None:
    if not cond:
        raise ConfigError(key, f"expected {expected}, got {_type_name(value)} {show(value)}".rstrip())


def string(value: Any, key: str) -> str:
    _expect(isinstance(value, str), key, "a string", value)
    return str(value)


def bounded_text(max_len: int = MAX_TEXT) -> Check:
    """A free string of at most `max_len` characters."""
    def check(value: Any, key: str) -> str:
        out = string(value, key)
        if len(out) > max_len:
            raise ConfigError(key, f"is {len(out)} characters long; at most {max_len} are allowed here")
        return out
    return check


def _control(text: str) -> str | None:
    """The first control character in `text`, described, or None."""
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            names = {"\n": "a line feed (\\n)", "\r": "a carriage return (\\r)", "\x00": "a NUL byte",
                     "\t": "a tab"}
            return names.get(char, f"the control character U+{code:04X}")
    return None


def _printable(text: str, key: str) -> None:
    bad = _control(text)
    if bad:
        raise ConfigError(key, f"{show(text)} contains {bad}; remove it")


def url(value: Any, key: str) -> str:
    raw = string(value, key)
    if len(raw) > MAX_TEXT:
        raise ConfigError(key, f"is {len(raw)} characters long; a URL here is at most {MAX_TEXT}")
    text = raw.strip()
    shown = show(text)
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ConfigError(key, f"{shown} contains whitespace or control characters")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ConfigError(key, f"{shown} is not a valid URL ({redact(str(exc))}); write e.g. "
                               "'https://staging.example.com'") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"{shown} is not an http(s) URL; write e.g. 'https://staging.example.com'")
    return text.rstrip("/")


def path(value: Any, key: str) -> str:
    raw = string(value, key)
    if len(raw) > MAX_TEXT:
        raise ConfigError(key, f"is {len(raw)} characters long; a path here is at most {MAX_TEXT}")
    text = raw.strip()
    if not text.startswith("/"):
        raise ConfigError(key, f"{show(text)} must be a path starting with '/', e.g. '/api/health'")
    if any(c.isspace() for c in text) or _control(text):
        raise ConfigError(key, f"{show(text)} contains whitespace or control characters; "
                               "percent-encode them (a space is %20)")
    return text


def origin(value: Any, key: str) -> str:
    text = url(value, key)
    if urlsplit(text).path not in ("", "/"):
        raise ConfigError(key, f"{show(text)} is an origin, so it has no path: write e.g. "
                               "'https://app.example.com'")
    return text


def endpoint(value: Any, key: str) -> str:
    """'POST /api/chat' or '/api/agents' (GET), normalised to 'METHOD /path'."""
    text = string(value, key).strip()
    method, _, rest = text.partition(" ")
    if not rest:
        method, rest = "GET", text
    method = method.upper()
    if method not in HTTP_METHODS:
        raise ConfigError(key, f"{show(text)}: unknown method {show(method)}; use one of "
                               f"{', '.join(HTTP_METHODS)}")
    return f"{method} {path(rest.strip(), key)}"


def host_port(value: Any, key: str) -> str:
    text = string(value, key).strip()
    host, sep, port = text.rpartition(":")
    if (not sep or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536
            or any(c.isspace() for c in host) or _control(host)):
        raise ConfigError(key, f"{show(text)} must be 'host:port', e.g. 'db.internal:5432'")
    return text


def hostname(value: Any, key: str) -> str:
    """A host name or IP address, without scheme, port or path: what the allowlist compares."""
    text = string(value, key).strip()
    shown = show(text)
    if "://" in text or "/" in text:
        raise ConfigError(key, f"{shown} is not a host name; write the host only, e.g. 'cdn.example.com'")
    if text.startswith("*"):
        raise ConfigError(key, f"{shown}: wildcards are not supported; list each host")
    if _is_ip(text.removeprefix("[").removesuffix("]")):
        return text
    if ":" in text:
        raise ConfigError(key, f"{shown} has a port; write the host only (every port of it is allowed)")
    if len(text) > 253 or not _HOST.fullmatch(text):
        raise ConfigError(key, f"{shown} is not a host name; write e.g. 'cdn.example.com'")
    return text


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def file_path(value: Any, key: str) -> str:
    text = string(value, key)
    if not text.strip():
        raise ConfigError(key, "is empty; name a file (relative to the config file's folder)")
    if len(text) > 4096:
        raise ConfigError(key, f"is {len(text)} characters long; a file path is at most 4096")
    _printable(text, key)
    return text


def env_name(value: Any, key: str) -> str:
    text = string(value, key)
    if looks_like_secret(text) or (not _ENV_NAME.fullmatch(text) and _looks_random(text)):
        raise ConfigError(key, SECRET_NOT_A_NAME)
    if not _ENV_NAME.fullmatch(text):
        raise ConfigError(key, f"{show(text)} is not an environment variable name; *_env keys hold the "
                               "NAME of the variable that holds the secret, e.g. 'PRODREADY_TOKEN'")
    return text


def header_name(value: Any, key: str) -> str:
    """An HTTP field name (RFC 9110 token): 'X-Signature', never 'X Bad: y' or 'X-Sig\\n'."""
    text = string(value, key)
    if not _TOKEN.fullmatch(text):
        raise ConfigError(key, f"{show(text)} is not a valid header name; a header name is letters, "
                               "digits and !#$%&'*+-.^_`|~ only (RFC 9110 token), e.g. 'X-Signature'")
    return text


def header_value(value: Any, key: str) -> str:
    """Text sent inside a header: no CR, LF, NUL or other control characters, Latin-1 only."""
    text = string(value, key)
    if len(text) > MAX_TEXT:
        raise ConfigError(key, f"is {len(text)} characters long; a header value is at most {MAX_TEXT}")
    bad = _control(text)
    if bad:
        raise ConfigError(key, f"{show(text)} contains {bad}; a header value cannot hold CR, LF, NUL "
                               "or other control characters")
    wide = next((c for c in text if ord(c) > 0xFF), None)
    if wide is not None:
        raise ConfigError(key, f"{show(text)} contains {wide!r}, which a header cannot carry "
                               "(header values are ISO-8859-1)")
    return text


def auth_scheme(value: Any, key: str) -> str:
    """An auth-scheme (RFC 9110 section 11.1, a token) such as 'Bearer'; '' sends the bare token."""
    text = string(value, key)
    if text and not _TOKEN.fullmatch(text):
        raise ConfigError(key, f"{show(text)} is not a valid auth scheme; write one word such as "
                               "'Bearer' or 'Token' (RFC 9110 token), or '' for the bare token")
    return text


def boolean(value: Any, key: str) -> bool:
    _expect(isinstance(value, bool), key, "true or false", value)
    return bool(value)


def integer(low: int, high: int, why: str = "") -> Check:
    """An integer from `low` to `high` inclusive; `why` explains the upper bound."""
    def check(value: Any, key: str) -> int:
        _expect(isinstance(value, int) and not isinstance(value, bool), key, "an integer", value)
        if not low <= value <= high:
            raise ConfigError(key, f"{show(value)} is out of range; expected an integer from {low} to "
                                   f"{high}{f' ({why})' if why else ''}")
        return int(value)
    return check


def number(low: float, high: float, why: str = "") -> Check:
    """A number above `low` and at most `high`."""
    def check(value: Any, key: str) -> float:
        _expect(isinstance(value, (int, float)) and not isinstance(value, bool), key, "a number", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(key, f"{value} is not a finite number")
        if not low < value <= high:
            raise ConfigError(key, f"{show(value)} is out of range; expected a number above {low:g} and "
                                   f"at most {high:g}{f' ({why})' if why else ''}")
        return float(value)
    return check


def severity(value: Any, key: str) -> str:
    text = string(value, key).lower()
    if text not in SEVERITIES:
        raise ConfigError(key, f"{show(value)} is not a severity; use one of {', '.join(SEVERITIES)}")
    return text


def one_of(*choices: str) -> Check:
    def check(value: Any, key: str) -> str:
        text = string(value, key)
        if text not in choices:
            raise ConfigError(key, f"{show(text)} is not one of {', '.join(choices)}")
        return text
    return check


def date(value: Any, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = string(value, key)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(key, f"{show(text)} is not a date; write YYYY-MM-DD, e.g. '2027-01-31'") from None


def rate(value: Any, key: str) -> str:
    text = string(value, key).strip()
    if not re.fullmatch(r"\d{1,9}\s*/\s*(second|minute|hour|day)", text):
        raise ConfigError(key, f"{show(text)} is not a rate; write e.g. '5/minute' or '100/hour'")
    return text


def check_id(value: Any, key: str) -> str:
    """A check id, 'category.name' (as in `prodready catalogue`)."""
    text = string(value, key)
    if not _CHECK_ID.fullmatch(text):
        raise ConfigError(key, f"{show(text)} is not a check id; write 'category.name', e.g. 'headers.csp'")
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def waiver_id(value: Any, key: str) -> str:
    """'category.name' or 'category.name[subject]' (the subject as in the item's id)."""
    text = string(value, key)
    base, bracket, _ = text.partition("[")
    example = "write 'category.name' or 'category.name[subject]', e.g. 'cors.null_origin_rejected[/legacy]'"
    if not _CHECK_ID.fullmatch(base):
        raise ConfigError(key, f"{show(text)} is not a check id; {example}")
    if bracket:
        subject = text[len(base) + 1:-1]
        if not text.endswith("]") or not subject.strip() or not _balanced(subject) or _control(subject):
            raise ConfigError(key, f"{show(text)}: the subject in brackets is empty or its brackets are "
                                   f"not balanced; {example}")
    return text


def list_of(item: Check, max_items: int = MAX_ITEMS) -> Check:
    def check(value: Any, key: str) -> list[Any]:
        _expect(isinstance(value, list), key, "a list", value)
        if len(value) > max_items:
            raise ConfigError(key, f"has {len(value)} entries; at most {max_items} are allowed")
        found = _Collector()
        out = [found.run(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        found.raise_if_any()
        return out
    return check


# -- tables -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """A TOML table with known keys. `required` keys must be present.

    `planned` maps keys of families announced but not built yet to their future schema:
    they are refused with a message that says so, instead of being silently ignored.
    """

    fields: Mapping[str, Check | Table | TableOf | ArrayOf | MapOf]
    required: tuple[str, ...] = ()
    planned: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any, key: str) -> dict[str, Any]:
        _expect(isinstance(value, dict), key or "(top level)", "a table", value)
        found = _Collector()
        out: dict[str, Any] = {}
        for name, item in value.items():
            sub = key_path(key, name)
            spec = self.fields.get(name)
            if spec is None:
                found.add(sub, _unknown_key_hint(str(name), self.fields, self.planned))
                continue
            out[name] = found.run(spec, item, sub)
        for name in self.required:
            if name not in value:
                found.add(key_path(key, name), "is required here")
        found.raise_if_any()
        return out


@dataclass(frozen=True)
class TableOf:
    """A table of named sub-tables: [identities.alice], [webhooks.kommo]."""

    item: Table

    def __call__(self, value: Any, key: str) -> dict[str, Any]:
        _expect(isinstance(value, dict), key, "a table of named tables", value)
        found = _Collector()
        out = {name: found.run(self.item, v, key_path(key, name)) for name, v in value.items()}
        found.raise_if_any()
        return out


@dataclass(frozen=True)
class ArrayOf:
    """An array of tables: [[ownership]], [[waivers]]."""

    item: Table
    max_items: int = 1000

    def __call__(self, value: Any, key: str) -> list[dict[str, Any]]:
        _expect(isinstance(value, list), key, "an array of tables ([[...]])", value)
        if len(value) > self.max_items:
            raise ConfigError(key, f"has {len(value)} entries; at most {self.max_items} are allowed")
        found = _Collector()
        out = [found.run(self.item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        found.raise_if_any()
        return out


@dataclass(frozen=True)
class MapOf:
    """A table whose keys are free (endpoints, check ids) and values share one type."""

    value: Check | Table
    key_check: Check | None = None

    def __call__(self, value: Any, key: str) -> dict[str, Any]:
        _expect(isinstance(value, dict), key, "a table", value)
        found = _Collector()
        out = {}
        for name, item in value.items():
            sub = f"{key}.{json.dumps(str(name))}"
            if self.key_check is not None:
                before = len(found.problems)
                found.run(self.key_check, name, sub)
                if len(found.problems) > before:
                    continue
            out[name] = found.run(self.value, item, sub)
        found.raise_if_any()
        return out


def _unknown_key_hint(name: str, fields: Mapping[str, Any], planned: Mapping[str, Any]) -> str:
    if name in planned:
        return (f"the {name} family is not available in this version of pytest-prodready (it is "
                "planned); remove this key: it would have no effect")
    if f"{name}_env" in fields:
        return (f"secrets never go in the config file; put the value in an environment "
                f"variable and name it with '{name}_env'")
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(fields))}"
    return f"unknown key{hint}"


def _endpoint_key(value: Any, key: str) -> str:
    return endpoint(value, key) if " " in str(value) else path(value, key)


# ---------------------------------------------------------------------------------------
# The schema. Keep it in the order of PRODUCT.md so the two are easy to compare.
# ---------------------------------------------------------------------------------------

# The core's own keys: what the target is, who may call it, and the run's safety limits.
# Every other key belongs to a check family, which declares it in its FAMILY (family.py);
# the root schema is assembled from both (root() below).
CORE_FIELDS: dict[str, Any] = {
    "base_url": url,
    "page": path,
    "protected": list_of(endpoint),
    "allowed_hosts": list_of(hostname, max_items=1000),
    "max_concurrency": integer(1, 64),
    "request_budget": integer(1, 100_000, "a run is a check, not a load test"),
    "timeout_s": number(0, 300),
    "max_body_bytes": integer(1024, 64 * 1024 * 1024, "64 MiB; bodies are held in memory"),
    "retries": integer(0, 5),
    "fail_on": severity,
    # the root of the team's copy of the docs site (mkdocs.yml): reports link each check to
    # its catalogue entry there
    "docs_url": url,
    "auth": Table({
        "token_env": env_name,
        "expired_token_env": env_name,
        "header": header_name,
        "scheme": auth_scheme,
        # the target's public key, for jwt.alg_confusion_rejected (a PEM/DER/JWK file, or
        # a JWKS URL or path; checked by the jwt family)
        "public_key_file": file_path,
        "jwks_url": string,
    }),
    # headers sent on every request to the target's own origin (a staging gate's key): the
    # value is a secret, so the file names the env var that holds it
    "request_headers": ArrayOf(Table({"name": header_name, "value_env": env_name},
                                     required=("name", "value_env")), max_items=50),
    "severity": MapOf(severity, key_check=check_id),
    "waivers": ArrayOf(Table({"id": waiver_id, "reason": bounded_text(2000), "expires": date},
                             required=("id", "reason"))),
}


# Families PRODUCT.md announces whose checks are not built yet. Their keys are refused (a
# key that silently does nothing is worse than an error). When a family lands, move its
# entry into _BASE_FIELDS above; the schema is already written.
PLANNED: dict[str, Any] = {
}

_SCHEMAS: dict[str, Table] = {}


def fields() -> dict[str, Any]:
    """Every top-level key: the core's and each family's (see family.py)."""
    from pytest_prodready import family

    return {**CORE_FIELDS, **family.config_fragments()}


def root() -> Table:
    """The root schema (profiles included), assembled once from the core and the families."""
    if "root" not in _SCHEMAS:
        known = fields()
        planned = {k: v for k, v in PLANNED.items() if k not in known}
        # A profile overrides any base key except other profiles.
        _SCHEMAS["profile"] = Table(dict(known), planned=planned)
        _SCHEMAS["root"] = Table({**known, "env": TableOf(_SCHEMAS["profile"])}, planned=planned)
    return _SCHEMAS["root"]


def profile() -> Table:
    root()
    return _SCHEMAS["profile"]


def __getattr__(name: str) -> Any:
    # ROOT and PROFILE as attributes, built on first use (they need the families loaded).
    if name == "ROOT":
        return root()
    if name == "PROFILE":
        return profile()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- the walk over everything, before the schema -------------------------------------------------
def secret_problems(value: Any, key: str = "") -> list[Problem]:
    """Every string in the config (known key or not) that looks like a credential, and every
    place nested deeper than MAX_DEPTH. Iterative: a hostile file cannot exhaust the stack."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(value, key, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            problems.append((where, _TOO_DEEP))
            continue
        if isinstance(node, dict):
            children = []
            for name, item in node.items():
                sub = key_path(where, name)
                if isinstance(name, str) and any(p.search(name) for p in SECRET_LITERALS):
                    problems.append((sub, "this key looks like a secret; secrets never go in the config "
                                          "file, only the names of the variables that hold them"))
                children.append((item, sub, depth + 1))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(node)]))
        elif isinstance(node, str) and any(p.search(node.strip()) for p in SECRET_LITERALS):
            last = where.rpartition(".")[2]
            if last.endswith("_env"):
                problems.append((where, SECRET_NOT_A_NAME))
            else:
                problems.append((where, "this value looks like a secret; secrets never go in the config "
                                        "file: put it in an environment variable and name that variable "
                                        "with a *_env key"))
    return problems


def find_secret_literals(value: Any, key: str) -> None:
    """Refuse a string anywhere in the config that looks like a credential."""
    problems = secret_problems(value, key)
    if problems:
        raise config_error(problems)


def validate_table(raw: Any, spec: Table | None = None) -> dict[str, Any]:
    """`raw` validated against `spec`, or one ConfigError listing every problem.

    Secret-shaped values are reported first (a leak is the most urgent problem); what the
    schema says about the same value (its format, with the value hidden) is left out, what it
    says about the key (unknown, use '*_env') is kept. A table nested deeper than MAX_DEPTH
    is not walked by the schema at all.
    """
    problems = secret_problems(raw)
    if any(p == _TOO_DEEP for _, p in problems):
        raise config_error(problems)
    flagged = {k for k, _ in problems}
    spec = spec or root()
    try:
        validated = spec(raw, "")
    except ConfigError as exc:
        problems += [(k, p) for k, p in exc.problems
                     if k not in flagged or (SECRET_SHOWN_AS not in p and p != SECRET_NOT_A_NAME)]
    except RecursionError:  # pragma: no cover - the depth check above comes first
        problems.append(("", "the config is nested too deeply to check"))
    if problems:
        raise config_error(problems)
    return validated
