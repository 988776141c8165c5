"""webhook.*: each check fails on a real receiver with the defect and passes on a correct one.

The receivers are real Flask apps on loopback. The correct ones verify with the providers'
own code: `stripe.Webhook.construct_event`, `slack_sdk`'s `SignatureVerifier`,
`standardwebhooks.Webhook.verify`, GitHub's documented algorithm, and a hand-written
generic HMAC receiver (`kommo`). The broken ones carry the defects found in real reviews:
the signature check always passes, a missing header is let through, the timestamp is
ignored, bad input crashes the endpoint (5xx), and verification over re-serialised JSON
(which refuses the provider's own requests).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
import stripe
from flask import Flask, Response, request
from slack_sdk.signature import SignatureVerifier
from werkzeug.exceptions import HTTPException

from pytest_prodready import schema
from pytest_prodready.assertions import assert_webhook_verifies_signature
from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.webhooks import plan_for
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import CheckFailure
from pytest_prodready.target import Target
from tests.targets.webapp import serve_app

SECRETS = {
    "stripe": "whsec_Zk3R9qLm2XvB7tY4wN8cP1dF6gH0jS5a",
    "github": "gh-webhook-secret-Qw8Er4Ty6Ui2",
    "slack": "5c0d9e8f7a6b1c2d3e4f5a6b7c8d9e0f",
    "standard": "whsec_" + base64.b64encode(b"standard-webhooks-secret-bytes-32").decode(),
    "kommo": "kommo-hmac-secret-Lp0Ok9Ij8Uh7",
}
ENV = {name: f"{name.upper()}_WEBHOOK_SECRET" for name in SECRETS}
SIGNATURE_HEADER = {"stripe": "Stripe-Signature", "github": "X-Hub-Signature-256",
                    "slack": "X-Slack-Signature", "standard": "webhook-signature",
                    "kommo": "X-Kommo-Signature"}
NAMES = list(SECRETS)
CHECKS = ("webhook.valid_accepted", "webhook.unsigned_rejected", "webhook.bad_signature_rejected",
          "webhook.replay_rejected")
KOMMO = {"scheme": "hmac-sha256", "header": "X-Kommo-Signature", "prefix": "sha256=",
         "timestamp_header": "X-Kommo-Timestamp"}
MODES = ("correct", "missing_ok", "always_true", "no_timestamp", "errors", "reserialized", "echo")


# -- the receivers ------------------------------------------------------------------------------
def verify(name: str, body: bytes, headers: Mapping[str, str], check_time: bool = True) -> bool:
    """Does the provider's own verifier accept this request? (check_time=False: the bug of
    checking the signature but not the timestamp, written the way developers write it)."""
    secret = SECRETS[name]
    headers = {k.lower(): v for k, v in headers.items()}
    if name == "stripe":
        try:
            # tolerance=0 is how a Stripe receiver turns the timestamp check off.
            stripe.Webhook.construct_event(body, headers.get("stripe-signature"), secret,
                                           tolerance=300 if check_time else 0)
        except (stripe.SignatureVerificationError, ValueError):
            return False
        return True
    if name == "github":  # GitHub's documented algorithm
        signature = headers.get("x-hub-signature-256")
        if not signature:
            return False
        expected = "sha256=" + hmac.new(secret.encode(), msg=body, digestmod=hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)
    if name == "slack":
        verifier = SignatureVerifier(secret)
        if check_time:
            return verifier.is_valid_request(body, dict(headers))
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        calculated = verifier.generate_signature(timestamp=timestamp or "", body=body)
        return bool(timestamp and signature and calculated and hmac.compare_digest(calculated, signature))
    if name == "standard":
        webhook = standardwebhooks.Webhook(secret)
        if check_time:
            try:
                webhook.verify(body, dict(headers), json_parse=False)
            except standardwebhooks.webhooks.WebhookVerificationError:
                return False
            return True
        ident, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
        if not (ident and stamp and headers.get("webhook-signature")):
            return False
        when = dt.datetime.fromtimestamp(int(stamp), tz=dt.timezone.utc)
        expected = webhook.sign(ident, when, body.decode())
        return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split(" "))
    # kommo: a generic HMAC receiver as a team writes it by hand
    stamp, signature = headers.get("x-kommo-timestamp", ""), headers.get("x-kommo-signature", "")
    if not (stamp.isdigit() and signature):
        return False
    if check_time and abs(time.time() - int(stamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


def receivers(log: list[Received]) -> Flask:
    """POST /<name>/<mode>: the `name` provider's receiver, correct or with the `mode` defect."""
    app = Flask("webhook_receivers")
    lock = threading.Lock()

    @app.errorhandler(Exception)
    def crashed(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):  # a 404 stays a 404
            return exc
        return "Internal Server Error", 500  # what an unhandled exception gives, without the log

    @app.post("/<name>/<mode>")
    def receive(name: str, mode: str) -> Response:
        body = request.get_data()
        headers = {k: v for k, v in request.headers.items()}
        with lock:
            log.append(Received(request.path, headers, body))
        present = any(k.lower() == SIGNATURE_HEADER[name].lower() for k in headers)
        if mode == "echo":  # accepts anything, and echoes the signature and the secret back
            echoed = request.headers.get(SIGNATURE_HEADER[name], "")
            text = f"got signature {echoed}; expected with secret {SECRETS[name]}"
            return Response(text, 200, headers={"X-Echo-Signature": echoed or "none"})
        if mode == "always_true":  # verify() was stubbed: any signature header will do
            ok = present
        elif mode == "missing_ok":  # "if the header is there, check it"
            ok = verify(name, body, headers) if present else True
        elif mode == "no_timestamp":
            ok = verify(name, body, headers, check_time=False)
        elif mode == "reserialized":  # verifies json.dumps(parsed body): not the bytes sent
            ok = verify(name, json.dumps(request.get_json(silent=True)).encode(), headers)
        else:
            ok = verify(name, body, headers)
        if not ok and mode == "errors":
            raise RuntimeError("signature verification failed")  # unhandled: a 500
        if not ok:
            return Response('{"error": "invalid signature"}', 400, mimetype="application/json")
        return Response('{"received": true}', 200, mimetype="application/json")

    return app


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[Received]]]:
    log: list[Received] = []
    with serve_app(receivers(log)) as url:
        yield url, log


