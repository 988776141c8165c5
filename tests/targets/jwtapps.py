"""Real JWT-protected services (Flask + PyJWT), each with one verification defect or none.

Every app serves GET /api/me (the caller's identity and orders: 200, or 401 with a JSON
error) and GET /.well-known/jwks.json (its public key). The kinds:

    correct_hs      HS256 with a strong secret, algorithms pinned, expiry checked
    correct_rs      RS256 with its own key pair, algorithms pinned
    noverify        decodes without verifying anything (the classic bug)
    alg_from_header verifies with the algorithm the token names, its public key as the
                    key: HS256 then means "HMAC with the public PEM" (alg confusion)
    weak            HS256 verified correctly, but with the secret 'secret'
    no_exp          HS256 signature checked, expiry not (verify_exp off)
    trusts_jku      RS256 with the key fetched from the token's own `jku` header
    lockout         correct_hs, but any bad token locks everyone out (revocation on attack)
    correct_es      ES256 with its own P-256 key pair, algorithms pinned
    es_from_header  alg_from_header with the ES256 key: HS256 means "HMAC with the EC PEM"
    noverify_echo   noverify, and the body echoes the token it took (so it differs per token)
    soft_200        correct_hs, but refusals are 200 pages in the same long layout as the
                    real answer, saying "invalid token" (a "200 with an error body" API)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, Response, request
from jwt.algorithms import RSAAlgorithm

from tests.targets.webapp import serve_app

STRONG_SECRET = "k7Jq2vXr9pLm4ZtW8sYb3NcF6hDg1QaE5uRo0TiV"
WEAK_SECRET = "secret"
HS_KINDS = ("correct_hs", "noverify", "noverify_echo", "weak", "no_exp", "lockout", "soft_200")
RS_KINDS = ("correct_rs", "alg_from_header", "trusts_jku")
ES_KINDS = ("correct_es", "es_from_header")
CLAIMS = {"sub": "alice", "name": "Alice Example", "tenant": "acme"}


@lru_cache(maxsize=1)
def server_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@lru_cache(maxsize=1)
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(kind: str = "correct_rs") -> bytes:
    """The services' public key as a PEM file holds it (trailing newline included)."""
    key = ec_key() if kind in ES_KINDS else server_key()
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_jwks() -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(server_key().public_key()))
    return {"keys": [{**jwk, "kid": "server-1", "use": "sig", "alg": "RS256"}]}


def secret_of(kind: str) -> str:
    return WEAK_SECRET if kind == "weak" else STRONG_SECRET


def valid_token(kind: str, *, exp_in: int = 3600) -> str:
    """A token the service of this kind accepts (exp_in < 0: genuinely expired)."""
    claims = {**CLAIMS, "iat": int(time.time()) - 60, "exp": int(time.time()) + exp_in}
    if kind in RS_KINDS:
        return jwt.encode(claims, server_key(), algorithm="RS256", headers={"kid": "server-1"})
    if kind in ES_KINDS:
        return jwt.encode(claims, ec_key(), algorithm="ES256")
    return jwt.encode(claims, secret_of(kind), algorithm="HS256")


# The envelope every soft_200 answer shares (links, version...): most of the body.
LAYOUT = {"api": "orders", "version": "2024-06-01",
          "links": [{"rel": r, "href": f"/api/{r}?page=1&size=50"} for r in
                    ("self", "orders", "invoices", "customers", "products", "settings", "help")]}


class Refused(Exception):
    pass


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _alg_from_header(token: str, kind: str = "alg_from_header") -> dict[str, Any]:
    """The vulnerable verifier: HS* means HMAC keyed with the public key file's bytes."""
    header = jwt.get_unverified_header(token)
    alg = str(header.get("alg", ""))
    if alg.startswith("HS"):
        head, payload, signature = token.split(".")
        expected = hmac.digest(public_pem(kind), f"{head}.{payload}".encode(), hashlib.sha256)
        if not hmac.compare_digest(expected, _b64(signature)):
            raise Refused("bad signature")
        claims: dict[str, Any] = json.loads(_b64(payload))
        return claims
    key = ec_key() if kind in ES_KINDS else server_key()
    return jwt.decode(token, key.public_key(), algorithms=[alg])


