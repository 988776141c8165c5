"""webhook.*: a webhook endpoint verifies its signature, refuses forgeries and replays.

With the shared secret (from the env var named by `secret_env`) the plugin sends what an
attacker would and what the real provider would, per configured webhook:

- no signature at all, and an empty signature header (`webhook.unsigned_rejected`);
- a signature made with the wrong secret, and a tampered body carrying the signature of
  the original body (`webhook.bad_signature_rejected`);
- a correct signature over a timestamp outside the tolerance (`webhook.replay_rejected`);
- a correctly signed request, the positive control (`webhook.valid_accepted`).

Safety: these POSTs are requests a correct target must refuse (passive mode allows
them), except the positive control, which a correct endpoint accepts and processes. It
carries a harmless event by default (GitHub's `ping`, Slack's `url_verification`, a
`prodready.ping` event elsewhere) and is sent once per run; set `payload` or
`payload_file` to an event your endpoint ignores safely.

Verdicts by status class, configurable with `accepted` / `rejected`: accepted = 2xx,
rejected = 4xx. A 5xx is neither: "the endpoint errored" is a failure, never a pass. A
refusal only proves something when the same endpoint accepts a correctly signed request,
so every refusal check first needs the positive control to be accepted; when it is not,
they cannot judge (and `webhook.valid_accepted` says why).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import string
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge, ConfigError
from pytest_prodready.family import Family
from pytest_prodready.masking import Masker
from pytest_prodready.signing import (
    Signature,
    Signer,
    StandardSigner,
    signer_from_config,
    standard_key,
)
from pytest_prodready.target import Probe

DEFAULT_TOLERANCE_S = 300  # Stripe's, Slack's and Standard Webhooks' own default: 5 minutes
MAX_PAYLOAD_BYTES = 1024 * 1024
# The secrets a forger would guess with: fixed, so the probes are cache-stable.
WRONG_SECRET = "prodready-not-the-webhook-secret-5f0c2e9a"
WRONG_STANDARD_SECRET = "whsec_" + base64.b64encode(b"prodready-not-the-webhook-secret!").decode()
NAMESPACE = uuid.UUID("6f1c0b8e-2d7a-4f53-9a61-0c3e8f5b2d14")  # for GitHub delivery ids

Verdict = Literal["accepted", "rejected", "errored", "other"]


# -- one timestamp per run ----------------------------------------------------------------
# The registry asks for a check's probes with the run's Settings only (once to prefetch,
# again when judging), so "now" must be the same both times or the cache would miss and
# the requests go out twice. It is fixed per Settings object, i.e. per run (a helper call
# or a scoped target has its own Settings, so its own clock), and forgotten with it.
_CLOCKS: dict[int, tuple[weakref.ref[Settings], int]] = {}
_CLOCKS_LOCK = threading.Lock()


def run_timestamp(settings: Settings) -> int:
    """The run's 'now' for signing (unix seconds), fixed at first use for these Settings."""
    key = id(settings)
    with _CLOCKS_LOCK:
        entry = _CLOCKS.get(key)
        if entry is not None and entry[0]() is settings:
            return entry[1]
        now = int(time.time())

        def forget(ref: weakref.ref[Settings], key: int = key) -> None:
            # No lock: the callback may run inside a locked section of this very thread.
            if _CLOCKS.get(key, (None, 0))[0] is ref:
                _CLOCKS.pop(key, None)

        _CLOCKS[key] = (weakref.ref(settings, forget), now)
        return now


# -- a configured webhook -----------------------------------------------------------------
@dataclass(frozen=True)
class Hook:
    """One `[webhooks.NAME]` table, checked and resolved (signer, secret, payload)."""

    name: str
    path: str
    scheme: str
    signer: Signer = field(compare=False)  # compared by what it signs: scheme and table
    secret: str = field(repr=False)
    secret_env: str
    tolerance_s: int
    accepted: frozenset[int] | None
    rejected: frozenset[int] | None
    template: str | bytes | None  # None: the scheme's default event

    @property
    def where(self) -> str:
        return f"POST {self.path}"

    @property
    def label(self) -> str:
        return f"webhook {self.name} ({self.where})"

    def verdict(self, status: int | None) -> Verdict:
        code = status or 0
        accepted = code in self.accepted if self.accepted is not None else 200 <= code < 300
        rejected = code in self.rejected if self.rejected is not None else 400 <= code < 500
        if accepted:
            return "accepted"
        if rejected:
            return "rejected"
        return "errored" if code >= 500 else "other"

    def expected(self, what: Literal["accepted", "rejected"]) -> str:
        chosen = self.accepted if what == "accepted" else self.rejected
        if chosen is None:
            return "2xx" if what == "accepted" else "4xx"
        return "/".join(str(c) for c in sorted(chosen))

    @property
    def rate_limit_is_answer(self) -> bool:
        """429 is judged only when the config names it; otherwise it cannot be judged."""
        return 429 in (self.accepted or ()) or 429 in (self.rejected or ())