def table(name: str, mode: str, **extra: Any) -> dict[str, Any]:
    base = KOMMO if name == "kommo" else {"scheme": name}
    return {"path": f"/{name}/{mode}", **base, "secret_env": ENV[name], **extra}


def make_target(url: str, tables: Mapping[str, Mapping[str, Any]],
                secrets: Mapping[str, str] | None = None, config_file: Path | None = None) -> Target:
    """A Target configured as a prodready.toml would be, the tables validated by the schema."""
    webhooks = schema.PROFILE({"webhooks": dict(tables)}, "")["webhooks"]
    values = {**DEFAULTS, "base_url": url, "webhooks": webhooks}
    given = SECRETS if secrets is None else secrets
    settings = Settings(values=values, sources={}, config_file=config_file,
                        secrets={f"webhooks.{n}.secret_env": given[n] for n in tables if n in given})
    return Target(settings)


@pytest.fixture(scope="module")
def by_mode(receiver: tuple[str, list[Received]]) -> Iterator[Callable[[str], Target]]:
    """One target per receiver mode for the module (a shared probe cache, as in a real run)."""
    url, _ = receiver
    made: dict[str, Target] = {}

    def get(mode: str) -> Target:
        if mode not in made:
            made[mode] = make_target(url, {n: table(n, mode) for n in NAMES})
        return made[mode]

    yield get
    for target in made.values():
        target.close()


@pytest.fixture
def target_with(receiver: tuple[str, list[Received]]) -> Iterator[Callable[..., Target]]:
    made: list[Target] = []

    def factory(tables: Mapping[str, Mapping[str, Any]], **kw: Any) -> Target:
        made.append(make_target(receiver[0], tables, **kw))
        return made[-1]

    yield factory
    for target in made:
        target.close()


def received(log: list[Received], path: str) -> list[Received]:
    return [r for r in log if r.path == path]


