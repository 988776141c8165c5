"""Leaked credentials in text: one rule set, one function, fast enough for every body.

`find_leaks(text)` returns every credential a text shows, with the format's name and the
exact substring to mask. Two callers: the HTTP client runs it on every fetched body so a
discovered secret is masked in every output from then on, and `exposure.secrets_in_responses`
turns what it finds into a verdict. Both need it fast (a 1 MiB body in a few milliseconds)
and precise (a placeholder or a documentation example is not a leak).

How it stays fast and linear:
- every rule's regex starts with a literal (``AKIA``, ``ghp_``, ``://``, ``-----BEGIN ``...):
  CPython's regex engine then skips to that literal at C speed, so a rule costs well under
  a millisecond per MiB when its literal is absent. A rule whose first token is a character
  class or a lookbehind is scanned position by position (30x slower): boundaries before a
  token are therefore checked in Python, on the few real matches;
- the generic "secret-named assignment" rule scans a lower-cased copy for a handful of
  keywords (``pass``, ``secret``, ``token``...) and only then reads the name and the value
  around each hit, in a bounded window;
- every quantifier is bounded and no two adjacent ones overlap, so nothing backtracks
  catastrophically, and a 1 MiB line costs what 1 MiB of short lines costs.

The facts behind the rules (prefixes, lengths, the documented example keys) come from the
providers' documentation and from gitleaks' and detect-secrets' rule sets; see
docs/decisions/0004-leak-rules.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["RULES", "Leak", "find_leaks", "preview", "response_leaks", "values_to_mask"]


@dataclass(frozen=True)
class Leak:
    """A credential found in a text: what it is, and exactly the substring to mask."""

    kind: str    # the format's name, e.g. "AWS secret access key", "Anthropic API key"
    value: str   # the secret itself: text[start:end]
    start: int
    end: int


# -- shared judgement ---------------------------------------------------------------------

# Values that documentation publishes as examples. They are well known, so a response that
# shows one is quoting docs, not leaking. (Two are written in pieces so that no file of this
# repository holds a whole key of a push-protected shape, even a published one.)
DOCUMENTED_EXAMPLES = frozenset({
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",          # AWS
    "AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",          # AWS
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",                                  # GitHub docs
    "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc", "sk_test_" + "BQokikJOvBiI2HlWgH4olfQ2",  # Stripe docs
    "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",                                      # Mailgun docs
    # Azurite / the storage emulator's published development account key
    "Eby8vdM02xNOcqFlqUwJ" + "PLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",                               # jwt.io's token
})

# Substrings that mark a value as a placeholder wherever they occur (compared lower-case).
_PLACEHOLDER_MARKS = (
    "example", "sample", "dummy", "placeholder", "changeme", "change_me", "change-me",
    "changeit", "redacted", "filtered", "xxxx", "****", "...", "\u2026", "your", "insert", "&lt;",
    "replace", "fake", "notreal", "not_real", "not-real", "${", "{{", "}}", "%(", "#{", "<%",
    "00000",
)
# The generic rule has no format to lean on: also refuse the words people type as dummies.
_GENERIC_STOPWORDS = (
    "password", "passw0rd", "p@ssw0rd", "passwd", "secret", "token", "test", "demo",
    "default", "admin", "letmein", "qwerty", "1234", "abcd", "welcome", "sesame", "null",
    "undefined", "string", "value",
)
_SEQUENCES = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/",
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ+/",
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "01234567890123456789", "0123456789ABCDEF0123456789ABCDEF", "ABCDEFGHIJKLMNOPQRSTUVWXYZ=/",
)
_RUN = re.compile(r"(.)\1{5}")  # six times the same character in a row


_C_LOG_C = [0.0] + [c * math.log2(c) for c in range(1, 4097)]


def _c_log_c(c: int) -> float:
    return _C_LOG_C[c] if c <= 4096 else c * math.log2(c)


def _entropy(counts: Counter[str], n: int) -> float:
    # H = log2(n) - sum(c log2 c) / n, the sum through a table: no log per character class
    return math.log2(n) - sum(map(_c_log_c, counts.values())) / n if n else 0.0


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    return _entropy(Counter(value), len(value))


_LOWER = re.compile(r"[a-z]")
_UPPER = re.compile(r"[A-Z]")
_DIGIT = re.compile(r"[0-9]")
_OTHER = re.compile(r"[^A-Za-z0-9]")


def _classes(value: str) -> int:
    """How many of lower case, upper case, digits and other characters the value uses."""
    return sum(1 for pattern in (_LOWER, _UPPER, _DIGIT, _OTHER) if pattern.search(value))


def _repeated(body: str, counts: Counter[str]) -> bool:
    return len(body) >= 6 and (max(counts.values()) * 2 > len(body) or _RUN.search(body) is not None)


def _marked(body: str) -> bool:
    """A documented example, a placeholder word or template, or a sequence (abcdef...)."""
    if body in DOCUMENTED_EXAMPLES:
        return True
    low = body.lower()
    for mark in _PLACEHOLDER_MARKS:
        if mark in low:
            return True
    if len(body) < 8 or len(body) > 72:  # no sequence is longer than 72
        return False
    upper = body.upper()
    return any(upper in seq for seq in _SEQUENCES)


def placeholder(body: str) -> bool:
    """True for a documented example, a template, a mask, a repeat or a sequence."""
    return _marked(body) or _repeated(body, Counter(body))


def _token_ok(body: str, min_entropy: float) -> bool:
    """The random part of a prefixed token: not a placeholder, random enough."""
    if _marked(body):
        return False
    counts = Counter(body)
    return not _repeated(body, counts) and _entropy(counts, len(body)) >= min_entropy


_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_WORD_DASH = _WORD | {"-"}
_BEARER = _WORD_DASH | set(".~+/=")
_B64_BODY = (_WORD - {"_"}) | {"+", "/"}
_B64 = _B64_BODY | {"="}


def _starts(text: str, i: int, word: frozenset[str] = _WORD) -> bool:
    """True when a token starting at i is not the tail of a longer word."""
    return i == 0 or text[i - 1] not in word


def _ends(text: str, i: int, word: frozenset[str] = _WORD) -> bool:
    """True when a token ending at i is not the head of a longer word.

    Checked here rather than with a regex lookahead: after a variable-length run a failed
    lookahead makes the engine give the run back one character at a time, which turns a
    hostile "sk-sk-sk-..." into quadratic work.
    """
    return i >= len(text) or text[i] not in word


# -- rules ---------------------------------------------------------------------------------
Judge = Callable[[re.Match[str], str], Iterable[Leak]]


@dataclass(frozen=True)
class Rule:
    """One family of formats: a regex that starts with a literal, and a judge of its matches.

    `lower`: the regex runs on a lower-cased copy (same offsets), for case-insensitive keys.
    Rules earlier in RULES win when two findings overlap (a GitHub token inside a URL's
    password is a GitHub token; a JWT after "Bearer" is a JWT).
    """

    name: str
    regex: re.Pattern[str]
    judge: Judge
    lower: bool = False


def _leak(kind: str, text: str, start: int, end: int) -> Leak:
    return Leak(kind, text[start:end], start, end)


# PEM private keys: a finding only with key material (64+ base64 characters) after the
# header. Bodies may be split by real newlines or, inside JSON, by "\n" escapes.
_PEM_LABELS = {
    "": "PKCS#8 private key", "RSA": "RSA private key", "EC": "EC private key",
    "DSA": "DSA private key", "OPENSSH": "OpenSSH private key",
    "ENCRYPTED": "encrypted PKCS#8 private key", "PGP": "PGP private key block",
}
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=\s]|\\[nrt])*")
_PEM_MATERIAL = re.compile(r"[A-Za-z0-9+/=]{16,}")
_PEM_EDGE = re.compile(r"(?:\s|\\[nrt])*")
_GCP_KEY_FIELD = re.compile(r'"private_key"\s*:\s*"\s*$')
PEM_WINDOW = 32768  # an 8192-bit RSA key is 6.5 KB of PEM; PGP key blocks run larger


def _span_end(pattern: re.Pattern[str], text: str, pos: int, endpos: int) -> int:
    """Where a pattern that can match the empty string stops matching from pos."""
    match = pattern.match(text, pos, endpos)
    return match.end() if match else pos


def _private_key(m: re.Match[str], text: str) -> Iterator[Leak]:
    label = m.group(1).strip()
    body_start = m.end()
    # The body ends at the next "-----" (its END line, or the next block's BEGIN: a run of
    # headers without bodies costs one short search each); with none in reach, where the
    # base64 stops (a body cut short).
    marker = text.find("-----", body_start, body_start + PEM_WINDOW)
    body_end = marker if marker != -1 else _span_end(_PEM_BODY, text, body_start,
                                                     min(len(text), body_start + PEM_WINDOW))
    body = text[body_start:body_end]
    # Judged on the first 256 characters of key material: enough to tell random base64 from
    # "XXXX..." or "...", and a 16 KB key costs what a 1 KB one does.
    sample = body[:1024].replace("\\n", "\n").replace("\\r", "\n")
    material = "".join(_PEM_MATERIAL.findall(sample))[:256]
    if len(material) < 64 or not _token_ok(material, 4.0):
        return
    start = _span_end(_PEM_EDGE, text, body_start, body_end)
    end = body_end
    while end > start:  # trailing newlines, real or escaped
        if text[end - 1] in " \t\r\n":
            end -= 1
        elif end - 2 >= start and text[end - 2] == "\\" and text[end - 1] in "nrt":
            end -= 2
        else:
            break
    kind = _PEM_LABELS.get(label, f"{label} private key")
    if _GCP_KEY_FIELD.search(text, max(0, m.start() - 40), m.start()) and "service_account" in text[
            max(0, m.start() - 4096):body_end + 4096]:
        kind = "Google Cloud service account key"
    yield _leak(kind, text, start, end)


# AWS: the access key id, and the secret access key when it stands near one (CSV exports,
# `aws configure list`, credentials files) or is assigned to a secret-access-key name.
_AWS_SECRET_NEAR = re.compile(r"[A-Za-z0-9/+]{40}")
AWS_NEAR = 240


def _aws_secret_ok(value: str) -> bool:
    return (len(value) == 40 and _classes(value) >= 3 and entropy(value) >= 4.0
            and not placeholder(value))


def _aws_key_id(m: re.Match[str], text: str) -> Iterator[Leak]:
    s, e = m.span()
    if not _starts(text, s) or placeholder(m.group()) or entropy(m.group()[4:]) < 3.0:
        return
    # X-Amz-Credential=AKIA.../date/region/s3 in a presigned URL or a SigV4 header names the
    # key that signed it: an identifier meant to travel with the signature, not a leak.
    if text[max(0, s - 11):s].lower() == "credential=":
        return
    yield _leak("AWS access key ID" if m.group().startswith("AKIA") else
                "AWS temporary access key ID (STS)", text, s, e)
    for near in _AWS_SECRET_NEAR.finditer(text, max(0, s - AWS_NEAR), min(len(text), e + AWS_NEAR)):
        a, b = near.span()
        if (a and text[a - 1] in _B64_BODY) or (b < len(text) and text[b] in _B64):
            continue
        if _aws_secret_ok(near.group()):
            yield _leak("AWS secret access key", text, a, b)


_GITHUB_KINDS = {
    "p": "GitHub personal access token (classic)", "o": "GitHub OAuth access token",
    "u": "GitHub user-to-server token", "s": "GitHub server-to-server token",
    "r": "GitHub refresh token", "i": "GitHub fine-grained personal access token",
}


def _github(m: re.Match[str], text: str) -> Iterator[Leak]:
    s, e = m.span()
    token = m.group()
    body = token[11:] if token.startswith("github_pat_") else token[4:]
    if _starts(text, s) and _ends(text, e) and _token_ok(body, 3.0) and token not in DOCUMENTED_EXAMPLES:
        yield _leak(_GITHUB_KINDS["i" if token[1] == "i" else token[2]], text, s, e)


_GITLAB_KINDS = {"glpat": "GitLab personal access token", "gldt": "GitLab deploy token",
                 "glrt": "GitLab runner authentication token",
                 "glptt": "GitLab pipeline trigger token", "glft": "GitLab feed token"}


def _gitlab(m: re.Match[str], text: str) -> Iterator[Leak]:
    s = m.start()
    token = m.group().rstrip(".-")
    prefix, _, body = token.partition("-")
    if (_starts(text, s) and _ends(text, m.end(), _WORD_DASH | {"."}) and _token_ok(body, 3.0)
            and _classes(body) >= 2):
        yield _leak(_GITLAB_KINDS[prefix], text, s, s + len(token))


_SLACK_KINDS = {"b": "Slack bot token", "p": "Slack user token", "a": "Slack workspace access token",
                "r": "Slack refresh token", "o": "Slack legacy token", "s": "Slack legacy token",
                "e": "Slack configuration token"}


def _slack(m: re.Match[str], text: str) -> Iterator[Leak]:
    s, e = m.span()
    token = m.group()
    kind = "Slack app-level token" if token.startswith("xapp") else _SLACK_KINDS[token[3]]
    body = token.split("-", 1)[1]
    if _starts(text, s) and _token_ok(body, 2.5) and any(c.isdigit() for c in body):
        yield _leak(kind, text, s, e)


def _slack_webhook(m: re.Match[str], text: str) -> Iterator[Leak]:
    path = m.group(1)
    if _token_ok(path.replace("/", ""), 3.0):
        yield _leak("Slack webhook URL", text, m.start(1), m.end(1))


_STRIPE_KINDS = {"sk_live": "Stripe live secret key", "sk_test": "Stripe test secret key",
                 "rk_live": "Stripe live restricted key", "rk_test": "Stripe test restricted key"}


def _stripe(m: re.Match[str], text: str) -> Iterator[Leak]:
    s, e = m.span()  # the match starts at "k_": the letter before says secret or restricted
    if s == 0 or text[s - 1] not in "sr" or not _starts(text, s - 1) or not _ends(text, e):
        return
    token = text[s - 1:e]
    if token in DOCUMENTED_EXAMPLES or not _token_ok(token[8:], 3.0):
        return
    yield _leak(_STRIPE_KINDS[token[:7]], text, s - 1, e)


def _whsec(m: re.Match[str], text: str) -> Iterator[Leak]:
    s, e = m.span()
    body = m.group()[6:]
    if _starts(text, s) and _ends(text, e, _B64) and _token_ok(body, 3.0):
        kind = ("Standard Webhooks signing secret" if set("+/=") & set(body)
                else "Stripe webhook signing secret")
        yield _leak(kind, text, s, e)


_ANTHROPIC_KINDS = {"api": "Anthropic API key", "admin": "Anthropic admin API key",
                    "oat": "Anthropic OAuth access token", "ort": "Anthropic OAuth refresh token",
                    "sid": "Anthropic session key"}


def _sk_dash(m: re.Match[str], text: str) -> Iterator[Leak]:
    """sk-... keys: Anthropic's sk-ant-<kind>NN-, OpenAI's (T3BlbkFJ inside, or a project,
    service-account or admin prefix), and the same shape from OpenAI-compatible services."""
    s, e = m.start() - 1, m.end()  # the shared regex starts at the "k" of "sk-"
    if s < 0 or text[s] != "s" or not _starts(text, s, _WORD_DASH) or not _ends(text, e, _WORD_DASH):
        return
    token = text[s:e]
    ant = m.group("ant")
    if ant:  # sk-ant-api03-...
        kind_word = re.sub(r"\d+$", "", ant)
        body = token[len("sk-ant-") + len(ant) + 1:]
        if len(body) >= 32 and _token_ok(body, 3.5) and _classes(body) >= 2:
            yield _leak(_ANTHROPIC_KINDS.get(kind_word, "Anthropic API key"), text, s, e)
        return
    if token.startswith("sk-ant"):  # an Anthropic prefix we do not know: still Anthropic's
        if len(token) >= 40 and _token_ok(token[7:], 3.5) and _classes(token[7:]) >= 3:
            yield _leak("Anthropic API key", text, s, e)
        return
    body = token[3:]
    for project in ("proj-", "svcacct-", "admin-"):
        if body.startswith(project):
            body = body[len(project):]
            break
    if len(body) < 20 or _classes(body) < 3 or not _token_ok(body, 3.5):
        return  # "sk-fading-circle" (a CSS spinner) has no digits and no capitals
    openai = "T3BlbkFJ" in token or token.startswith(("sk-proj-", "sk-svcacct-", "sk-admin-"))
    yield _leak("OpenAI API key" if openai else "API key (sk-, OpenAI-compatible)", text, s, e)


def _simple(kind: str, prefix_len: int, min_entropy: float, word: frozenset[str] = _WORD,
            min_classes: int = 2) -> Judge:
    def judge(m: re.Match[str], text: str) -> Iterator[Leak]:
        s, e = m.span()
        body = m.group()[prefix_len:]
        if (_starts(text, s, word) and m.group() not in DOCUMENTED_EXAMPLES
                and _token_ok(body, min_entropy) and _classes(body) >= min_classes):
            yield _leak(kind, text, s, e)
    return judge


def _group_value(kind: str, min_entropy: float, group: str) -> Judge:
    def judge(m: re.Match[str], text: str) -> Iterator[Leak]:
        value = m.group(group)
        if value not in DOCUMENTED_EXAMPLES and _token_ok(value, min_entropy):
            yield _leak(kind, text, m.start(group), m.end(group))
    return judge


def _dispatch(**judges: Judge) -> Judge:
    """One regex, several formats behind its common literal: judge by the group that matched."""
    def judge(m: re.Match[str], text: str) -> Iterable[Leak]:
        for group, inner in judges.items():
            if m.start(group) != -1:
                return inner(m, text)
        return ()
    return judge


_AZURE_AD_HEAD = re.compile(r"[A-Za-z0-9_~.]{3}[0-9]")


def _azure_ad(m: re.Match[str], text: str) -> Iterator[Leak]:
    s, e = m.span()  # the match starts at "Q~"; the secret starts four characters earlier
    start = s - 4
    if start < 0 or not _AZURE_AD_HEAD.fullmatch(text, start, s):
        return
    if start and text[start - 1] in _WORD | {"~", ".", "-"}:
        return
    body = text[start:e]
    if _token_ok(body, 3.0) and _classes(body) >= 3:
        yield _leak("Azure AD client secret", text, start, e)


def _b64json(segment: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):  # bad base64, not JSON, too deep
        return None


def _jwt(m: re.Match[str], text: str) -> Iterator[Leak]:
    s, e = m.span()
    if not _starts(text, s, _WORD_DASH) or not _ends(text, e, _WORD_DASH):
        return
    head, payload, signature = m.group().split(".")
    header = _b64json(head)
    claims = _b64json(payload)
    if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
        return
    if signature in DOCUMENTED_EXAMPLES or (claims.get("sub") == "1234567890"
                                            and claims.get("name") == "John Doe"):
        return  # jwt.io's example token, quoted by every tutorial
    if claims.get("role") == "anon" and "supabase" in str(claims.get("iss", "")):
        return  # Supabase's anon key is public by design (the service_role key is not)
    yield _leak("JSON Web Token", text, s, e)


# Database and broker URLs with a password: the password is the secret.
_URL_KINDS = {
    "postgres": "PostgreSQL database URL with password",
    "postgresql": "PostgreSQL database URL with password",
    "mysql": "MySQL database URL with password", "mariadb": "MySQL database URL with password",
    "mongodb": "MongoDB database URL with password",
    "mongodb+srv": "MongoDB database URL with password",
    "redis": "Redis database URL with password", "rediss": "Redis database URL with password",
    "amqp": "AMQP broker URL with password", "amqps": "AMQP broker URL with password",
    "mssql": "SQL Server database URL with password",
    "sqlserver": "SQL Server database URL with password",
}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}")
_DEFAULT_PASSWORDS = frozenset({
    "password", "pass", "passwd", "pwd", "pw", "secret", "changeme", "admin", "root", "guest",
    "postgres", "mysql", "redis", "mongo", "rabbitmq", "test", "testing", "default", "dbpass",
    "dbpassword", "mypassword", "yourpassword", "123456", "12345678", "1234", "password1",
    "password123", "p@ssw0rd", "passw0rd", "user", "username", "secret123", "foo", "bar",
    "foobar", "s3cr3t", "mysecretpassword", "example", "pass123", "qwerty", "letmein",
})
_DOC_HOSTS = re.compile(r"^(?:host|hostname|server|example\.(?:com|org|net)|[\w.-]*\.example"
                        r"|[\w.-]+\.example\.(?:com|org|net)|your[\w.-]*)(?::\d+|:port)?$", re.I)
_TWILIO_SID = re.compile(r"AC[0-9a-f]{32}")


def _url_password(m: re.Match[str], text: str) -> Iterator[Leak]:
    start = m.start()
    head = text[max(0, start - 31):start]
    scheme_match = None
    for found in _SCHEME.finditer(head):
        if found.end() == len(head):
            scheme_match = found
    if scheme_match is None:
        return
    scheme = scheme_match.group().lower().rpartition(":")[2]
    user, password = m.group(1), m.group(2)
    host = text[m.end():m.end() + 80].split("/", 1)[0].split("?", 1)[0]
    host = re.split(r"[\s\"'<>,;]", host, maxsplit=1)[0]
    low = password.lower()
    if (len(password) < 3 or low in _DEFAULT_PASSWORDS or password == user
            or placeholder(password) or password.startswith(("$", "%")) or _DOC_HOSTS.match(host)):
        return
    if password.isdigit() and ("." in user or ":" in user or user.lower() == "localhost"):
        return  # "http://10.0.0.1:8080@evil/": a host and its port before '@', not a login
    kind = _URL_KINDS.get(scheme, "URL with embedded password")
    if _TWILIO_SID.fullmatch(user):
        kind = "Twilio auth token"
    yield _leak(kind, text, m.start(2), m.end(2))


def _bearer(m: re.Match[str], text: str) -> Iterator[Leak]:
    a, b = m.span(1)
    value = text[a:b]
    if _ends(text, b, _BEARER) and (_classes(value) >= 2 and entropy(value) >= 3.5 and not placeholder(value)
            and not any(word in value.lower() for word in _GENERIC_STOPWORDS)):
        yield Leak("bearer token", value, a, b)


def _basic(m: re.Match[str], text: str) -> Iterator[Leak]:
    a, b = m.span(1)
    value = text[a:b]
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return
    user, sep, password = decoded.partition(":")
    if (sep and decoded.isprintable() and len(password) >= 3 and password.lower() not in
            _DEFAULT_PASSWORDS and password != user and not placeholder(password)):
        yield Leak("HTTP Basic credentials", value, a, b)


# -- the generic rule: a secret-named key assigned a random-looking literal -----------------
# Read around a keyword hit: the rest of the name, a closing quote, an operator (= : := =>
# == > for XML, "," between quoted call arguments), an optional Spring {"value": ...}
# wrapper, then a quoted value (up to 2 KiB, ended by its quote) or an unquoted one (up to
# 256 characters, ended by a space or punctuation). Escaped JSON (\"key\":\"value\"), JSON's
# "\/", and HTML-escaped quotes (&quot;) are understood.
_QUOTE = r"""(?:\\{0,3}["'`]|&quot;|&\#x27;|&\#39;|&\#34;)"""
# The rest of a name, taken whole: an atomic group written as a lookahead and a
# back-reference (Python 3.10 has no (?>...)). Nothing that may follow a name is a name
# character, so giving some back never helps; without this the engine would retry 48 lengths
# at every keyword of a hostile "key-key-key-...".
_REST = r"(?=(?P<rest>[\w.$-]{0,48}))(?P=rest)"
_TAIL = re.compile(rf"""
    {_REST}
    (?P<kq>{_QUOTE})?\]?
    [ \t]{{0,8}}
    (?P<op>:=|=>|===?|!==?|=|:|>|,)
    [ \t]{{0,8}}
    (?P<wrap>\{{[ \t]*{_QUOTE}?value{_QUOTE}?[ \t]*:[ \t]*)?
    (?:
      (?P<vq>{_QUOTE})(?P<qvalue>(?:[^\s"'`\\&]|\\/|&(?!quot;|\#x27;|\#39;|\#34;)){{1,2048}})
    | (?P<uvalue>[^\s"'`\\,;)}}\]&<>|(\[]{{1,256}})
    )
""", re.X)
_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.$-")
_SEGMENTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRETISH = re.compile(r"passw(?:or)?d|passphrase|passcode|pwd|secret(?!ary)|token(?!i[sz]e)"
                        r"|api_?key|access_?key|private_?key|auth_?key|credential|signing_?key"
                        r"|encryption_?key|master_?key")
# A name whose last word is one of these holds something about a secret, not the secret:
# password_min_length, token_type, api_key_header, secret_name, token_url...
_NOT_SECRET_LAST = frozenset({
    "id", "ids", "name", "names", "type", "types", "url", "urls", "uri", "uris", "endpoint",
    "endpoints", "path", "paths", "file", "files", "filename", "dir", "length", "len", "size", "min",
    "max", "minimum", "maximum", "count", "expiry", "expires", "expiration", "exp", "ttl", "timeout",
    "lifetime", "age", "header", "headers", "field", "fields", "param", "params", "policy", "policies",
    "enabled", "enable", "disabled", "required", "label", "labels", "placeholder", "hint", "help",
    "text", "title", "message", "msg", "error", "errors", "format", "pattern", "regex", "prefix",
    "suffix", "version", "mode", "method", "methods", "strategy", "provider", "location", "store",
    "manager", "env", "var", "rotation", "kind", "schema", "hash", "hashed", "digest", "fingerprint",
    "algorithm", "alg", "visible", "visibility", "input", "button", "link", "icon", "route", "page",
    "view", "form", "strength", "rules", "class", "limit", "index", "status", "uses", "issuer",
    "audience", "scope", "scopes", "response", "request", "cookie", "storage", "cache", "query",
    "callback", "style", "arn", "ref", "source", "template", "usage", "duration", "attempts", "retries",
    "changed", "at", "date", "time", "until", "validity", "placement", "selector", "regexp"
})
# ...and a name with one of these words is a public or per-request value by design.
_NOT_SECRET_WORDS = frozenset({"public", "publishable", "pub", "sitekey", "site", "nonce",
                               "captcha", "recaptcha", "hcaptcha", "hash", "hashed", "digest",
                               "forgot", "show", "hide", "toggle", "placeholder", "label",
                               "verification", "authenticity", "csrf", "xsrf"})
_NOT_SECRET_INSIDE = ("csrf", "xsrf", "authenticity", "requestverification", "captcha")
_NOT_SECRET_NAMES = frozenset({"pwd", "oldpwd", "_token", "next_token", "page_token",
                               "nexttoken", "pagetoken", "continuation_token", "sync_token"})
_REFERENCE = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|v?[0-9]+(?:\.[0-9]+)+[\w.-]*"
                        r"|[^@\s]+@[^@\s]+\.[A-Za-z]{2,}|#[0-9a-fA-F]{3,8}")
_NOT_LITERAL_START = ("$", "%", "/", "./", "../", "~/", "file:", "ENC[", "enc:", "vault:", "!",
                      "arn:", "projects/", "sha256:", "sha1:", "md5:", "AQICAH", "(", "[", "{", "@")
_FILE_EXT = re.compile(r"\.(?:pem|key|crt|cer|der|p8|p12|pfx|jks|json|ya?ml|txt|env|ini|conf|cfg"
                       r"|properties|xml|html?|js|sh)$", re.I)
_URLISH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_WORDS = re.compile(r"[A-Z]?[a-z]{3,}")
GENERIC_WINDOW = 2400


def _wordy(value: str) -> bool:
    """Mostly words and no digit: an identifier (allow_credentials, PrivateKeyTypes) or prose."""
    if any(c.isdigit() for c in value):
        return False
    return sum(len(w) for w in _WORDS.findall(value)) * 2 >= len(value)


_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _encoded_prose(value: str) -> bool:
    """Base64 of words ("not my real password"): an example, where a secret decodes to bytes."""
    if len(value) > 512 or not _BASE64.fullmatch(value):
        return False
    try:
        decoded = base64.b64decode(value).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return False
    low = decoded.lower()
    return decoded.isprintable() and (" " in decoded or any(w in low for w in _GENERIC_STOPWORDS))


def _literal(value: str) -> bool:
    """True when the value is a literal secret, not a reference, a path or a dummy."""
    if len(value) < 8 or value.startswith(_NOT_LITERAL_START):
        return False
    low = value.lower()  # cheapest tests first: a hostile body may hold thousands of these
    if (any(word in low for word in _GENERIC_STOPWORDS) or _URLISH.match(value)
            or _FILE_EXT.search(value) or _REFERENCE.fullmatch(value) or placeholder(value)
            or _wordy(value)):
        return False
    if _encoded_prose(value):
        return False
    classes, bits = _classes(value), entropy(value)
    if classes >= 3:
        return bits >= 2.8
    if classes == 2:
        return bits >= 3.0
    return len(value) >= 20 and bits >= 3.5


def _name_start(text: str, end: int) -> int:
    i, floor = end, max(0, end - 64)
    while i > floor and text[i - 1] in _NAME:
        i -= 1
    return i


def _classify(name: str, value: str, text: str, at: int) -> str | None:
    """The kind of a secret-named assignment, or None when the name does not hold a secret."""
    squashed = name.lower().replace("-", "_").replace(".", "_").lstrip("_$")
    segments = [s.lower() for s in _SEGMENTS.findall(name)]
    if (not segments or squashed in _NOT_SECRET_NAMES or segments[-1] in _NOT_SECRET_LAST
            or _NOT_SECRET_WORDS.intersection(segments)
            or any(word in squashed for word in _NOT_SECRET_INSIDE)):
        return None
    if not _SECRETISH.search(squashed) and "pass" not in segments and "pw" not in segments:
        return None
    bare = value.replace("\\/", "/")
    joined = squashed.replace("_", "")
    if len(bare) == 40 and ("secretaccesskey" in joined or ("aws" in segments and "secret" in joined)):
        return "AWS secret access key" if _aws_secret_ok(bare) else None
    if "aws" in segments and "session" in segments and "token" in joined:
        return "AWS session token"
    if "token" in joined and re.fullmatch(r"[0-9a-f]{32}", bare) and (
            "twilio" in joined or _TWILIO_SID.search(text, max(0, at - 400), at + 400)):
        return "Twilio auth token"
    if "slack" in segments and "signing" in segments:
        return "Slack signing secret"
    if (any(w in joined for w in ("passw", "passphrase", "passcode", "pwd"))
            or "pass" in segments or "pw" in segments):
        label = "password"
    elif "apikey" in joined:
        label = "API key"
    elif "clientsecret" in joined:
        label = "client secret"
    elif "privatekey" in joined:
        label = "private key"
    elif "accesskey" in joined:
        label = "access key"
    elif "secret" in joined or any(k in joined for k in ("signingkey", "encryptionkey", "masterkey",
                                                          "authkey")):
        label = "secret"
    elif "token" in joined:
        label = "token"
    else:
        label = "credential"
    return f"{label} assigned to {name[:48]}"


def _key_name(m: re.Match[str], text: str) -> Iterable[Leak]:
    """A "key" in a name: api_key, signing-key, apiKey, APIKEY (on the lower-cased text)."""
    s = m.start()
    if s and (text[s - 1] in "_-" or text[s] == "K" or text.endswith(("api", "API"), 0, s)):
        return _assignment(m, text)
    return ()


def _assignment(m: re.Match[str], text: str) -> Iterator[Leak]:
    tail = _TAIL.match(text, m.end("kw"), min(len(text), m.end("kw") + GENERIC_WINDOW))
    if tail is None:
        return
    op, kq = tail.group("op"), tail.group("kq") or ""
    name_start = _name_start(text, m.start())
    name = text[name_start:tail.end("rest")].lstrip("-.")
    before = text[name_start - 1] if name_start else ""
    if not name or before in ("?", "&") or text.endswith("&amp;", 0, name_start):
        return  # a query parameter: the masker masks those by name, and a link is not config
    vq = tail.group("vq")
    if vq is not None:
        value, a = tail.group("qvalue"), tail.start("qvalue")
        if not text.startswith(vq, a + len(value)):
            return  # the quoted string goes on past a space: prose, not a secret
    else:
        value, a = tail.group("uvalue"), tail.start("uvalue")
        if text[a + len(value):a + len(value) + 1] in ("(", "[") or op in ("==", "===", "!=", "!=="):
            return  # a call, an index or a comparison with a name: code, not a literal
        value = value.rstrip(":")
        if op == ":" and not kq and before not in ("", "\n", "\r", " ", "\t", "{", ","):
            return  # a CSS pseudo-class or a ternary, not a YAML or JS key
    if op == ">" and (before != "<" or not text.startswith("</", a + len(value))):
        return  # only <password>value</password> uses '>'
    if op == "," and not (kq and vq and text[max(0, name_start - 3):max(0, name_start - 1)]
                          .strip().endswith("(")):
        return  # only define('DB_PASSWORD', '...') and setenv("X", "...") use ','
    kind = _classify(name, value, text, a)  # the name first: it rules most hits out cheaply
    if kind is not None and _literal(value.replace("\\/", "/")):
        yield Leak(kind, value, a, a + len(value))


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _keyword(word: str) -> re.Pattern[str]:
    """The keyword (group 'kw'), the rest of its name and an operator: _TAIL's first half."""
    return re.compile(rf"(?P<kw>{word}){_REST}(?:{_QUOTE})?\]?[ \t]{{0,8}}(?::=|=>|=|:|>|,|!=)")



RULES: tuple[Rule, ...] = (
    Rule("private-key", _compile(r"-----BEGIN ((?:[A-Z0-9]+ ){0,3})PRIVATE KEY(?: BLOCK)?-----"),
         _private_key),
    # Rules that share a first literal share one regex (each pass over the text costs about
    # as much as the next, whatever it looks for): the judge goes by the group that matched.
    Rule("A: AWS key id, Google API key, Azure storage key", _compile(
        r"A(?:(?P<aws>(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9]))"
        r"|(?P<google>Iza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-]))"
        r"|(?P<azure>ccountKey=(?P<azure_key>[A-Za-z0-9+/]{86}==)))"), _dispatch(
            aws=_aws_key_id, google=_simple("Google API key", 4, 3.5, _WORD_DASH),
            azure=_group_value("Azure storage account key", 4.0, "azure_key"))),
    Rule("g: GitHub, GitLab", _compile(
        r"g(?:(?P<github>h[pousr]_[A-Za-z0-9]{36,251}|ithub_pat_[A-Za-z0-9_]{70,240})"
        r"|(?P<gitlab>l(?:pat|dt|rt|ptt|ft)-[A-Za-z0-9_.\-]{20,100}))"),
         _dispatch(github=_github, gitlab=_gitlab)),
    Rule("slack-token", _compile(
        r"x(?:ox(?:b-\d{8,14}-(?:\d{8,14}-)?[A-Za-z0-9]{18,40}|p-(?:\d{8,14}-){3}[A-Za-z0-9]{28,40}"
        r"|e-\d-[A-Za-z0-9]{140,170}|e\.xox[bp]-\d-[A-Za-z0-9]{160,170}|[ar]-(?:\d-)?[A-Za-z0-9-]{8,60}"
        r"|[os]-\d+-\d+-\d+-[a-fA-F0-9]{8,64})|app-\d-[A-Z0-9]{6,20}-\d{6,16}-[a-z0-9]{32,80})"
        r"(?![A-Za-z0-9])"), _slack),
    Rule("slack-webhook", _compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/"
                                   r"([A-Za-z0-9_/+-]{20,150})"), _slack_webhook),
    Rule("k: Stripe, sk- keys (OpenAI, Anthropic), Mailgun", _compile(
        r"k(?:(?P<stripe>_(?:live|test)_[A-Za-z0-9]{10,247})"
        r"|(?P<sk>-(?:ant-(?P<ant>(?:api|admin|oat|ort|sid)\d\d)-)?[A-Za-z0-9_-]{20,300})"
        r"|(?P<mailgun>ey-[0-9a-zA-Z]{32}(?![0-9A-Za-z])))"), _dispatch(
            stripe=_stripe, sk=_sk_dash, mailgun=_simple("Mailgun API key", 4, 3.0, _WORD_DASH))),
    Rule("webhook-signing-secret", _compile(r"whsec_[A-Za-z0-9+/=]{24,100}"), _whsec),
    Rule("S: SendGrid, Twilio API key, Azure shared access key", _compile(
        r"S(?:(?P<sendgrid>G\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-]))"
        r"|(?P<twilio>K[0-9a-fA-F]{32}(?![0-9A-Za-z]))"
        r"|(?P<sas>haredAccessKey=(?P<sas_key>[A-Za-z0-9+/]{43}=)))"), _dispatch(
            sendgrid=_simple("SendGrid API key", 3, 3.5), twilio=_simple("Twilio API key", 2, 3.0),
            sas=_group_value("Azure shared access key (Service Bus / Event Hubs)", 4.0, "sas_key"))),
    Rule("google-oauth-client-secret", _compile(r"GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])"),
         _simple("Google OAuth client secret", 7, 3.5, _WORD_DASH)),
    Rule("azure-ad-client-secret", _compile(r"Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])"), _azure_ad),
    Rule("npm", _compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"), _simple("npm access token", 4, 3.0)),
    Rule("pypi", _compile(r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,300}"), _simple("PyPI API token", 5, 3.5)),
    Rule("jwt", _compile(r"eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{16,1024}"),
         _jwt),
    Rule("url-password", _compile(r"://([^\s:/?#@\"'<>\\\[\]]{0,128}):([^\s/?#@\"'<>\\]{1,256})@"
                                  r"(?=[\w\[])"), _url_password),
    Rule("basic-auth", _compile(r"authorization[\"']?[ \t]*[:=][ \t]*[\"']?basic[ \t]+"
                                r"([a-z0-9+/]{8,1024}={0,2})"), _basic, lower=True),
    Rule("bearer-token", _compile(r"bearer[ \t]+([a-z0-9._~+/-]{20,2048}=*)"),
         _bearer, lower=True),
    # The generic rule's keywords, on the lower-cased text, each followed by an assignment
    # operator within the name (checked here, in C: a keyword in prose costs nothing more).
    Rule("assignment: pass, pwd", _keyword("p(?:ass|wd)"), _assignment, lower=True),
    Rule("assignment: secret", _keyword("secret"), _assignment, lower=True),
    Rule("assignment: token", _keyword("token"), _assignment, lower=True),
    Rule("assignment: credential", _keyword("credential"), _assignment, lower=True),
    Rule("assignment: key (api_key, signing-key, apiKey)", _keyword("key"), _key_name, lower=True),
)


def _ascii(text: str) -> str:
    """The text with every non-ASCII character as '?': same offsets, and a one-byte string.

    Every format is ASCII, and CPython scans a one-byte string about twice as fast as the
    two- or four-byte one a single non-ASCII character turns a page into. Judges read values
    from the original text at the same offsets.
    """
    return text if text.isascii() else text.encode("ascii", "replace").decode("ascii")


# Work bound for a hostile body: each rule judges at most this many of its matches in one
# text (a real response has a handful; a body of 100,000 fake keys would otherwise cost
# seconds on every fetch). What a rule finds beyond it is not reported.
MAX_MATCHES_PER_RULE = 2000


def find_leaks(text: str) -> list[Leak]:
    """Every credential in `text`, in order, one finding per span (the most specific rule)."""
    if not text:
        return []
    scan = _ascii(text)
    low = scan.lower()  # ASCII lower-casing keeps every offset
    found: list[tuple[int, int, Leak]] = []
    for rank, rule in enumerate(RULES):
        haystack = low if rule.lower else scan
        for seen, match in enumerate(rule.regex.finditer(haystack)):
            if seen == MAX_MATCHES_PER_RULE:
                break
            found.extend((rank, -(leak.end - leak.start), leak) for leak in rule.judge(match, text))
    if not found:
        return []
    found.sort(key=lambda item: (item[2].start, item[0], item[1]))
    kept: list[tuple[int, Leak]] = []
    for rank, _, leak in found:
        if kept and leak.start < kept[-1][1].end:  # overlaps the last one kept
            if rank < kept[-1][0]:
                kept[-1] = (rank, leak)
            continue
        kept.append((rank, leak))
    return [leak for _, leak in kept]


_PUBLIC_PREFIXES = tuple(sorted((
    "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-",
    "glrt-", "glptt-", "glft-", "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxe-", "xoxe.xoxp-",
    "xoxe.xoxb-", "xoxo-", "xoxs-", "xapp-", "sk_live_", "sk_test_", "rk_live_", "rk_test_",
    "whsec_", "sk-ant-api03-", "sk-ant-admin01-", "sk-ant-oat01-", "sk-ant-ort01-", "sk-proj-",
    "sk-svcacct-", "sk-admin-", "sk-", "SG.", "SK", "key-", "AIza", "GOCSPX-", "npm_", "pypi-",
    "eyJ",
), key=len, reverse=True))


def preview(leak: Leak) -> str:
    """What a message may show of a leak: its format's public prefix and an ellipsis, or ''.

    Never any of the random part: 'ghp_…', 'AKIA…', 'sk-ant-api03-…'.
    """
    for prefix in _PUBLIC_PREFIXES:
        if leak.value.startswith(prefix) and len(leak.value) > len(prefix) + 8:
            return prefix + "\u2026"
    return ""


# Lines of a private key's body (split on real or JSON-escaped newlines): a body cut by an
# excerpt, or re-wrapped, is still masked line by line.
_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)(-----END|\Z)", re.DOTALL)
_KEY_LINES = re.compile(r"(?:\s|\\[nr])+")


def response_leaks(headers: Sequence[tuple[str, str]], body: str) -> list[Leak]:
    """Every leaked credential in a response: its header block (Set-Cookie aside: a session
    cookie is the response's own, judged by cookies.flags) and its body. Offsets are within
    the header block or the body, whichever holds the leak."""
    head = "\n".join(f"{k}: {v}" for k, v in headers if k.lower() != "set-cookie")
    return (find_leaks(head) if head else []) + find_leaks(body)


def values_to_mask(found: Sequence[Leak], body: str) -> list[str]:
    """What to mask in every output for these leaks: each value, and each line of a key
    body (its BEGIN line is kept: it is the evidence, not the secret)."""
    values = []
    for leak in found:
        values.append(leak.value)
        if "\n" in leak.value or "\\n" in leak.value:
            values += [line for line in _KEY_LINES.split(leak.value) if line]
    values += [line for block in _KEY_BLOCK.finditer(body)
               for line in _KEY_LINES.split(block.group(1)) if line]
    return values
