"""The JWT forger on its own: every forgery is refused by a correct verifier and accepted by
the real service with the matching defect (Flask + PyJWT on loopback), and crack() finds a
weak secret offline."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pytest_prodready import tokens
from tests.targets.jwtapps import (
    STRONG_SECRET,
    WEAK_SECRET,
    JwtApp,
    public_jwks,
    public_pem,
    serve_jwks,
    serve_jwt_app,
    valid_token,
)

# The weak-secret targets are weak on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")


@pytest.fixture(scope="module")
def app() -> Iterator[Callable[[str], JwtApp]]:
    servers: dict[str, JwtApp] = {}
    with ExitStack() as stack:

        def get(kind: str) -> JwtApp:
            if kind not in servers:
                servers[kind] = stack.enter_context(serve_jwt_app(kind))
            return servers[kind]

        yield get


def status(served: JwtApp, token: str) -> int:
    return requests.get(f"{served.url}/api/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code


def test_parse_reads_header_and_claims_without_verifying() -> None:
    token = valid_token("correct_hs")
    parsed = tokens.parse(token)
    assert parsed.alg == "HS256" and parsed.payload["sub"] == "alice"
    assert tokens.is_jwt(token) and not tokens.is_jwt("opaque-token") and not tokens.is_jwt(None)
    with pytest.raises(tokens.NotAJWT):
        tokens.parse("a.b")
    assert token not in repr(parsed)


def test_alg_none_every_case_variant_with_and_without_signature(app: Callable[[str], JwtApp]) -> None:
    token = valid_token("correct_hs")
    forged = tokens.alg_none(token)
    assert len(forged) == 8
    algs = [json.loads(tokens.b64decode(f.token.split(".")[0]))["alg"] for f in forged]
    assert sorted(set(algs)) == sorted(tokens.NONE_VARIANTS)
    assert sum(f.token.endswith(".") for f in forged) == 4  # four with no signature at all
    assert all(tokens.parse(f.token).payload == tokens.parse(token).payload for f in forged)
    # The no-verify service takes every one; the correct one none.
    assert {status(app("noverify"), f.token) for f in forged} == {200}
    assert {status(app("correct_hs"), f.token) for f in forged} == {401}


def test_bad_signatures_refused_by_correct_accepted_without_verification(
        app: Callable[[str], JwtApp]) -> None:
    token = valid_token("correct_hs")
    forged = tokens.bad_signatures(token)
    names = [f.name for f in forged]
    assert any("tampered" in n for n in names) and "empty signature" in names
    assert any("jwk" in n for n in names) and any("kid" in n for n in names)
    tampered = tokens.tampered(token)
    assert tampered.token.split(".")[2] == token.split(".")[2]  # the original signature...
    assert tokens.parse(tampered.token).payload["prodready_tampered"] is True  # ...on new claims
    assert {status(app("correct_hs"), f.token) for f in forged} == {401}
    assert {status(app("noverify"), f.token) for f in forged} == {200}


def test_embedded_jwk_is_a_real_rs256_token_with_the_key_inlined(app: Callable[[str], JwtApp]) -> None:
    forged = tokens.embedded_jwk(valid_token("correct_rs"))
    header = jwt.get_unverified_header(forged.token)
    key = jwt.PyJWK(header["jwk"]).key
    assert jwt.decode(forged.token, key, algorithms=["RS256"])["sub"] == "alice"
    assert status(app("correct_rs"), forged.token) == 401


def test_kid_injections_are_signed_with_the_injected_secret() -> None:
    path, sql = tokens.kid_injections(valid_token("correct_hs"))
    for forged, secret in ((path, b""), (sql, tokens.KID_SQL_SECRET.encode())):
        head, payload, sig = forged.token.split(".")
        assert hmac.compare_digest(hmac.digest(secret, f"{head}.{payload}".encode(), hashlib.sha256),
                                   tokens.b64decode(sig))
    assert jwt.get_unverified_header(path.token)["kid"] == tokens.KID_PATH
    assert "UNION SELECT" in jwt.get_unverified_header(sql.token)["kid"]


def test_jku_target_fetches_the_attacker_jwks_and_accepts(app: Callable[[str], JwtApp]) -> None:
    """The test serves the attacker's JWKS on loopback and records whether it was fetched."""
    with serve_jwks(tokens.attacker_jwks()) as (url, fetched):
        jku, x5u = tokens.key_url(valid_token("correct_rs"), url)
        assert jwt.get_unverified_header(jku.token)["jku"] == url
        assert jwt.get_unverified_header(x5u.token)["x5u"] == url
        assert status(app("correct_rs"), jku.token) == 401
        assert not fetched  # the correct service never looked at the URL
        assert status(app("trusts_jku"), jku.token) == 200
        assert fetched == ["/jwks.json"]


def test_expired_and_future_tokens_signed_with_the_real_secret(app: Callable[[str], JwtApp]) -> None:
    token = valid_token("correct_hs")
    expired = tokens.expired(token, STRONG_SECRET)
    assert tokens.parse(expired.token).payload["exp"] < tokens.parse(token).payload["iat"]
    assert status(app("correct_hs"), token) == 200
    assert status(app("correct_hs"), expired.token) == 401
    assert status(app("no_exp"), tokens.expired(token, STRONG_SECRET).token) == 200
    nbf, iat = tokens.not_yet_valid(token, STRONG_SECRET)
    assert status(app("correct_hs"), nbf.token) == 401
    assert status(app("correct_hs"), iat.token) == 401
    # With a foreign key (no real secret known) the expired copy is refused for its signature.
    assert status(app("no_exp"), tokens.expired(token).token) == 401