def webhook_names(settings: Settings) -> list[str]:
    return list((settings.get("webhooks") or {}).keys())


def _table(settings: Settings, name: str) -> Mapping[str, Any]:
    table = (settings.get("webhooks") or {}).get(name)
    if not isinstance(table, Mapping):
        raise ConfigError(f"webhooks.{name}", "no such webhook in the config")
    return table


def load_hook(settings: Settings, name: str) -> Hook | None:
    """The webhook `name` from the settings; None when its secret is not available.

    Raises ConfigError naming the key when the table asks for something impossible.
    """
    table = _table(settings, name)
    key = f"webhooks.{name}"
    secret = settings.secret(f"{key}.secret_env")
    if not secret:
        return None
    try:
        signer = signer_from_config(table)
    except ValueError as exc:
        problem = str(exc)
        sub, sep, rest = problem.partition(": ")
        if sep and sub in table:
            raise ConfigError(f"{key}.{sub}", rest) from None
        raise ConfigError(f"{key}.scheme", problem) from None
    if isinstance(signer, StandardSigner):
        try:
            standard_key(secret)
        except ValueError:
            raise ConfigError(f"{key}.secret_env", f"the value of {table.get('secret_env')} is not a "
                              "Standard Webhooks secret ('whsec_' followed by base64)") from None
    accepted = frozenset(table["accepted"]) if table.get("accepted") else None
    rejected = frozenset(table["rejected"]) if table.get("rejected") else None
    if accepted and rejected and accepted & rejected:
        raise ConfigError(f"{key}.rejected", f"{sorted(accepted & rejected)} is both accepted and "
                                             "rejected; a status can only mean one")
    return Hook(name=name, path=str(table["path"]), scheme=str(table["scheme"]), signer=signer,
                secret=secret, secret_env=str(table.get("secret_env", "")),
                tolerance_s=int(table.get("tolerance_s", DEFAULT_TOLERANCE_S)),
                accepted=accepted, rejected=rejected, template=_template(settings, key, table))


