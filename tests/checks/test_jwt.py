"""jwt.*: each check fails on a real Flask+PyJWT service with the defect and passes on the
correct one (tests.targets.jwtapps), with the positive control judged first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready import tokens
from pytest_prodready.checking import Result, run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target
from tests.targets.jwtapps import JwtApp, public_pem, serve_jwt_app, valid_token

ME = "GET /api/me"
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


@pytest.fixture
def target() -> Iterator[Callable[..., Target]]:
    """target(app, token=None, expired=None, **auth): a Target sending `token` (default: a
    valid one for the app) as auth.token_env to GET /api/me."""
    made: list[Target] = []

    def factory(served: JwtApp, token: str | None = None, expired: str | None = None,
                **auth: Any) -> Target:
        secrets = {"auth.token_env": served.token if token is None else token}
        table: dict[str, Any] = {"token_env": "PRODREADY_TEST_JWT", **auth}
        if expired is not None:
            secrets["auth.expired_token_env"] = expired
            table["expired_token_env"] = "PRODREADY_TEST_EXPIRED_JWT"
        settings = Settings(values={**DEFAULTS, "base_url": served.url, "protected": [ME], "auth": table},
                            secrets=secrets, sources={})
        made.append(Target(settings))
        return made[-1]

    yield factory
    for t in made:
        t.close()


def run(check_id: str, target: Target) -> Result:
    return run_check(check_id, target, ME)


def assert_outcome(result: Result, outcome: str, *fragments: str) -> None:
    assert result.outcome == outcome, (result.outcome, result.message, result.detail)
    for fragment in fragments:
        assert fragment in result.message, (fragment, result.message)


def assert_masked(result: Result, forged: list[tokens.Forged], token: str) -> None:
    shown = result.detail + json.dumps(result.evidence())
    for item in [*forged, tokens.Forged("valid", token)]:
        assert item.token not in shown
        assert item.token.split(".")[2] not in shown or not item.token.split(".")[2]


# -- jwt.valid_accepted ---------------------------------------------------------------------
def test_valid_accepted_passes_with_a_working_token(app: Callable[[str], JwtApp],
                                                    target: Callable[..., Target]) -> None:
    assert_outcome(run("jwt.valid_accepted", target(app("correct_hs"))), "passed",
                   "GET /api/me accepts the configured token (200)")


def test_valid_accepted_fails_and_the_rest_cannot_judge_when_the_token_is_refused(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    t = target(app("correct_hs"), token=valid_token("correct_hs", exp_in=-120))
    assert_outcome(run("jwt.valid_accepted", t), "failed", "refused the configured token (401)")
    for check_id in ("jwt.alg_none_rejected", "jwt.bad_signature_rejected", "jwt.expired_rejected"):
        assert_outcome(run(check_id, t), "error", "jwt.valid_accepted does not pass")


def test_opaque_token_skips_every_jwt_check(app: Callable[[str], JwtApp],
                                            target: Callable[..., Target]) -> None:
    t = target(app("correct_hs"), token="opaque-session-token-0123456789")
    for check_id in ("jwt.valid_accepted", "jwt.alg_none_rejected", "jwt.weak_secret_rejected"):
        assert_outcome(run(check_id, t), "skipped", "not a JWT")


def test_token_env_var_not_set_skips_without_sending(app: Callable[[str], JwtApp]) -> None:
    served = app("correct_hs")
    settings = Settings(values={**DEFAULTS, "base_url": served.url, "protected": [ME],
                                "auth": {"token_env": "PRODREADY_UNSET_JWT"}}, secrets={}, sources={})
    with Target(settings) as t:
        for check_id in ("jwt.valid_accepted", "jwt.bad_signature_rejected"):
            result = run(check_id, t)
            assert_outcome(result, "skipped", "PRODREADY_UNSET_JWT (auth.token_env) is not set")
            assert not result.exchanges


# -- jwt.alg_none_rejected ------------------------------------------------------------------
def test_alg_none_fails_on_a_service_that_does_not_verify(app: Callable[[str], JwtApp],
                                                          target: Callable[..., Target]) -> None:
    served = app("noverify")
    result = run("jwt.alg_none_rejected", target(served))
    assert_outcome(result, "failed", "accepted 8 of 8 forged tokens", "alg none, no signature",
                   "with the token holder's response")
    assert "Fix: Pin the accepted algorithms" in result.detail
    assert "> Authorization: Bearer ****" in result.detail
    assert_masked(result, tokens.alg_none(served.token), served.token)


def test_a_body_unlike_the_valid_one_but_showing_the_holder_is_accepted(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    """The service echoes the token (and its claims): forged bodies differ from the valid one
    by more than 20%, yet they show the token holder's identity, so they were accepted."""
    from pytest_prodready.checks.jwt import SIMILAR, similarity

    served = app("noverify_echo")
    result = run("jwt.bad_signature_rejected", target(served))
    assert_outcome(result, "failed", "accepted 8 of 8 forged tokens")
    valid = result.exchanges[-1]
    # The jwk/jku/x5u tokens carry a big header: their echo makes the body under 60% alike.
    assert sum(similarity(ex.body, valid.body) < SIMILAR for ex in result.exchanges[:8]) >= 3
    assert_masked(result, tokens.bad_signatures(served.token)[:3], served.token)


