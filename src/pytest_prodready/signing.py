"""Webhook signatures, exactly as each provider makes them. Usable on its own, no pytest.

    >>> from pytest_prodready.signing import sign
    >>> headers = sign("github", b'{"zen": "hi"}', "my-secret")
    >>> sorted(headers)
    ['X-Hub-Signature', 'X-Hub-Signature-256']

Each scheme is a small `Signer` that turns (body, secret, timestamp) into the headers a
real sender would put on the request; `sign(scheme, ...)` is the one-call form, and
`signer_from_config(table)` builds one from a `[tool.prodready.webhooks.NAME]` table.

The schemes, from each provider's published documentation (the tests prove them against
the providers' own verifiers: stripe, slack_sdk, standardwebhooks, and GitHub's documented
algorithm and test vector):

- Stripe: `Stripe-Signature: t=<unix>,v1=<hex>`; HMAC-SHA256 over `<t>.<body>`, keyed with the
  whole `whsec_...` secret as UTF-8 text (Stripe does not base64-decode it).
- GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 over the raw body; GitHub also
  still sends the legacy `X-Hub-Signature: sha1=<hex>`, so we do too. No timestamp.
- Slack: `X-Slack-Request-Timestamp: <unix>` and `X-Slack-Signature: v0=<hex>`, HMAC-SHA256
  over `v0:<timestamp>:<body>`.
- Standard Webhooks (Svix): `webhook-id`, `webhook-timestamp`, and
  `webhook-signature: v1,<base64>`, HMAC-SHA256 over `<id>.<timestamp>.<body>`, keyed with
  the base64-decoded part of a `whsec_<base64>` secret.
- Generic HMAC: any header, SHA-1/256/512, hex or base64, an optional prefix (`sha256=`),
  an optional timestamp header, and a signed-content template such as `{timestamp}.{body}`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SCHEMES = ("stripe", "github", "slack", "standard", "hmac-sha1", "hmac-sha256", "hmac-sha512")
ALIASES = {"svix": "standard", "standard-webhooks": "standard", "hmac": "hmac-sha256"}
ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64")
# Config keys that only the generic HMAC scheme understands.
HMAC_OPTIONS = ("header", "encoding", "prefix", "timestamp_header", "signed_content")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Signature:
    """The headers a sender puts on one request, and which of them carry the signature."""

    headers: Mapping[str, str]
    signature_headers: tuple[str, ...]
    digests: tuple[str, ...]  # the bare MACs as sent (hex or base64), for masking
    timestamp: int | None = None

    def __repr__(self) -> str:
        # Shown by pytest's -l and assertion rewriting: the names, never the signatures.
        shown = ", ".join(f"{k}={'****' if k in self.signature_headers else v}"
                          for k, v in self.headers.items())
        return f"<Signature {shown}>"

    @property
    def values(self) -> tuple[str, ...]:
        """The signature headers' values, as sent."""
        return tuple(self.headers[h] for h in self.signature_headers)

    def unsigned(self) -> dict[str, str]:
        """The same headers with the signature headers left out (timestamp and id stay)."""
        return {k: v for k, v in self.headers.items() if k not in self.signature_headers}

    def emptied(self) -> dict[str, str]:
        """The same headers with the signature headers present but empty."""
        return {k: ("" if k in self.signature_headers else v) for k, v in self.headers.items()}


def _now() -> int:
    return int(time.time())


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def _mac(algorithm: str, key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, getattr(hashlib, algorithm)).digest()


class Signer(ABC):
    """One signature scheme: headers for (body, secret, timestamp)."""

    scheme: str = ""
    #: the header carrying the request's timestamp, or None for schemes that sign none
    timestamp_header: str | None = None

    @property
    @abstractmethod
    def signature_headers(self) -> tuple[str, ...]:
        """The headers that carry the signature (left out or emptied by forgeries)."""

    @property
    def has_timestamp(self) -> bool:
        """Whether the scheme signs a timestamp (and so can refuse replays by age)."""
        return self.timestamp_header is not None

    @abstractmethod
    def sign(self, body: bytes, secret: str | bytes, timestamp: int | None = None,
             msg_id: str | None = None) -> Signature:
        """Sign `body` as the provider would at `timestamp` (default: now)."""

    def headers(self, body: bytes, secret: str | bytes, timestamp: int | None = None,
                msg_id: str | None = None) -> dict[str, str]:
        """The headers to send with `body`: `sign(...).headers` as a plain dict."""
        return dict(self.sign(body, secret, timestamp, msg_id).headers)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme}>"