def _template(settings: Settings, key: str, table: Mapping[str, Any]) -> str | bytes | None:
    inline, file = table.get("payload"), table.get("payload_file")
    if inline is not None and file is not None:
        raise ConfigError(f"{key}.payload_file", "set payload or payload_file, not both")
    if inline is not None:
        return str(inline)
    if file is None:
        return None
    base = settings.config_file.parent if settings.config_file else Path.cwd()
    path = Path(str(file)).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        size = path.stat().st_size
        if size > MAX_PAYLOAD_BYTES:
            raise ConfigError(f"{key}.payload_file", f"{path} is {size} bytes; keep a test payload "
                                                     f"under {MAX_PAYLOAD_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{key}.payload_file", f"cannot read {path} ({exc.strerror or exc}); "
                                                 "paths are relative to the config file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # sent as is, without placeholders


# -- payloads -----------------------------------------------------------------------------
def default_payload(scheme: str, timestamp: int, ident: str) -> bytes:
    """A small, harmless event in the shape the scheme's provider sends."""
    if scheme == "stripe":
        event: dict[str, Any] = {"id": f"evt_{ident}", "object": "event", "type": "prodready.ping",
                                 "created": timestamp, "livemode": False, "data": {"object": {}}}
    elif scheme == "github":
        event = {"zen": "Keep it logically awesome.", "hook_id": 0, "prodready": ident}
    elif scheme == "slack":
        event = {"type": "url_verification", "token": "prodready", "challenge": ident}
    elif scheme == "standard":
        when = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat().replace("+00:00", "Z")
        event = {"type": "prodready.ping", "timestamp": when, "data": {"id": ident}}
    else:
        event = {"id": ident, "type": "prodready.ping", "created": timestamp}
    return json.dumps(event, separators=(",", ":")).encode()


def render_payload(hook: Hook, timestamp: int, ident: str) -> bytes:
    """The body of one probe: the template with ${timestamp} and ${id} filled in."""
    if hook.template is None:
        return default_payload(hook.scheme, timestamp, ident)
    if isinstance(hook.template, bytes):
        return hook.template
    text = string.Template(hook.template).safe_substitute(timestamp=str(timestamp), id=ident)
    return text.encode("utf-8")


def content_type(body: bytes) -> str:
    try:
        json.loads(body)
        return "application/json"
    except (ValueError, UnicodeDecodeError):
        pass
    if re.fullmatch(rb"[^\s=&]+=[^\s&]*(&[^\s=&]+=[^\s&]*)*", body.strip()):
        return "application/x-www-form-urlencoded"
    return "text/plain; charset=utf-8"


def tamper(body: bytes) -> bytes:
    """The body an attacker would send under a captured signature: one field changed."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        return json.dumps({**data, "prodready_tampered": True}, separators=(",", ":")).encode()
    if content_type(body) == "application/x-www-form-urlencoded":
        return body + b"&prodready_tampered=1"
    return body + b"\nprodready-tampered"


# -- the probes of one webhook --------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    hook: Hook
    valid: Probe
    unsigned: Probe
    empty: Probe
    wrong_secret: Probe
    tampered: Probe
    replay: Probe | None
    stale_by_s: int
    secret_values: tuple[str, ...] = field(repr=False)  # every signature made, for the masker

    def __repr__(self) -> str:
        # The probes carry signatures in their headers: never in a repr (pytest -l, debuggers).
        return f"<Plan {self.hook.label}>"


def _ident(timestamp: int, kind: str) -> str:
    # No dots: Standard Webhooks signs '<id>.<timestamp>.<body>'. Distinct per probe, so a
    # receiver that dedupes on the id cannot mistake one probe for another.
    return f"msg_prodready_{timestamp}_{kind}"


def _probe(hook: Hook, headers: Mapping[str, str], body: bytes, ident: str, *,
           once: bool = False) -> Probe:
    sent = {"Content-Type": content_type(body)}
    if hook.scheme == "github":
        # What GitHub sends beside the signature; 'ping' is the event every receiver handles.
        sent |= {"X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid5(NAMESPACE, ident))}
    return Probe.of("POST", hook.path, {**sent, **headers}, body, follow_redirects=False, once=once)


def plan_for(settings: Settings, name: str) -> Plan | None:
    """Every probe of webhook `name` for this run (None when its secret is not available)."""
    hook = load_hook(settings, name)
    if hook is None:
        return None
    now = run_timestamp(settings)
    signatures: list[Signature] = []

    def signed(kind: str, timestamp: int, secret: str) -> tuple[bytes, Signature, str]:
        ident = _ident(timestamp, kind)
        body = render_payload(hook, timestamp, ident)
        signature = hook.signer.sign(body, secret, timestamp, ident)
        signatures.append(signature)
        return body, signature, ident

    body, sig, ident = signed("valid", now, hook.secret)
    # The one request a correct receiver ACCEPTS: delivered at most once per run, never retried.
    valid = _probe(hook, sig.headers, body, ident, once=True)
    body, sig, ident = signed("unsigned", now, hook.secret)
    unsigned = _probe(hook, sig.unsigned(), body, ident)
    empty = _probe(hook, sig.emptied(), body, ident)
    wrong = WRONG_STANDARD_SECRET if isinstance(hook.signer, StandardSigner) else WRONG_SECRET
    body, sig, ident = signed("wrongsecret", now, wrong)
    wrong_secret = _probe(hook, sig.headers, body, ident)
    body, sig, ident = signed("tampered", now, hook.secret)
    tampered = _probe(hook, sig.headers, tamper(body), ident)
    # Twice the tolerance and five minutes more: a receiver with a clock a little off, or a
    # window a little wider than configured, still must refuse it.
    stale_by = 2 * hook.tolerance_s + 300
    replay = None
    if hook.signer.has_timestamp and hook.tolerance_s > 0:
        body, sig, ident = signed("replay", now - stale_by, hook.secret)
        replay = _probe(hook, sig.headers, body, ident)
    values = [v for s in signatures for v in (*s.values, *s.digests) if v]
    if isinstance(hook.signer, StandardSigner):
        values.append(hook.secret.removeprefix(StandardSigner.secret_prefix))
    return Plan(hook, valid, unsigned, empty, wrong_secret, tampered, replay, stale_by,
                tuple(dict.fromkeys(values)))


def protect(masker: Masker, plan: Plan) -> None:
    """Mask this webhook's signature headers by name and its signatures by value.

    Evidence is masked when rendered, so registering here, before any verdict, covers every
    output of the exchanges (terminal, JUnit XML, reports), including prefetched ones.
    """
    for header in plan.hook.signer.signature_headers:
        masker.add_secret_header(header)
    for value in plan.secret_values:
        masker.add(value)
    masker.add(plan.hook.secret)


def _plan(settings: Settings, name: str) -> Plan | None:
    try:
        return plan_for(settings, name)
    except ConfigError:
        return None  # the judge reports it; prefetching must never raise


def _plan_for_judge(ctx: Context) -> Plan:
    try:
        plan = plan_for(ctx.settings, ctx.subject)
    except ConfigError as exc:
        raise CannotJudge(str(exc)) from None
    if plan is None:
        env = _table(ctx.settings, ctx.subject).get("secret_env", "")
        ctx.skip(f"not configured: the secret of webhooks.{ctx.subject} (env var {env}, named by "
                 f"webhooks.{ctx.subject}.secret_env) is not available")
    protect(ctx.target.masker, plan)
    return plan


def _valid_probes(settings: Settings, name: str) -> list[Probe]:
    plan = _plan(settings, name)
    return [plan.valid] if plan else []


def _unsigned_probes(settings: Settings, name: str) -> list[Probe]:
    plan = _plan(settings, name)
    return [plan.valid, plan.unsigned, plan.empty] if plan else []


def _bad_signature_probes(settings: Settings, name: str) -> list[Probe]:
    plan = _plan(settings, name)
    return [plan.valid, plan.wrong_secret, plan.tampered] if plan else []


def _replay_probes(settings: Settings, name: str) -> list[Probe]:
    plan = _plan(settings, name)
    return [plan.valid, plan.replay] if plan and plan.replay else []


# -- judging --------------------------------------------------------------------------------
def _control(ctx: Context, plan: Plan) -> Exchange:
    """The positive control: a refusal proves nothing from an endpoint that refuses everything."""
    hook = plan.hook
    ex = ctx.fetch(plan.valid, rate_limit_is_answer=hook.rate_limit_is_answer)
    verdict = hook.verdict(ex.status)
    if verdict != "accepted":
        raise CannotJudge(
            f"{hook.label}: a correctly signed request got {ex.status}, not "
            f"{hook.expected('accepted')}, so a refusal here would prove nothing; "
            "see webhook.valid_accepted")
    return ex


def _refused(ctx: Context, plan: Plan, attacks: Sequence[tuple[str, Probe]]) -> None:
    hook = plan.hook
    _control(ctx, plan)
    problems: list[str] = []
    evidence: list[Exchange] = []
    for what, probe in attacks:
        ex = ctx.fetch(probe, rate_limit_is_answer=hook.rate_limit_is_answer)
        verdict = hook.verdict(ex.status)
        if verdict == "rejected":
            continue
        expected = hook.expected("rejected")
        if verdict == "accepted":
            problems.append(f"{what} was accepted ({ex.status}; expected {expected})")
        elif verdict == "errored":
            problems.append(f"the endpoint errored ({ex.status}) on {what} instead of refusing it "
                            f"(expected {expected})")
        else:
            problems.append(f"{what} got {ex.status}, which is not a refusal (expected {expected})")
        evidence.append(ex)
    if problems:
        ctx.fail(f"{hook.label}: " + "; ".join(problems), *evidence)


@check("webhook.unsigned_rejected", title="a webhook request without a signature is refused",
       severity="critical", needs=("webhooks",), subjects=webhook_names, probes=_unsigned_probes,
       remediation="Verify the signature on every webhook request before acting on it; a missing "
                   "or empty signature header must get a 4xx (400/401), never a 2xx.")
def unsigned_rejected(ctx: Context) -> None:
    plan = _plan_for_judge(ctx)
    headers = "/".join(plan.hook.signer.signature_headers)
    _refused(ctx, plan, [(f"a request without {headers}", plan.unsigned),
                         (f"a request with an empty {headers}", plan.empty)])
    ctx.passed(f"{plan.hook.label} refuses requests without a signature")


@check("webhook.bad_signature_rejected", title="a wrong signature or a tampered body is refused",
       severity="critical", needs=("webhooks",), subjects=webhook_names, probes=_bad_signature_probes,
       remediation="Recompute the HMAC over the raw request body with the shared secret and "
                   "compare it in constant time (hmac.compare_digest); refuse any mismatch with a 4xx.")
def bad_signature_rejected(ctx: Context) -> None:
    plan = _plan_for_judge(ctx)
    _refused(ctx, plan, [("a request signed with the wrong secret", plan.wrong_secret),
                         ("a tampered body under the original's signature", plan.tampered)])
    ctx.passed(f"{plan.hook.label} refuses wrong signatures and tampered bodies")


@check("webhook.replay_rejected",
       title="a correctly signed request with a timestamp outside tolerance is refused",
       severity="high", needs=("webhooks",), subjects=webhook_names, probes=_replay_probes,
       remediation="Check the signed timestamp against your clock and refuse requests older than "
                   "the tolerance (5 minutes is the providers' default) with a 4xx.")
def replay_rejected(ctx: Context) -> None:
    plan = _plan_for_judge(ctx)
    hook = plan.hook
    if plan.replay is None:
        if not hook.signer.has_timestamp:
            what = ("GitHub signs no timestamp, so a replay cannot be refused by its age (dedupe "
                    "deliveries on X-GitHub-Delivery instead)") if hook.scheme == "github" else (
                f"webhooks.{hook.name} has no timestamp_header: its signature covers no timestamp, "
                "so a replay cannot be refused by its age")
            ctx.skip(what)
        ctx.skip(f"webhooks.{hook.name}.tolerance_s is 0: no replay window is configured to test")
    _refused(ctx, plan, [(f"a correctly signed request {plan.stale_by_s}s old (tolerance "
                          f"{hook.tolerance_s}s)", plan.replay)])
    ctx.passed(f"{hook.label} refuses a correctly signed request {plan.stale_by_s}s old")


@check("webhook.valid_accepted", title="a correctly signed webhook request is accepted (positive control)",
       severity="high", needs=("webhooks",), subjects=webhook_names, probes=_valid_probes,
       remediation="Verify against the raw request body with the secret the provider gave you and "
                   "answer 2xx to correctly signed requests; check the webhook's path, secret_env "
                   "and payload in the config.")
def valid_accepted(ctx: Context) -> None:
    # The one request of this family a correct endpoint accepts and processes: a harmless
    # default event (or the configured payload), sent once per run and shared by all four.
    plan = _plan_for_judge(ctx)
    hook = plan.hook
    ex = ctx.fetch(plan.valid, rate_limit_is_answer=hook.rate_limit_is_answer)
    verdict = hook.verdict(ex.status)
    if verdict == "accepted":
        ctx.passed(f"{hook.label} accepts a correctly signed request ({ex.status})")
        return
    if verdict == "errored":
        ctx.fail(f"{hook.label}: the endpoint errored ({ex.status}) on a correctly signed request "
                 f"(expected {hook.expected('accepted')})", ex)
    if ex.status in (404, 405):
        ctx.fail(f"{hook.label}: a correctly signed request got {ex.status}: check the path "
                 f"(webhooks.{hook.name}.path)", ex)
    if verdict == "rejected":
        ctx.fail(f"{hook.label}: a correctly signed request was refused ({ex.status}; expected "
                 f"{hook.expected('accepted')}): either {hook.secret_env} does not hold the secret "
                 "the endpoint verifies with, or it does not take this payload (set payload or "
                 "payload_file to an event it handles)", ex)
    ctx.fail(f"{hook.label}: a correctly signed request got {ex.status} (expected "
             f"{hook.expected('accepted')})", ex)


def _validate(settings: Settings) -> None:
    """Each webhook table against its scheme's rules, before any request."""
    for name in settings.get("webhooks") or {}:
        load_hook(settings, name)


FAMILY = Family(
    name="webhooks",
    config={"webhooks": schema.TableOf(schema.Table({
        "path": schema.path,
        "scheme": schema.one_of("stripe", "github", "slack", "standard", "hmac-sha1", "hmac-sha256",
                                "hmac-sha512"),
        "header": schema.header_name,
        "secret_env": schema.env_name,
        "tolerance_s": schema.integer(0, 86_400, "one day; providers use five minutes"),
        "payload": schema.bounded_text(schema.MAX_PAYLOAD),
        "payload_file": schema.file_path,
        "encoding": schema.one_of("hex", "base64"),
        "prefix": schema.header_value,
        "timestamp_header": schema.header_name,
        "signed_content": schema.bounded_text(4096),
        "accepted": schema.list_of(schema.integer(100, 599), max_items=500),
        "rejected": schema.list_of(schema.integer(100, 599), max_items=500),
    }, required=("path", "scheme", "secret_env")))},
    validate=_validate,
    # The providers' signature headers: masked by name, never sent across origins.
    secret_headers=frozenset({"x-hub-signature", "x-hub-signature-256", "stripe-signature",
                              "x-slack-signature", "webhook-signature", "x-signature",
                              "x-webhook-signature"}),
)
