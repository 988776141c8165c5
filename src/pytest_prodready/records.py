"""The verdict of one check on one subject, decided once, as a typed record.

`checking.execute` says what the check saw (a Result: passed, failed, skipped, error);
`decide` applies the run's policy (severity overrides, waivers and their expiry) and gives
the Record that everything downstream reads: the pytest layer maps it to an outcome, the
scorecard is built from records (so it can be computed without pytest), reports serialise
them. No pytest here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pytest_prodready.severity import SEVERITIES, Severity

if TYPE_CHECKING:
    from pytest_prodready.checking import CheckSpec, Result
    from pytest_prodready.config import Settings

RecordOutcome = Literal["passed", "failed", "error", "skipped", "waived"]


@dataclass(frozen=True)
class Waiver:
    reason: str
    expires: str | None
    active: bool


@dataclass(frozen=True)
class Record:
    """One check on one subject, as the scorecard and the reports know it."""

    id: str
    nodeid: str
    category: str
    severity: Severity
    outcome: RecordOutcome
    message: str
    remediation: str = ""
    subject: str = ""
    waiver: Waiver | None = None
    duration_ms: float = 0.0
    evidence: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    # For a failure or an error: the full masked text (message, fix, evidence) to show.
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: what travels through xdist and lands in the JSON report."""
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        data.pop("detail")
        return data


@dataclass(frozen=True)
class Policy:
    """The run's rules over verdicts: severity overrides and waivers (from the config)."""

    severity_overrides: Mapping[str, str] = field(default_factory=dict)
    waivers: Sequence[Mapping[str, Any]] = ()
    today: dt.date | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(dict(settings.get("severity", {}) or {}), list(settings.get("waivers", []) or []))

    def severity_of(self, check_id: str, default: str) -> Severity:
        value = self.severity_overrides.get(check_id, default)
        return value if value in SEVERITIES else "high"

    def waiver_for(self, check_id: str, subject: str) -> Waiver | None:
        """The waiver matching 'id' or 'id[subject]', with whether it is still in force."""
        names = {check_id, f"{check_id}[{subject}]"}
        today = self.today or dt.date.today()
        for waiver in self.waivers:
            if waiver["id"] in names:
                expires = waiver.get("expires")
                active = expires is None or expires >= today
                return Waiver(str(waiver["reason"]), str(expires) if expires else None, active)
        return None


def decide(spec: CheckSpec, result: Result, policy: Policy, *, nodeid: str, subject: str,
           shown_subject: str | None = None) -> Record:
    """The Record of a check's Result under the run's policy.

    A failure or an error under an active waiver is 'waived' (reported, not failing); under
    an expired one it stays what it was, and its detail says the waiver expired.
    """
    severity = policy.severity_of(spec.id, spec.severity)
    outcome: RecordOutcome = result.outcome
    waiver = policy.waiver_for(spec.id, subject) if outcome in ("failed", "error") else None
    detail = result.detail
    if waiver is not None and waiver.active:
        outcome = "waived"
    elif waiver is not None:
        detail = (f"the waiver for {spec.id} expired on {waiver.expires}; renew it or fix the "
                  f"finding\n{detail}")
    return Record(id=spec.id, nodeid=nodeid, category=spec.category, severity=severity,
                  outcome=outcome, message=result.message, remediation=spec.remediation,
                  subject=subject if shown_subject is None else shown_subject, waiver=waiver,
                  evidence=tuple(result.evidence()), detail=detail)


def scorecard_of(records: Sequence[Record | Mapping[str, Any]], *, target: str, fail_on: str = "low",
                 profile: str | None = None) -> Any:
    """A Scorecard from records, without pytest (e.g. for a script that ran run_check)."""
    from pytest_prodready.report.scorecard import Scorecard

    dicts = [r.to_dict() if isinstance(r, Record) else dict(r) for r in records]
    return Scorecard(target=target, fail_on=fail_on, records=dicts, profile=profile)