# -- every check passes on the correct receiver, fails on the broken one -------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_check_passes_on_the_correct_receiver(by_mode: Callable[[str], Target], name: str) -> None:
    results = {c: run_check(c, by_mode("correct"), name) for c in CHECKS}
    for check_id, result in results.items():
        if check_id == "webhook.replay_rejected" and name == "github":
            assert result.outcome == "skipped"
            assert "GitHub signs no timestamp" in result.message
            continue
        assert result.outcome == "passed", result.detail or result.message
    assert results["webhook.valid_accepted"].message == (
        f"webhook {name} (POST /{name}/correct) accepts a correctly signed request (200)")


DEFECTS = [
    ("webhook.unsigned_rejected", "missing_ok",
     "a request without {header} was accepted (200; expected 4xx)"),
    ("webhook.unsigned_rejected", "errors", "the endpoint errored (500) on a request without {header}"),
    ("webhook.bad_signature_rejected", "always_true",
     "a request signed with the wrong secret was accepted (200; expected 4xx); a tampered body "
     "under the original's signature was accepted (200; expected 4xx)"),
    ("webhook.bad_signature_rejected", "errors",
     "the endpoint errored (500) on a request signed with the wrong secret instead of refusing it"),
    ("webhook.replay_rejected", "no_timestamp", "old (tolerance 300s) was accepted (200; expected 4xx)"),
    ("webhook.replay_rejected", "errors",
     "the endpoint errored (500) on a correctly signed request 900s old"),
    ("webhook.valid_accepted", "reserialized", "a correctly signed request was refused (400; expected 2xx)"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("check_id", "mode", "message"), DEFECTS,
                         ids=[f"{c.split('.')[1]}-{m}" for c, m, _ in DEFECTS])
def test_each_check_fails_on_its_defect(by_mode: Callable[[str], Target], name: str, check_id: str,
                                        mode: str, message: str) -> None:
    result = run_check(check_id, by_mode(mode), name)
    if check_id == "webhook.replay_rejected" and name == "github":
        assert result.outcome == "skipped"  # nothing to replay: GitHub signs no timestamp
        return
    header = "/".join(("X-Hub-Signature-256", "X-Hub-Signature") if name == "github"
                      else (SIGNATURE_HEADER[name],))
    assert result.outcome == "failed", result.message
    assert result.severity == ("critical" if "signature" in check_id or "unsigned" in check_id else "high")
    assert result.message.startswith(f"webhook {name} (POST /{name}/{mode}): ")
    assert message.format(header=header) in result.message
    assert "Fix: " in result.detail
    assert re.search(r"^< (200|400|500) ", result.detail, re.M)


@pytest.mark.parametrize("name", ["stripe", "kommo"])
def test_the_same_check_passes_where_the_defect_is_elsewhere(by_mode: Callable[[str], Target],
                                                             name: str) -> None:
    """Each check judges its own property: the timestamp bug does not fail the signature checks."""
    target = by_mode("no_timestamp")
    assert run_check("webhook.bad_signature_rejected", target, name).outcome == "passed"
    assert run_check("webhook.unsigned_rejected", target, name).outcome == "passed"
    assert run_check("webhook.replay_rejected", target, name).outcome == "failed"


def test_always_true_is_also_caught_by_the_empty_signature(by_mode: Callable[[str], Target]) -> None:
    result = run_check("webhook.unsigned_rejected", by_mode("always_true"), "slack")
    assert result.outcome == "failed"
    assert result.message == ("webhook slack (POST /slack/always_true): a request with an empty "
                              "X-Slack-Signature was accepted (200; expected 4xx)")


def test_refusals_cannot_be_judged_without_the_positive_control(by_mode: Callable[[str], Target]) -> None:
    """An endpoint that refuses its provider's own requests refuses everything: no false pass."""
    target = by_mode("reserialized")
    for check_id in CHECKS[1:]:
        result = run_check(check_id, target, "standard")
        assert result.outcome == "error", (check_id, result.outcome)
        assert result.message == (
            "cannot judge: webhook standard (POST /standard/reserialized): a correctly signed "
            "request got 400, not 2xx, so a refusal here would prove nothing; see webhook.valid_accepted")


def test_a_wrong_path_is_not_a_refusal(target_with: Callable[..., Target]) -> None:
    """A 404 is a 4xx, but it proves nothing: valid_accepted fails, the refusal checks error."""
    target = target_with({"stripe": {**table("stripe", "correct"), "path": "/stripe-typo"}})
    valid = run_check("webhook.valid_accepted", target, "stripe")
    assert valid.outcome == "failed"
    assert valid.message == ("webhook stripe (POST /stripe-typo): a correctly signed request got 404: "
                             "check the path (webhooks.stripe.path)")
    assert run_check("webhook.unsigned_rejected", target, "stripe").outcome == "error"


# -- what was really sent ---------------------------------------------------------------------------
def test_probes_are_what_the_checks_claim(receiver: tuple[str, list[Received]],
                                          target_with: Callable[..., Target]) -> None:
    log = receiver[1]
    target = target_with({"slack": table("slack", "correct", tolerance_s=60)})
    for check_id in CHECKS:
        assert run_check(check_id, target, "slack").outcome == "passed"
    got = received(log, "/slack/correct")[-6:]
    # One positive control shared by the four checks (the probe cache), five attacks.
    assert len(got) == 6, [r.headers.get("X-Slack-Signature") for r in got]
    by_challenge = {json.loads(r.body).get("challenge", "tampered"): r for r in got}
    now = int(time.time())
    valid = next(r for r in got if json.loads(r.body).get("challenge", "").endswith("_valid"))
    assert abs(int(valid.headers["X-Slack-Request-Timestamp"]) - now) < 30
    assert verify("slack", valid.body, valid.headers)
    assert json.loads(valid.body)["type"] == "url_verification"  # Slack's harmless handshake
    unsigned = [r for r in got if r.body and json.loads(r.body).get("challenge", "").endswith("_unsigned")]
    assert sorted(r.headers.get("X-Slack-Signature", "<absent>") for r in unsigned) == ["", "<absent>"]
    replay = next(r for r in got if json.loads(r.body).get("challenge", "").endswith("_replay"))
    assert now - int(replay.headers["X-Slack-Request-Timestamp"]) >= 2 * 60 + 300 - 30
    assert verify("slack", replay.body, replay.headers, check_time=False)  # correctly signed...
    assert not verify("slack", replay.body, replay.headers)  # ...but too old
    tampered = next(r for r in got if json.loads(r.body).get("prodready_tampered"))
    assert not verify("slack", tampered.body, tampered.headers)
    assert all(r.headers["Content-Type"] == "application/json" for r in got)
    assert len(by_challenge) >= 5


def test_probes_are_stable_within_a_run(by_mode: Callable[[str], Target]) -> None:
    """Prefetch and judge compute the probes separately; they must be the same requests."""
    settings = by_mode("correct").settings
    first, second = plan_for(settings, "standard"), plan_for(settings, "standard")
    assert first is not None and first == second
    fresh = replace(settings)  # another run: another clock, same scheme
    assert plan_for(fresh, "standard") is not None
    # Shown by pytest -l and debuggers: no secret, no signature.
    assert repr(first) == "<Plan webhook standard (POST /standard/correct)>"
    assert SECRETS["standard"] not in repr(first.hook)


def test_github_probes_carry_the_ping_event(receiver: tuple[str, list[Received]],
                                            by_mode: Callable[[str], Target]) -> None:
    assert run_check("webhook.valid_accepted", by_mode("correct"), "github").outcome == "passed"
    [valid] = [r for r in received(receiver[1], "/github/correct") if "prodready" in json.loads(r.body)
               and json.loads(r.body)["prodready"].endswith("_valid")]
    assert valid.headers["X-Github-Event"] == "ping"
    assert re.fullmatch(r"[0-9a-f-]{36}", valid.headers["X-Github-Delivery"])


def test_payload_from_file_and_inline_template(tmp_path: Path, receiver: tuple[str, list[Received]],
                                               target_with: Callable[..., Target]) -> None:
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "order.json").write_text(
        '{"event": "order.created", "id": "${id}", "at": ${timestamp}}', encoding="utf-8")
    target = target_with({
        "stripe": table("stripe", "correct", payload='{"object": "event", "id": "${id}", "n": 1}'),
        "kommo": table("kommo", "correct", payload_file="events/order.json"),
    }, config_file=tmp_path / "prodready.toml")
    for name in ("stripe", "kommo"):
        result = run_check("webhook.valid_accepted", target, name)
        assert result.outcome == "passed", result.detail
    [kommo] = [r for r in received(receiver[1], "/kommo/correct") if b"order.created" in r.body]
    sent = json.loads(kommo.body)
    assert sent["id"].startswith("msg_prodready_") and sent["id"].endswith("_valid")
    assert sent["at"] == int(kommo.headers["X-Kommo-Timestamp"])
    [stripe_sent] = [r for r in received(receiver[1], "/stripe/correct") if b'"n": 1' in r.body]
    assert json.loads(stripe_sent.body)["object"] == "event"