class StripeSigner(Signer):
    """`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""

    scheme = "stripe"
    header = "Stripe-Signature"
    timestamp_header = "Stripe-Signature"  # the timestamp rides in the signature header (t=)

    @property
    def signature_headers(self) -> tuple[str, ...]:
        return (self.header,)

    def sign(self, body: bytes, secret: str | bytes, timestamp: int | None = None,
             msg_id: str | None = None) -> Signature:
        ts = _now() if timestamp is None else int(timestamp)
        digest = _mac("sha256", _key(secret), f"{ts}.".encode() + body).hex()
        return Signature({self.header: f"t={ts},v1={digest}"}, (self.header,), (digest,), ts)


class GitHubSigner(Signer):
    """`X-Hub-Signature-256: sha256=<hex>` over the raw body (plus the legacy SHA-1 header).

    GitHub signs no timestamp: a captured delivery stays valid forever, which is why
    `webhook.replay_rejected` skips this scheme (receivers dedupe on X-GitHub-Delivery).
    """

    scheme = "github"
    header = "X-Hub-Signature-256"
    legacy_header = "X-Hub-Signature"

    def __init__(self, legacy_sha1: bool = True) -> None:
        self.legacy_sha1 = legacy_sha1

    @property
    def signature_headers(self) -> tuple[str, ...]:
        return (self.header, self.legacy_header) if self.legacy_sha1 else (self.header,)

    def sign(self, body: bytes, secret: str | bytes, timestamp: int | None = None,
             msg_id: str | None = None) -> Signature:
        key = _key(secret)
        digest = _mac("sha256", key, body).hex()
        headers = {self.header: f"sha256={digest}"}
        digests = [digest]
        if self.legacy_sha1:
            legacy = _mac("sha1", key, body).hex()
            headers[self.legacy_header] = f"sha1={legacy}"
            digests.append(legacy)
        return Signature(headers, tuple(headers), tuple(digests), None)


class SlackSigner(Signer):
    """`X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">`."""

    scheme = "slack"
    header = "X-Slack-Signature"
    timestamp_header = "X-Slack-Request-Timestamp"
    version = "v0"

    @property
    def signature_headers(self) -> tuple[str, ...]:
        return (self.header,)

    def sign(self, body: bytes, secret: str | bytes, timestamp: int | None = None,
             msg_id: str | None = None) -> Signature:
        ts = _now() if timestamp is None else int(timestamp)
        digest = _mac("sha256", _key(secret), f"{self.version}:{ts}:".encode() + body).hex()
        headers = {self.timestamp_header: str(ts), self.header: f"{self.version}={digest}"}
        return Signature(headers, (self.header,), (digest,), ts)


def standard_key(secret: str | bytes) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after the `whsec_` prefix.

    Bytes are taken as the raw key. Raises ValueError for a secret that is not base64.
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.removeprefix(StandardSigner.secret_prefix).strip()
        if not re.fullmatch(r"[A-Za-z0-9+/]+=*", text):
            raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64")
        try:
            # The reference libraries pad before decoding: unpadded secrets are accepted.
            key = base64.b64decode(text + "==")
        except (binascii.Error, ValueError):
            raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


class StandardSigner(Signer):
    """Standard Webhooks (Svix): `webhook-signature: v1,<base64>` over `<id>.<ts>.<body>`.

    `header_prefix="svix"` sends Svix's own `svix-*` header names instead (Svix's libraries
    accept both).
    """

    scheme = "standard"
    secret_prefix = "whsec_"

    def __init__(self, header_prefix: str = "webhook") -> None:
        self.id_header = f"{header_prefix}-id"
        self.stamp_header = f"{header_prefix}-timestamp"
        self.timestamp_header = self.stamp_header
        self.header = f"{header_prefix}-signature"

    @property
    def signature_headers(self) -> tuple[str, ...]:
        return (self.header,)

    def sign(self, body: bytes, secret: str | bytes, timestamp: int | None = None,
             msg_id: str | None = None) -> Signature:
        ts = _now() if timestamp is None else int(timestamp)
        ident = msg_id or f"msg_{_secrets.token_hex(12)}"
        if "." in ident:
            # The id is part of the signed content, delimited by dots (the spec forbids them).
            raise ValueError(f"a Standard Webhooks message id may not contain '.': {ident!r}")
        digest = base64.b64encode(
            _mac("sha256", standard_key(secret), f"{ident}.{ts}.".encode() + body)).decode("ascii")
        headers = {self.id_header: ident, self.stamp_header: str(ts),
                   self.header: f"v1,{digest}"}
        return Signature(headers, (self.header,), (digest,), ts)


class HmacSigner(Signer):
    """A generic HMAC header: `<header>: <prefix><hex or base64 HMAC of signed_content>`.

    `signed_content` is a template over the raw body: `{body}` (the default), or e.g.
    `{timestamp}.{body}` (the default when a `timestamp_header` is set, Stripe's shape). The
    body is spliced in as bytes, never decoded.
    """

    scheme = "hmac"

    def __init__(self, header: str = "X-Signature", algorithm: str = "sha256",
                 encoding: str = "hex", prefix: str = "", timestamp_header: str | None = None,
                 signed_content: str | None = None) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
        if not header.strip():
            raise ValueError("the signature header name is empty")
        template = signed_content or ("{timestamp}.{body}" if timestamp_header else "{body}")
        unknown = sorted({m for m in _PLACEHOLDER.findall(template)} - {"body", "timestamp"})
        if unknown:
            raise ValueError(f"signed_content {template!r}: unknown placeholder {{{unknown[0]}}}; "
                             "use {body} and {timestamp}")
        if "{body}" not in template:
            raise ValueError(f"signed_content {template!r} must contain {{body}}: a signature "
                             "that does not cover the body protects nothing")
        if "{timestamp}" in template and not timestamp_header:
            raise ValueError(f"signed_content {template!r} signs {{timestamp}} but no "
                             "timestamp_header sends it; set timestamp_header")
        self.header = header
        self.algorithm = algorithm
        self.encoding = encoding
        self.prefix = prefix
        self.timestamp_header = timestamp_header or None
        self.signed_content = template
        self.scheme = f"hmac-{algorithm}"

    @property
    def signature_headers(self) -> tuple[str, ...]:
        return (self.header,)

    def content(self, body: bytes, timestamp: int | None) -> bytes:
        """The exact bytes the MAC covers."""
        text = self.signed_content.replace("{timestamp}", str(timestamp))
        return body.join(part.encode("utf-8") for part in text.split("{body}"))

    def sign(self, body: bytes, secret: str | bytes, timestamp: int | None = None,
             msg_id: str | None = None) -> Signature:
        ts = (_now() if timestamp is None else int(timestamp)) if self.timestamp_header else None
        mac = _mac(self.algorithm, _key(secret), self.content(body, ts))
        digest = mac.hex() if self.encoding == "hex" else base64.b64encode(mac).decode("ascii")
        headers: dict[str, str] = {}
        if self.timestamp_header:
            headers[self.timestamp_header] = str(ts)
        headers[self.header] = f"{self.prefix}{digest}"
        return Signature(headers, (self.header,), (digest,), ts)


def signer_for(scheme: str, **options: Any) -> Signer:
    """The signer of a scheme: stripe, github, slack, standard (svix), hmac-sha1/256/512.

    `options` are the generic HMAC ones (header, encoding, prefix, timestamp_header,
    signed_content); GitHub takes `legacy_sha1`, Standard Webhooks `header_prefix`.
    """
    name = ALIASES.get(scheme, scheme)
    if name == "stripe" and not options:
        return StripeSigner()
    if name == "slack" and not options:
        return SlackSigner()
    if name == "github":
        return GitHubSigner(**options)
    if name == "standard":
        return StandardSigner(**options)
    if name.startswith("hmac-") and name in SCHEMES:
        return HmacSigner(algorithm=name.removeprefix("hmac-"), **options)
    if name in SCHEMES:
        raise ValueError(f"the {name} scheme takes no options (got {', '.join(sorted(options))})")
    raise ValueError(f"unknown webhook scheme {scheme!r}; use one of {', '.join(SCHEMES)}")


def sign(scheme: str, body: bytes | str, secret: str | bytes, timestamp: int | None = None,
         msg_id: str | None = None, **options: Any) -> dict[str, str]:
    """The headers a real sender of `scheme` would put on `body`: the one-call form."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return signer_for(scheme, **options).headers(data, secret, timestamp, msg_id)


def signer_from_config(table: Mapping[str, Any]) -> Signer:
    """A signer from a `[tool.prodready.webhooks.NAME]` table (validated by the schema).

    Raises ValueError naming the key when the table asks for something its scheme cannot do,
    such as a custom `header` on the stripe scheme (the provider fixes its header).
    """
    scheme = str(table.get("scheme", ""))
    given = {k: table[k] for k in HMAC_OPTIONS if table.get(k) not in (None, "")}
    if not scheme.startswith("hmac-"):
        if given:
            key = sorted(given)[0]
            raise ValueError(f"{key}: only the hmac-* schemes take it; the {scheme} scheme's "
                             "headers are fixed by the provider")
        return signer_for(scheme)
    return signer_for(scheme, **given)