def test_alg_none_passes_on_a_correct_service(app: Callable[[str], JwtApp],
                                              target: Callable[..., Target]) -> None:
    result = run("jwt.alg_none_rejected", target(app("correct_hs")))
    assert_outcome(result, "passed", "refused all 8 alg-none tokens", "answered 401",
                   "the valid token was still accepted after")
    assert [ex.status for ex in result.exchanges].count(200) == 2  # the control, before and after


def test_200_with_an_error_body_in_the_same_layout_is_a_refusal(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    """The refusal page is over 80% like the real answer, but says "invalid token"."""
    from pytest_prodready.checks.jwt import SIMILAR, similarity

    served = app("soft_200")
    result = run("jwt.alg_none_rejected", target(served))
    assert_outcome(result, "passed", "refused all 8", "answered 200",
                   "8 answered 2xx, but with an error phrase")
    valid, forged = result.exchanges[0], result.exchanges[-2]
    assert similarity(valid.body, forged.body) >= SIMILAR and b"invalid token" in forged.body
    assert_outcome(run("jwt.bad_signature_rejected", target(served)), "passed")


def test_a_service_that_locks_out_on_attacks_cannot_pass(app: Callable[[str], JwtApp],
                                                         target: Callable[..., Target]) -> None:
    """After the forgeries the valid token is refused too: the refusals may be a lockout."""
    assert_outcome(run("jwt.alg_none_rejected", target(app("lockout"))), "error",
                   "after the attacks the valid token got 401", "lock out")


# -- jwt.bad_signature_rejected -------------------------------------------------------------
def test_bad_signature_fails_without_verification(app: Callable[[str], JwtApp],
                                                  target: Callable[..., Target]) -> None:
    served = app("noverify")
    result = run("jwt.bad_signature_rejected", target(served))
    assert_outcome(result, "failed", "payload tampered under the original signature")
    assert_masked(result, tokens.bad_signatures(served.token), served.token)


@pytest.mark.parametrize("kind", ["correct_hs", "correct_rs"])
def test_bad_signature_passes_on_correct_services(app: Callable[[str], JwtApp],
                                                  target: Callable[..., Target], kind: str) -> None:
    assert_outcome(run("jwt.bad_signature_rejected", target(app(kind))), "passed",
                   "refused all 8 badly signed tokens")


# -- jwt.expired_rejected -------------------------------------------------------------------
def test_expired_fails_when_expiry_is_not_checked(app: Callable[[str], JwtApp],
                                                  target: Callable[..., Target]) -> None:
    served = app("no_exp")
    t = target(served, expired=valid_token("no_exp", exp_in=-600))
    assert_outcome(run("jwt.expired_rejected", t), "failed", "accepted 1 of 1 forged tokens",
                   "auth.expired_token_env")


def test_expired_passes_when_a_genuinely_expired_token_is_refused(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    t = target(app("correct_hs"), expired=valid_token("correct_hs", exp_in=-600))
    assert_outcome(run("jwt.expired_rejected", t), "passed", "refused all 1 expired token(s)")


def test_expired_without_a_real_expired_token_says_what_it_can_conclude(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    """A forged expired copy: refused proves only the signature check; accepted is a failure."""
    assert_outcome(run("jwt.expired_rejected", target(app("correct_hs"))), "skipped",
                   "shows only that the signature is checked", "set auth.expired_token_env")
    assert_outcome(run("jwt.expired_rejected", target(app("noverify"))), "failed",
                   "neither expiry nor signature is checked")


def test_expired_with_a_cracked_secret_signs_real_expired_tokens(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    assert_outcome(run("jwt.expired_rejected", target(app("weak"))), "passed",
                   "signed with the real (weak) secret")


def test_expired_token_that_has_not_expired_cannot_judge(app: Callable[[str], JwtApp],
                                                         target: Callable[..., Target]) -> None:
    t = target(app("correct_hs"), expired=valid_token("correct_hs"))
    assert_outcome(run("jwt.expired_rejected", t), "error", "has not expired")


# -- jwt.weak_secret_rejected ---------------------------------------------------------------
def test_weak_secret_fails_offline_without_sending_anything(app: Callable[[str], JwtApp],
                                                            target: Callable[..., Target]) -> None:
    served = app("weak")
    before = len(served.seen)
    result = run("jwt.weak_secret_rejected", target(served))
    assert_outcome(result, "failed", "signed with a well-known weak secret", "nothing was sent",
                   f"entry {tokens.weak_secrets().index('secret') + 1} of the built-in")
    assert not result.exchanges and len(served.seen) == before
    assert "'secret'" not in result.message


def test_weak_secret_fails_when_weak_signed_probes_are_accepted(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    assert_outcome(run("jwt.weak_secret_rejected", target(app("noverify"))), "failed",
                   "signed with the weak secret #1")


def test_weak_secret_passes_on_a_strong_secret(app: Callable[[str], JwtApp],
                                               target: Callable[..., Target]) -> None:
    assert_outcome(run("jwt.weak_secret_rejected", target(app("correct_hs"))), "passed",
                   "refused all 10 tokens signed with the 10 commonest weak secrets")


def test_weak_secret_opt_in_list_is_tried_offline(app: Callable[[str], JwtApp], tmp_path: Path) -> None:
    served = app("correct_hs")
    from tests.targets.jwtapps import STRONG_SECRET

    listing = tmp_path / "big.list"
    listing.write_bytes(b"\r\n" + b"\r\n".join([b"aaaa", STRONG_SECRET.encode(), b"zzzz"]) + b"\r\n")
    settings = Settings(values={**DEFAULTS, "base_url": served.url, "protected": [ME],
                                "auth": {"token_env": "T"}, "jwt": {"weak_secrets_file": str(listing)}},
                        secrets={"auth.token_env": served.token}, sources={})
    with Target(settings) as t:
        assert_outcome(run("jwt.weak_secret_rejected", t), "failed", "of jwt.weak_secrets_file")


# -- jwt.alg_confusion_rejected -------------------------------------------------------------
@pytest.fixture(scope="module")
def pem_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("keys") / "public.pem"
    path.write_bytes(public_pem())
    return str(path)


def test_alg_confusion_fails_when_the_token_picks_the_algorithm(
        app: Callable[[str], JwtApp], target: Callable[..., Target], pem_file: str) -> None:
    served = app("alg_from_header")
    result = run("jwt.alg_confusion_rejected", target(served, public_key_file=pem_file))
    assert_outcome(result, "failed", "HS256 with the public key")
    assert_masked(result, tokens.alg_confusion(served.token, public_pem()), served.token)


@pytest.mark.parametrize("source", ["file", "jwks"])
def test_alg_confusion_passes_on_a_pinned_algorithm(app: Callable[[str], JwtApp],
                                                    target: Callable[..., Target], pem_file: str,
                                                    source: str) -> None:
    key = {"public_key_file": pem_file} if source == "file" else {"jwks_url": "/.well-known/jwks.json"}
    assert_outcome(run("jwt.alg_confusion_rejected", target(app("correct_rs"), **key)), "passed",
                   "HS256 tokens keyed with the public key")


def test_alg_confusion_from_jwks_fails_on_the_confused_service(
        app: Callable[[str], JwtApp], target: Callable[..., Target]) -> None:
    t = target(app("alg_from_header"), jwks_url="/.well-known/jwks.json")
    assert_outcome(run("jwt.alg_confusion_rejected", t), "failed", "accepted 1 of")


def test_alg_confusion_not_configured_or_hs_token_skips(app: Callable[[str], JwtApp],
                                                        target: Callable[..., Target],
                                                        pem_file: str) -> None:
    assert_outcome(run("jwt.alg_confusion_rejected", target(app("correct_rs"))), "skipped",
                   "not configured: set auth.public_key_file or auth.jwks_url")
    assert_outcome(run("jwt.alg_confusion_rejected", target(app("correct_hs"), public_key_file=pem_file)),
                   "skipped", "HS256-signed")


# -- the one-line QA helpers ----------------------------------------------------------------
def test_helpers_pass_on_correct_and_raise_on_the_defect(app: Callable[[str], JwtApp],
                                                        target: Callable[..., Target]) -> None:
    from pytest_prodready.assertions import assert_rejects_alg_none, assert_rejects_forged_tokens
    from pytest_prodready.exceptions import CheckFailure

    assert_rejects_alg_none(target(app("correct_hs")), "/api/me")
    assert_rejects_forged_tokens(target(app("correct_hs")), "GET /api/me")
    served = app("noverify")
    with pytest.raises(CheckFailure) as caught:
        assert_rejects_alg_none(target(served), "/api/me")
    assert "[jwt.alg_none_rejected]" in str(caught.value)
    assert all(f.token not in str(caught.value) for f in tokens.alg_none(served.token))
    with pytest.raises(CheckFailure, match="weak secret"):
        assert_rejects_forged_tokens(target(app("weak")), "/api/me")


# -- masking, end to end --------------------------------------------------------------------
def test_forged_tokens_are_masked_in_every_output_of_a_run(
        app: Callable[[str], JwtApp], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest --prodready run against the no-verify service, which echoes each token it
    takes in a response header: the terminal, JUnit XML and JSON report show failures, and
    neither the configured token nor any forged one (nor its signature)."""
    served = app("noverify")
    monkeypatch.setenv("PRODREADY_TEST_JWT", served.token)
    pytester.makefile(".toml", prodready=f'base_url = "{served.url}"\nprotected = ["/api/me"]\n'
                                         '[auth]\ntoken_env = "PRODREADY_TEST_JWT"\n')
    result = pytester.runpytest_subprocess("--prodready", "--prodready-only", "jwt", "-p", "no:cacheprovider",
                                           "-p", "no:xdist", "-v", "--junitxml=j.xml",
                                           "--prodready-report", "out.json", timeout=120)
    out = result.stdout.str() + result.stderr.str()
    assert "jwt.alg_none_rejected" in out and "FAILED" in out, out
    assert "X-Debug-Token: ****" in out
    written = "".join(p.read_text(errors="replace") for p in (pytester.path / "j.xml",
                                                              pytester.path / "out.json"))
    assert "accepted 8 of 8 forged tokens" in written
    forged = [*tokens.alg_none(served.token), tokens.tampered(served.token), tokens.foreign_key(served.token),
              tokens.empty_signature(served.token), *tokens.kid_injections(served.token),
              *tokens.weak_secret_signed(served.token, tokens.weak_secrets()[:10])]
    for text in (out, written):
        assert served.token not in text
        assert served.token.split(".")[2] not in text
        for item in forged:
            assert item.token not in text, item.name


def test_config_accepts_the_public_key_keys_and_refuses_both(tmp_path: Path) -> None:
    from pytest_prodready import family
    from pytest_prodready.config import Overrides, load_settings
    from pytest_prodready.exceptions import ConfigError

    base = 'base_url = "http://127.0.0.1:9"\nprotected = ["/api/me"]\n[auth]\ntoken_env = "T"\n'
    (tmp_path / "prodready.toml").write_text(base + 'jwks_url = "https://id.example.com/jwks.json"\n')
    settings = load_settings(tmp_path, Overrides(), environ={"T": "x"})
    with Target(settings) as t:
        assert "id.example.com" in t.allowed_hosts
    (tmp_path / "prodready.toml").write_text(base + 'jwks_url = "/jwks"\npublic_key_file = "k.pem"\n')
    with pytest.raises(ConfigError, match="not both"):
        family.validate(load_settings(tmp_path, Overrides(), environ={"T": "x"}))
    (tmp_path / "prodready.toml").write_text(base + 'jwks_url = "ftp://x"\n')
    with pytest.raises(ConfigError, match="jwks_url"):
        family.validate(load_settings(tmp_path, Overrides(), environ={"T": "x"}))


def test_a_public_key_that_cannot_be_had_cannot_judge(app: Callable[[str], JwtApp],
                                                      target: Callable[..., Target], tmp_path: Path) -> None:
    served = app("correct_rs")
    assert_outcome(run("jwt.alg_confusion_rejected", target(served, jwks_url="/api/me")), "error",
                   "auth.jwks_url /api/me answered 401, not a JWKS")
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert_outcome(run("jwt.alg_confusion_rejected", target(served, public_key_file=str(junk))), "error",
                   "the configured public key cannot be read")
    assert_outcome(run("jwt.alg_confusion_rejected",
                       target(served, public_key_file=str(tmp_path / "absent.pem"))), "error",
                   "cannot be read")



@pytest.mark.parametrize(("confused", "correct"), [("alg_from_header", "correct_rs"),
                                                   ("es_from_header", "correct_es")])
def test_alg_confusion_with_rsa_and_ec_keys(app: Callable[[str], JwtApp], target: Callable[..., Target],
                                            tmp_path: Path, confused: str, correct: str) -> None:
    """The key file as an operator would save it: the PEM without its trailing newline."""
    pem = tmp_path / "key.pem"
    pem.write_bytes(public_pem(confused).rstrip(b"\n"))
    assert_outcome(run("jwt.alg_confusion_rejected", target(app(confused), public_key_file=str(pem))),
                   "failed", "with trailing newline")
    pem.write_bytes(public_pem(correct))
    assert_outcome(run("jwt.alg_confusion_rejected", target(app(correct), public_key_file=str(pem))),
                   "passed")