# -- configurable verdicts, skips, config errors -----------------------------------------------------
def test_accepted_and_rejected_statuses_are_configurable(target_with: Callable[..., Target]) -> None:
    target = target_with({"github": table("github", "correct", accepted=[204], rejected=[401, 403])})
    valid = run_check("webhook.valid_accepted", target, "github")
    assert valid.outcome == "failed"
    assert valid.message.endswith("a correctly signed request got 200 (expected 204)")
    lenient = target_with({"github": table("github", "correct", rejected=[401])})
    unsigned = run_check("webhook.unsigned_rejected", lenient, "github")
    assert unsigned.outcome == "failed"
    assert "a request without X-Hub-Signature-256/X-Hub-Signature got 400, which is not a refusal " \
           "(expected 401)" in unsigned.message
    strict = target_with({"github": table("github", "errors", rejected=[400, 500])})
    assert run_check("webhook.unsigned_rejected", strict, "github").outcome == "passed"


@pytest.mark.parametrize(("tables", "check_id", "reason"), [
    ({}, "webhook.valid_accepted", "not configured: set webhooks"),
    ({"kommo": {**table("kommo", "correct"), "timestamp_header": None}}, "webhook.replay_rejected",
     "webhooks.kommo has no timestamp_header: its signature covers no timestamp"),
    ({"slack": table("slack", "correct", tolerance_s=0)}, "webhook.replay_rejected",
     "webhooks.slack.tolerance_s is 0: no replay window is configured to test"),
])
def test_skips_name_the_reason(target_with: Callable[..., Target], tables: dict[str, Any],
                               check_id: str, reason: str) -> None:
    clean = {n: {k: v for k, v in t.items() if v is not None} for n, t in tables.items()}
    result = run_check(check_id, target_with(clean), next(iter(clean), ""))
    assert result.outcome == "skipped"
    assert reason in result.message
    assert not result.exchanges


