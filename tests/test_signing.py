"""Interop: our signatures are right only if the providers' own verifiers agree.

For each scheme, what our signer makes is ACCEPTED by the provider's official verifier
(`stripe.Webhook.construct_event`, `standardwebhooks.Webhook.verify`, `slack_sdk`'s
`SignatureVerifier`, GitHub's documented algorithm and test vector), and the deliberately
bad ones the checks send (wrong secret, tampered body, stale timestamp, no signature) are
REJECTED by the same verifier. The generic HMAC scheme is proven against the RFC 4231 /
RFC 2202 test vectors.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import standardwebhooks
import stripe
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import WebhookVerificationError

from pytest_prodready.checks.webhooks import WRONG_SECRET, WRONG_STANDARD_SECRET, tamper
from pytest_prodready.signing import (
    GitHubSigner,
    HmacSigner,
    SlackSigner,
    StandardSigner,
    StripeSigner,
    sign,
    signer_for,
    signer_from_config,
    standard_key,
)

STRIPE_SECRET = "whsec_3f9K2mQ7vX1pL8cR5tY0wZ4nB6hD2jS9"
STANDARD_SECRET = "whsec_" + base64.b64encode(bytes(range(7, 39))).decode()  # 32 random-ish bytes
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the shape of Slack's documented example
GITHUB_SECRET = "gh-hook-secret-7Yq2Lm9Xc4"

BODIES = [
    pytest.param(b'{"id":"evt_1","object":"event","type":"invoice.paid"}', id="json"),
    pytest.param(json.dumps({"object": "event", "text": "caf\u00e9 \u2603 \U0001f680",
                             "n": [1, 2.5, None]}, indent=2, ensure_ascii=False).encode(), id="utf8-json"),
    pytest.param(b"token=xyz&team_id=T1&command=%2Fweather&text=94070", id="form"),
]


def now() -> int:
    return int(time.time())


def stale(tolerance: int = 300) -> int:
    """A timestamp the way the replay check makes it: 2 x tolerance + 5 minutes old."""
    return now() - (2 * tolerance + 300)


# -- Stripe: stripe.Webhook.construct_event -------------------------------------------------
def stripe_accepts(body: bytes, headers: dict[str, str], secret: str = STRIPE_SECRET) -> bool:
    try:
        if body.lstrip().startswith(b"{"):
            stripe.Webhook.construct_event(body, headers.get("Stripe-Signature"), secret)
        else:  # construct_event also parses the event; non-JSON bodies: the signature part only
            stripe.WebhookSignature.verify_header(body, headers.get("Stripe-Signature"), secret, 300)
    except stripe.SignatureVerificationError:
        return False
    return True


@pytest.mark.parametrize("body", BODIES)
def test_stripe_signature_accepted_by_construct_event(body: bytes) -> None:
    headers = sign("stripe", body, STRIPE_SECRET)
    assert list(headers) == ["Stripe-Signature"]
    t, v1 = headers["Stripe-Signature"].split(",")
    assert abs(int(t.removeprefix("t=")) - now()) <= 1 and len(v1.removeprefix("v1=")) == 64
    assert stripe_accepts(body, headers)
    if body.startswith(b"{"):
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], STRIPE_SECRET)
        assert event["object"] == json.loads(body)["object"]


def test_stripe_signature_equals_stripes_own_generator() -> None:
    body = '{"id":"evt_1","object":"event"}'
    ours = sign("stripe", body, STRIPE_SECRET, timestamp=1700000000)["Stripe-Signature"]
    theirs = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, 1700000000)
    assert ours == theirs


@pytest.mark.parametrize("body", BODIES)
def test_stripe_rejects_our_bad_signatures(body: bytes) -> None:
    signer = StripeSigner()
    assert not stripe_accepts(body, signer.headers(body, WRONG_SECRET))
    assert not stripe_accepts(tamper(body), signer.headers(body, STRIPE_SECRET))
    assert not stripe_accepts(body, signer.headers(body, STRIPE_SECRET, stale()))
    assert not stripe_accepts(body, signer.sign(body, STRIPE_SECRET).unsigned())
    assert not stripe_accepts(body, signer.sign(body, STRIPE_SECRET).emptied())


def test_stripe_keys_with_the_whole_whsec_string() -> None:
    """Stripe HMACs with the secret text as is; decoding it like Svix would be wrong."""
    body = b'{"object":"event"}'
    svix_style = HmacSigner("Stripe-Signature", timestamp_header="X-T").sign(
        body, base64.b64decode(STRIPE_SECRET[6:] + "=="), 1).digests[0]
    assert StripeSigner().sign(body, STRIPE_SECRET, 1).digests[0] != svix_style


# -- Standard Webhooks: standardwebhooks.Webhook.verify -------------------------------------
def standard_accepts(body: bytes, headers: dict[str, str], secret: str = STANDARD_SECRET) -> bool:
    try:
        standardwebhooks.Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


@pytest.mark.parametrize("body", BODIES)
def test_standard_signature_accepted_by_standardwebhooks(body: bytes) -> None:
    headers = sign("standard", body, STANDARD_SECRET, msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert standard_accepts(body, headers)


def test_standard_signature_equals_the_librarys_own_signer() -> None:
    body = '{"type":"contact.created"}'
    when = dt.datetime.fromtimestamp(1674087231, tz=dt.timezone.utc)
    theirs = standardwebhooks.Webhook(STANDARD_SECRET).sign("msg_1", when, body)
    ours = sign("standard", body, STANDARD_SECRET, timestamp=1674087231, msg_id="msg_1")
    assert ours["webhook-signature"] == theirs


@pytest.mark.parametrize("body", BODIES)
def test_standard_rejects_our_bad_signatures(body: bytes) -> None:
    signer = StandardSigner()
    assert not standard_accepts(body, signer.headers(body, WRONG_STANDARD_SECRET, msg_id="msg_a"))
    assert not standard_accepts(tamper(body), signer.headers(body, STANDARD_SECRET, msg_id="msg_b"))
    assert not standard_accepts(body, signer.headers(body, STANDARD_SECRET, stale(), msg_id="msg_c"))
    signed = signer.sign(body, STANDARD_SECRET, msg_id="msg_d")
    assert not standard_accepts(body, signed.unsigned())
    assert not standard_accepts(body, signed.emptied())
    # The id is signed too: the same signature under another id is refused.
    assert not standard_accepts(body, {**signed.headers, "webhook-id": "msg_other"})


def test_standard_unpadded_and_raw_secrets_match_the_library() -> None:
    """The libraries pad the base64 before decoding; a raw key in bytes is the key itself."""
    key = bytes(range(100, 124))  # 24 bytes: the spec's minimum
    padded = "whsec_" + base64.b64encode(key[:-1]).decode()  # 23 bytes -> ends with '='
    unpadded = padded.rstrip("=")
    body = b'{"a":1}'
    for secret in (padded, unpadded):
        assert standard_accepts(body, sign("standard", body, secret, msg_id="msg_p"), secret)
    assert standard_key(unpadded) == key[:-1]
    raw = StandardSigner().headers(body, key, msg_id="msg_r")
    assert standard_accepts(body, raw, "whsec_" + base64.b64encode(key).decode())


def test_svix_header_names() -> None:
    headers = signer_for("svix", header_prefix="svix").headers(b"{}", STANDARD_SECRET, msg_id="msg_s")
    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_", "plain-text-secret"])
def test_standard_secret_that_is_not_base64_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        sign("standard", b"{}", secret, msg_id="msg_x")


def test_standard_message_id_may_not_contain_dots() -> None:
    with pytest.raises(ValueError, match="may not contain"):
        sign("standard", b"{}", STANDARD_SECRET, msg_id="msg.1")


# -- Slack: slack_sdk.signature.SignatureVerifier -------------------------------------------
def slack_accepts(body: bytes, headers: dict[str, str], secret: str = SLACK_SECRET) -> bool:
    return SignatureVerifier(secret).is_valid_request(body, headers)


@pytest.mark.parametrize("body", BODIES)
def test_slack_signature_accepted_by_signature_verifier(body: bytes) -> None:
    headers = sign("slack", body, SLACK_SECRET)
    assert set(headers) == {"X-Slack-Request-Timestamp", "X-Slack-Signature"}
    assert headers["X-Slack-Signature"].startswith("v0=")
    assert slack_accepts(body, headers)


def test_slack_signature_equals_the_sdks_generator() -> None:
    body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J"
    ours = sign("slack", body, SLACK_SECRET, timestamp=1531420618)
    theirs = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp="1531420618", body=body)
    assert ours == {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": theirs}


@pytest.mark.parametrize("body", BODIES)
def test_slack_rejects_our_bad_signatures(body: bytes) -> None:
    signer = SlackSigner()
    assert not slack_accepts(body, signer.headers(body, WRONG_SECRET))
    assert not slack_accepts(tamper(body), signer.headers(body, SLACK_SECRET))
    assert not slack_accepts(body, signer.headers(body, SLACK_SECRET, stale()))
    assert not slack_accepts(body, signer.sign(body, SLACK_SECRET).unsigned())
    assert not slack_accepts(body, signer.sign(body, SLACK_SECRET).emptied())


# -- GitHub: the documented algorithm and test vector -----------------------------------------
class Forbidden(Exception):
    pass


def github_verify_signature(payload_body: bytes, secret_token: str, signature_header: str | None) -> None:
    """GitHub's documented Python example ("Validating webhook deliveries"), HTTPException
    replaced by an exception of ours."""
    if not signature_header:
        raise Forbidden("x-hub-signature-256 header is missing!")
    hash_object = hmac.new(secret_token.encode("utf-8"), msg=payload_body, digestmod=hashlib.sha256)
    expected_signature = "sha256=" + hash_object.hexdigest()
    if not hmac.compare_digest(expected_signature, signature_header):
        raise Forbidden("Request signatures didn't match!")


def github_accepts(body: bytes, headers: dict[str, str], secret: str = GITHUB_SECRET) -> bool:
    try:
        github_verify_signature(body, secret, headers.get("X-Hub-Signature-256"))
    except Forbidden:
        return False
    return True


def test_github_documented_test_vector() -> None:
    """docs.github.com: secret "It's a Secret to Everybody", payload "Hello, World!"."""
    headers = sign("github", "Hello, World!", "It's a Secret to Everybody")
    assert headers["X-Hub-Signature-256"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


@pytest.mark.parametrize("body", BODIES)
def test_github_signature_accepted_by_documented_algorithm(body: bytes) -> None:
    headers = sign("github", body, GITHUB_SECRET)
    assert github_accepts(body, headers)
    # The legacy SHA-1 header GitHub still sends, checked the same way.
    legacy = "sha1=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature"], legacy)
    assert GitHubSigner().has_timestamp is False  # why webhook.replay_rejected skips GitHub


@pytest.mark.parametrize("body", BODIES)
def test_github_rejects_our_bad_signatures(body: bytes) -> None:
    signer = GitHubSigner()
    assert not github_accepts(body, signer.headers(body, WRONG_SECRET))
    assert not github_accepts(tamper(body), signer.headers(body, GITHUB_SECRET))
    assert not github_accepts(body, signer.sign(body, GITHUB_SECRET).unsigned())
    assert not github_accepts(body, signer.sign(body, GITHUB_SECRET).emptied())


def test_github_without_legacy_header() -> None:
    assert list(sign("github", b"{}", GITHUB_SECRET, legacy_sha1=False)) == ["X-Hub-Signature-256"]


# -- generic HMAC: RFC test vectors ------------------------------------------------------------
# RFC 4231 test case 2 (SHA-256/512) and RFC 2202 test case 2 (SHA-1): key "Jefe".
JEFE = "Jefe"
JEFE_DATA = b"what do ya want for nothing?"
RFC_VECTORS = {
    "hmac-sha1": "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    "hmac-sha256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    "hmac-sha512": ("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                    "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
}


@pytest.mark.parametrize("scheme", sorted(RFC_VECTORS))
def test_generic_hmac_matches_rfc_vectors(scheme: str) -> None:
    expected = RFC_VECTORS[scheme]
    assert sign(scheme, JEFE_DATA, JEFE) == {"X-Signature": expected}
    as_base64 = base64.b64encode(bytes.fromhex(expected)).decode()
    assert sign(scheme, JEFE_DATA, JEFE, header="X-Sig", encoding="base64", prefix="sha=") == {
        "X-Sig": f"sha={as_base64}"}


def test_generic_hmac_with_timestamp_and_template() -> None:
    body = b'{"a":1}'
    default = sign("hmac-sha256", body, JEFE, timestamp=1700000000, timestamp_header="X-Ts")
    assert default == {"X-Ts": "1700000000", "X-Signature": hmac.new(
        b"Jefe", b"1700000000." + body, hashlib.sha256).hexdigest()}
    custom = sign("hmac-sha256", body, JEFE, timestamp=5, timestamp_header="X-Ts",
                  signed_content="v1:{timestamp}:{body}:end")
    assert custom["X-Signature"] == hmac.new(b"Jefe", b"v1:5:" + body + b":end", hashlib.sha256).hexdigest()
    # A body with braces and non-UTF-8 bytes is spliced in as bytes, never formatted.
    odd = b"{timestamp}\xff{body}"
    assert sign("hmac-sha256", odd, JEFE)["X-Signature"] == hmac.new(b"Jefe", odd, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("options", "message"), [
    ({"signed_content": "{timestamp}"}, "must contain {body}"),
    ({"signed_content": "{id}.{body}", "timestamp_header": "X-T"}, "unknown placeholder {id}"),
    ({"signed_content": "{timestamp}.{body}"}, "no timestamp_header"),
    ({"encoding": "hex32"}, "encoding"),
    ({"header": " "}, "header name is empty"),
])
def test_generic_hmac_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        signer_for("hmac-sha256", **options)


# -- building a signer from a config table --------------------------------------------------
def test_signer_from_config_tables() -> None:
    table = {"path": "/hook", "scheme": "hmac-sha512", "secret_env": "X", "header": "X-Kommo-Signature",
             "encoding": "base64", "prefix": "sha512=", "timestamp_header": "X-Kommo-Timestamp"}
    signer = signer_from_config(table)
    assert isinstance(signer, HmacSigner)
    assert (signer.algorithm, signer.header, signer.signature_headers) == (
        "sha512", "X-Kommo-Signature", ("X-Kommo-Signature",))
    assert signer.has_timestamp and signer.signed_content == "{timestamp}.{body}"
    for scheme, cls in (("stripe", StripeSigner), ("github", GitHubSigner), ("slack", SlackSigner),
                        ("standard", StandardSigner)):
        assert isinstance(signer_from_config({"scheme": scheme}), cls)


def test_signer_from_config_refuses_hmac_options_on_provider_schemes() -> None:
    with pytest.raises(ValueError, match="header: only the hmac-\\* schemes"):
        signer_from_config({"scheme": "stripe", "header": "X-Signature"})


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown webhook scheme 'paypal'"):
        sign("paypal", b"{}", "s")
    with pytest.raises(ValueError, match="takes no options"):
        signer_for("slack", header="X")


def test_signature_repr_hides_the_signature() -> None:
    signature = signer_for("slack").sign(b"{}", SLACK_SECRET, timestamp=1700000000)
    assert repr(signature) == "<Signature X-Slack-Request-Timestamp=1700000000, X-Slack-Signature=****>"
    assert signature.digests[0] not in repr(signature)


def test_default_timestamp_is_now() -> None:
    before = now()
    stamp = int(sign("slack", b"{}", SLACK_SECRET)["X-Slack-Request-Timestamp"])
    assert before <= stamp <= now()