def test_alg_confusion_forms_and_the_confused_verifier(app: Callable[[str], JwtApp]) -> None:
    token = valid_token("correct_rs")
    pem = public_pem()
    forms = dict(tokens.public_key_forms(pem))
    assert pem in forms.values() and pem.rstrip(b"\n") in forms.values()
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert der in forms.values()
    assert any(v.startswith(b"-----BEGIN RSA PUBLIC KEY") for v in forms.values())
    # The same forms from the JWKS (what auth.jwks_url serves).
    jwks_forms = dict(tokens.public_key_forms(json.dumps(public_jwks()).encode()))
    assert pem in jwks_forms.values()
    forged = tokens.alg_confusion(token, pem)
    assert all(jwt.get_unverified_header(f.token)["alg"] == "HS256" for f in forged)
    assert 200 in {status(app("alg_from_header"), f.token) for f in forged}
    assert {status(app("correct_rs"), f.token) for f in forged} == {401}
    assert status(app("alg_from_header"), token) == 200  # it does take real tokens


def test_alg_confusion_with_an_ec_key_pem_and_der() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"sub": "bob"}, key, algorithm="ES256")
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    forms = [form for _, form in tokens.public_key_forms(pem)]
    assert pem in forms and pem.rstrip(b"\n") in forms and len(forms) == 3
    for forged, (_, form) in zip(tokens.alg_confusion(token, pem), tokens.public_key_forms(pem), strict=True):
        head, payload, sig = forged.token.split(".")
        assert hmac.digest(form, f"{head}.{payload}".encode(), hashlib.sha256) == tokens.b64decode(sig)


def test_weak_secret_list_is_real_and_cracks_a_weak_token(app: Callable[[str], JwtApp]) -> None:
    weak = tokens.weak_secrets()
    assert len(weak) >= 300
    for known in ("secret", "changeme", "your-256-bit-secret", "fallback-secret-for-dev"):
        assert known in weak
    assert not any(s.startswith("# ") or not s for s in weak)
    assert tokens.crack(valid_token("weak"), weak) == WEAK_SECRET
    assert tokens.crack(valid_token("correct_hs"), weak) is None
    assert tokens.crack(valid_token("correct_rs"), weak) is None  # not HMAC: nothing to crack
    assert tokens.crack_position(valid_token("weak"), weak) == weak.index("secret") + 1
    signed = tokens.weak_secret_signed(valid_token("correct_hs"), weak[:5])
    assert 200 in {status(app("weak"), f.token) for f in signed}
    assert {status(app("correct_hs"), f.token) for f in signed} == {401}


def test_crack_a_public_list_sized_file_with_crlf_and_empty_first_line(tmp_path: Path) -> None:
    """The best-known public list has ~104k CRLF lines and an empty first line."""
    target_secret = "tr0ub4dor-prodready"
    lines = ["", *(secrets.token_urlsafe(12) for _ in range(104_000)), target_secret, ""]
    path = tmp_path / "jwt.secrets.list"
    path.write_bytes("\r\n".join(lines).encode())
    loaded = tokens.load_secrets(path)
    assert len(loaded) >= 104_000 and "" not in loaded and not any("\r" in s for s in loaded[:50])
    token = jwt.encode({"sub": "alice"}, target_secret, algorithm="HS256")
    assert tokens.crack(token, loaded) == target_secret
    hs512 = jwt.encode({"sub": "alice"}, target_secret, algorithm="HS512")
    assert tokens.crack(hs512, loaded) == target_secret


def test_forged_tokens_never_show_in_a_repr() -> None:
    forged = tokens.foreign_key(valid_token("correct_hs"))
    assert forged.token not in repr(forged) and "foreign key" in repr(forged)


def test_parse_any_text_is_a_token_or_not_a_jwt() -> None:
    """The configured token is arbitrary text: parse() only ever raises NotAJWT."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    part = st.one_of(st.text(max_size=12), st.binary(max_size=12).map(tokens.b64encode),
                     st.sampled_from([tokens.encode_json({"alg": "HS256"}), tokens.encode_json([1]),
                                      tokens.b64encode(b"\xff\xfe"), "e30"]))

    @settings(max_examples=300, deadline=None)
    @given(parts=st.lists(part, min_size=1, max_size=4))
    def run(parts: list[str]) -> None:
        text = ".".join(parts)
        try:
            parsed = tokens.parse(text)
        except tokens.NotAJWT:
            assert not tokens.is_jwt(text)
            return
        assert isinstance(parsed.header, dict) and isinstance(parsed.payload, dict)
        tokens.crack(text, ["secret"])  # never raises on a parsed token

    run()
    head = tokens.encode_json({"alg": "HS256"})
    assert tokens.crack(f"{head}.e30.sig\u00e9", ["secret"]) is None


@pytest.mark.parametrize("bad", [b"", b"not a key", b'{"kty": "RSA"}', b'{"keys": []}', b"{oops",
                                 b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"])
def test_a_bad_public_key_is_a_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError, match="not a public key"):
        tokens.alg_confusion(valid_token("correct_rs"), bad)