def test_missing_secret_skips_naming_the_env_var(target_with: Callable[..., Target]) -> None:
    target = target_with({"stripe": table("stripe", "correct")}, secrets={})
    result = run_check("webhook.unsigned_rejected", target, "stripe")
    assert result.outcome == "skipped"
    assert "STRIPE_WEBHOOK_SECRET" in result.message and "webhooks.stripe.secret_env" in result.message


@pytest.mark.parametrize(("extra", "secrets", "message"), [
    ({"payload": "{}", "payload_file": "x.json"}, None,
     "webhooks.stripe.payload_file: set payload or payload_file, not both"),
    ({"payload_file": "missing.json"}, None, "webhooks.stripe.payload_file: cannot read"),
    ({"header": "X-Signature"}, None,
     "webhooks.stripe.header: only the hmac-* schemes take it; the stripe scheme's headers are fixed"),
    ({"accepted": [200, 400], "rejected": [400]}, None, "webhooks.stripe.rejected: [400] is both"),
    ({"scheme": "standard"}, {"stripe": "not base64 at all!"},
     "the value of STRIPE_WEBHOOK_SECRET is not a Standard Webhooks secret"),
])
def test_config_problems_are_errors_naming_the_key(target_with: Callable[..., Target], tmp_path: Path,
                                                   extra: dict[str, Any], secrets: dict[str, str] | None,
                                                   message: str) -> None:
    target = target_with({"stripe": table("stripe", "correct", **extra)}, secrets=secrets,
                         config_file=tmp_path / "prodready.toml")
    result = run_check("webhook.valid_accepted", target, "stripe")
    assert result.outcome == "error"
    assert message in result.message
    assert not result.exchanges  # nothing was sent
    assert "not base64 at all" not in result.message