def verify(kind: str, token: str) -> dict[str, Any]:
    if kind == "soft_200":
        return jwt.decode(token, STRONG_SECRET, algorithms=["HS256"])
    if kind in ("noverify", "noverify_echo"):
        return jwt.decode(token, options={"verify_signature": False})
    if kind in ("alg_from_header", "es_from_header"):
        return _alg_from_header(token, kind)
    if kind == "correct_es":
        return jwt.decode(token, ec_key().public_key(), algorithms=["ES256"])
    if kind == "correct_rs":
        return jwt.decode(token, server_key().public_key(), algorithms=["RS256"])
    if kind == "trusts_jku":
        url = jwt.get_unverified_header(token).get("jku")
        key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token).key if url else server_key().public_key()
        return jwt.decode(token, key, algorithms=["RS256"])
    if kind == "no_exp":
        return jwt.decode(token, secret_of(kind), algorithms=["HS256"], options={"verify_exp": False})
    return jwt.decode(token, secret_of(kind), algorithms=["HS256"])


@dataclass
class JwtApp:
    kind: str
    url: str = ""
    seen: list[str] = field(default_factory=list)  # Authorization headers received on /api/me
    locked: threading.Event = field(default_factory=threading.Event)

    @property
    def token(self) -> str:
        return valid_token(self.kind)


def make_app(state: JwtApp) -> Flask:
    app = Flask(f"jwt_{state.kind}")

    def refuse(why: str) -> Response:
        if state.kind == "soft_200":
            return Response(json.dumps({**LAYOUT, "data": None, "error": "invalid token"}),
                            mimetype="application/json")
        return Response(json.dumps({"error": "invalid token", "detail": why}), 401,
                        mimetype="application/json")

    @app.route("/api/me")
    def me() -> Response:
        value = request.headers.get("Authorization", "")
        state.seen.append(value)
        if state.locked.is_set():
            return refuse("locked out")
        if not value.startswith("Bearer "):
            return refuse("no token")
        try:
            claims = verify(state.kind, value.removeprefix("Bearer "))
        except Exception as exc:  # every verifier error is a refusal
            if state.kind == "lockout":
                state.locked.set()
            return refuse(type(exc).__name__)
        if state.kind == "soft_200":
            return Response(json.dumps({**LAYOUT, "data": {"user": claims.get("sub")}, "error": None}),
                            mimetype="application/json")
        if state.kind == "noverify_echo":
            return Response(json.dumps({"user": claims.get("sub"), "token": value.removeprefix("Bearer "),
                                        "claims": claims}), mimetype="application/json")
        body = {"user": claims.get("sub"), "name": claims.get("name"), "tenant": claims.get("tenant"),
                "orders": [{"id": 1001, "total": "12.50"}, {"id": 1002, "total": "99.00"}]}
        # A debug header echoing the token it took: masking must hold for forged tokens too.
        return Response(json.dumps(body), mimetype="application/json",
                        headers={"X-Debug-Token": value.removeprefix("Bearer ")})

    @app.route("/.well-known/jwks.json")
    def jwks() -> Response:
        return Response(json.dumps(public_jwks()), mimetype="application/json")

    return app


@contextmanager
def serve_jwt_app(kind: str) -> Iterator[JwtApp]:
    state = JwtApp(kind)
    with serve_app(make_app(state)) as url:
        state.url = url
        yield state


@contextmanager
def serve_jwks(jwks: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """An attacker's JWKS on loopback: yields its URL and the paths fetched from it."""
    fetched: list[str] = []
    app = Flask("attacker_jwks")

    @app.route("/jwks.json")
    def keys() -> Response:
        fetched.append(request.path)
        return Response(json.dumps(jwks), mimetype="application/json")

    with serve_app(app) as url:
        yield f"{url}/jwks.json", fetched