# -- secrets and signatures never show ------------------------------------------------------------
def everything_secret(log: list[Received], path_prefix: str) -> set[str]:
    """The secrets, and every signature value and bare digest the receiver really got."""
    values = set(SECRETS.values()) | {SECRETS["standard"].removeprefix("whsec_")}
    for r in log:
        if r.path.startswith(path_prefix):
            for header in (*SIGNATURE_HEADER.values(), "X-Hub-Signature"):
                value = r.headers.get(header) or r.headers.get(header.title()) or ""
                values |= {value, *re.split(r"[=,]", value, maxsplit=1)[1:]} if len(value) > 8 else set()
    for value in list(values):  # bare digests inside 't=..,v1=<hex>', 'sha256=<hex>', 'v1,<b64>'
        values |= {part for part in re.split(r"(?:^|,)(?:t|v0|v1|sha1|sha256)[=,]", value) if len(part) > 16}
    return {v for v in values if len(v) > 8}


def test_results_never_show_secrets_or_signatures(receiver: tuple[str, list[Received]],
                                                  by_mode: Callable[[str], Target]) -> None:
    results: list[Result] = [run_check(c, by_mode("echo"), n) for n in NAMES for c in CHECKS]
    assert any(r.outcome == "failed" for r in results)
    shown = "\n".join(f"{r.message}\n{r.detail}\n{json.dumps(r.evidence())}\n"
                      + "\n".join(ex.render() for ex in r.exchanges) for r in results)
    # The material was there: the echo reflects the signature and the secret, masked.
    assert "got signature ****; expected with secret ****" in shown
    assert "> X-Kommo-Signature: ****" in shown  # a custom header, masked by name
    assert "< X-Echo-Signature: ****" in shown
    leaked = {v for v in everything_secret(receiver[1], "/") if v in shown}
    assert not leaked


def test_custom_signature_header_is_masked_by_name(target_with: Callable[..., Target]) -> None:
    """Beyond the values we made: whatever the custom header holds is masked once it is known."""
    target = target_with({"kommo": table("kommo", "correct")})
    assert target.masker.header("X-Kommo-Signature", "sha256=0123456789abcdef") == "sha256=0123456789abcdef"
    run_check("webhook.valid_accepted", target, "kommo")
    assert target.masker.header("x-kommo-signature", "sha256=0123456789abcdef") == "****"
    assert dict(target.masker.headers({"X-Kommo-Timestamp": "1700000000"})) == {
        "X-Kommo-Timestamp": "1700000000"}  # the timestamp is evidence, not a secret


CANARY_TEST = """
import os

import pytest

from pytest_prodready.assertions import assert_webhook_verifies_signature


@pytest.mark.prodready(category="webhook", severity="critical")
def test_helper_webhook(prodready_target):
    assert_webhook_verifies_signature(prodready_target, "/kommo/echo", scheme="hmac-sha256",
                                      secret=os.environ["HELPER_SECRET"], header="X-Kommo-Signature",
                                      prefix="sha256=", timestamp_header="X-Kommo-Timestamp")
"""


def test_canary_webhook_secrets_never_in_any_output(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        receiver: tuple[str, list[Received]]) -> None:
    url, log = receiver
    for name, secret in SECRETS.items():
        monkeypatch.setenv(ENV[name], secret)
    monkeypatch.setenv("HELPER_SECRET", SECRETS["kommo"])
    hooks = "\n".join(
        f'[webhooks.{name}]\npath = "/{name}/echo"\nscheme = "{"hmac-sha256" if name == "kommo" else name}"\n'
        f'secret_env = "{ENV[name]}"\n'
        + ('header = "X-Kommo-Signature"\nprefix = "sha256="\ntimestamp_header = "X-Kommo-Timestamp"\n'
           if name == "kommo" else "")
        for name in NAMES)
    pytester.makefile(".toml", prodready=f'base_url = "{url}"\n\n{hooks}')
    pytester.makepyfile(test_custom=CANARY_TEST)
    before = len(log)
    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "--prodready-only", "webhook",
                                "-vv", "-rA", "--tb=long", "-l", "--junitxml=junit.xml",
                                "--prodready-report", "r.json")
    out = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    outputs = {"terminal": out, **{f: (pytester.path / f).read_text(encoding="utf-8")
                                   for f in ("junit.xml", "r.json")}}
    report = json.loads(outputs["r.json"])
    failed = {c["id"] for c in report["checks"] if c["outcome"] == "failed"}
    assert set(CHECKS[1:]) <= failed
    assert any(c["id"].endswith("test_helper_webhook") and c["outcome"] == "failed" for c in report["checks"])
    for name in ("terminal", "junit.xml"):  # the echoes, masked, are in the evidence shown
        assert "got signature ****; expected with secret ****" in outputs[name], name
        assert "X-Kommo-Signature: ****" in outputs[name], name
    # Prefetch and judging agreed on every probe: each went out once (1 control + 5 attacks).
    assert len(received(log[before:], "/stripe/echo")) == 6
    secrets = everything_secret(log, "/")
    assert len(secrets) > 20  # secrets, signatures and digests of every probe the receivers got
    leaks = {(secret[:6], where) for where, text in outputs.items() for secret in secrets if secret in text}
    assert not leaks, f"secrets in the output: {leaks}"


# -- the QA helper ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_helper_passes_on_correct_receivers(receiver: tuple[str, list[Received]],
                                            target_with: Callable[..., Target], name: str) -> None:
    target = target_with({})
    options = {k: v for k, v in KOMMO.items() if k != "scheme"} if name == "kommo" else {}
    scheme = "hmac-sha256" if name == "kommo" else name
    assert_webhook_verifies_signature(target, f"/{name}/correct", scheme=scheme, secret=SECRETS[name],
                                      **options)
    assert SECRETS[name] in target.masker.secrets


def test_helper_fails_with_evidence_on_a_broken_receiver(target_with: Callable[..., Target]) -> None:
    target = target_with({})
    with pytest.raises(CheckFailure) as caught:
        assert_webhook_verifies_signature(target, "/stripe/always_true", scheme="stripe",
                                          secret=SECRETS["stripe"])
    text = str(caught.value)
    assert "[webhook.bad_signature_rejected] webhook stripe (POST /stripe/always_true): a request " \
           "signed with the wrong secret was accepted" in text
    assert "> Stripe-Signature: ****" in text
    assert SECRETS["stripe"] not in text


def test_helper_uses_the_configured_webhook_at_a_path(by_mode: Callable[[str], Target]) -> None:
    assert_webhook_verifies_signature(by_mode("correct"), "/slack/correct")
    with pytest.raises(CheckFailure, match="replay_rejected"):
        assert_webhook_verifies_signature(by_mode("no_timestamp"), "/standard/no_timestamp")


# -- the how-to stays true ------------------------------------------------------------------------
def test_howto_examples_are_valid_config_and_python(tmp_path: Path) -> None:
    """Every TOML block of docs/howto-webhooks.md validates; every Python block compiles."""
    from pytest_prodready.config import read_table, validate
    from pytest_prodready.signing import signer_from_config

    text = (Path(__file__).resolve().parents[2] / "docs" / "howto-webhooks.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(toml|python)\n(.*?)```", text, re.S)
    tomls = [b for kind, b in blocks if kind == "toml"]
    assert len(tomls) == 6 and sum(kind == "python" for kind, _ in blocks) == 6
    for i, block in enumerate(tomls):
        (tmp_path / f"{i}.toml").write_text(block, encoding="utf-8")
        for name, hook in validate(read_table(tmp_path / f"{i}.toml", ""))["webhooks"].items():
            assert signer_from_config(hook), name
    for i, (kind, block) in enumerate(blocks):
        if kind == "python":
            compile(block, f"howto-webhooks.md[{i}]", "exec")
