"""What a check is: its spec (CheckSpec, registered with @check), the Context its judge
sees, the Result it gives, and how one check runs on one subject (execute).

This is the library layer: no pytest here. The plugin turns Results into test outcomes;
scripts can call `run_check` directly. registry.py loads the families and looks checks up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge, CheckFailure, OffAllowlist, TargetError
from pytest_prodready.severity import Severity
from pytest_prodready.target import Probe, Target

if TYPE_CHECKING:
    from pytest_prodready.config import Settings

Mode = Literal["passive", "active"]

Outcome = Literal["passed", "failed", "skipped", "error"]
Subjects = Callable[["Settings"], Sequence[str]]
# A check's probes: a list, or a mapping name -> Probe that the judge reads back by name
# (ctx.exchange("valid")), prefetched once per run and never rebuilt inside the judge.
Probes = Callable[["Settings", str], "Sequence[Probe] | Mapping[str, Probe]"]
Judge = Callable[["Context"], None]


@dataclass(frozen=True)
class CheckSpec:
    """A built-in check and everything the suite, the docs and the scorecard know of it."""

    id: str
    title: str
    severity: Severity
    mode: Mode
    remediation: str
    judge: Judge
    needs: tuple[str, ...] = ()
    subjects: Subjects | None = None
    probes: Probes | None = None
    module: str = ""  # the family module that registered it

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]

    def subjects_for(self, settings: Settings) -> list[str]:
        return list(dict.fromkeys(self.subjects(settings))) if self.subjects else [""]

    def probes_for(self, settings: Settings, subject: str) -> list[Probe]:
        return list(self.named_probes(settings, subject).values())

    def named_probes(self, settings: Settings, subject: str) -> dict[str, Probe]:
        """The probes by name (a list's probes are named by position: '0', '1', ...)."""
        if not self.probes:
            return {}
        made = self.probes(settings, subject)
        if isinstance(made, Mapping):
            return dict(made)
        return {str(i): probe for i, probe in enumerate(made)}

    def missing_config(self, settings: Settings) -> list[str]:
        return [key for key in self.needs if not settings.get(key)]


REGISTRY: dict[str, CheckSpec] = {}


def _origin(judge: Judge) -> tuple[str, str]:
    return getattr(judge, "__module__", ""), getattr(judge, "__qualname__", "")


def check(
    id: str,
    *,
    title: str,
    severity: Severity,
    remediation: str,
    mode: Mode = "passive",
    needs: Sequence[str] = (),
    subjects: Subjects | None = None,
    probes: Probes | None = None,
) -> Callable[[Judge], Judge]:
    """Register a check. The decorated function judges one subject from a Context."""

    def register(judge: Judge) -> Judge:
        known = REGISTRY.get(id)
        # The same function registering again is a re-import of its family (pytester, importlib
        # reload); a different function taking a known id is a real clash.
        if known is not None and _origin(known.judge) != _origin(judge):
            raise ValueError(f"check id {id!r} is registered twice")
        if "." not in id:
            raise ValueError(f"check id {id!r} must be 'category.name'")
        REGISTRY[id] = CheckSpec(id=id, title=title, severity=severity, mode=mode,
                                 remediation=remediation, judge=judge, needs=tuple(needs),
                                 subjects=subjects, probes=probes,
                                 module=getattr(judge, "__module__", ""))
        return judge

    return register


# How many exchanges a failure message shows; reports keep them all.
RENDERED_EXCHANGES = 3


class Fact(Protocol):
    """Non-HTTP evidence: anything with a JSON-ready, masked `to_dict()` and a `render()`."""

    def to_dict(self) -> dict[str, Any]: ...

    def render(self) -> str: ...


class SkipCheck(Exception):
    """The check has nothing to judge here (not configured, or no such thing on the target)."""


@dataclass
class Result:
    check_id: str
    subject: str
    outcome: Outcome
    message: str
    severity: str
    remediation: str = ""
    exchanges: Sequence[Exchange] = ()
    # For a failure: the full masked text (message, fix, evidence) an assertion shows.
    detail: str = ""
    # Evidence that is not an HTTP exchange (a TLS handshake...), as objects with to_dict().
    facts: Sequence[Fact] = ()

    def evidence(self) -> list[dict[str, Any]]:
        return [ex.to_dict() for ex in self.exchanges] + [fact.to_dict() for fact in self.facts]


@dataclass
class Context:
    """What a judge works with: settings, the target, the subject, and its prefetched probes."""

    spec: CheckSpec
    target: Target
    subject: str
    exchanges: list[Exchange] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    message: str = ""
    # Exchanges a scan (responses()) could not use: while any is missing, no pass.
    missing: list[Exchange] = field(default_factory=list)
    # The prefetched exchanges by the names the check's probes gave them.
    named: dict[str, Exchange] = field(default_factory=dict)

    def exchange(self, name: str, *, rate_limit_is_answer: bool = False) -> Exchange:
        """The prefetched exchange of the probe this check named `name`.

        Like fetch(): a transport error or our own probes being rate limited raises
        CannotJudge instead of handing the judge a misleading response.
        """
        if name not in self.named:
            raise KeyError(f"{self.spec.id} has no probe named {name!r}; its probes: "
                           f"{', '.join(self.named) or 'none'}")
        return self._accept(self.named[name], rate_limit_is_answer)

    def add_fact(self, fact: Fact) -> None:
        """Record non-HTTP evidence (once) for the report."""
        if fact not in self.facts:
            self.facts.append(fact)

    @property
    def settings(self) -> Any:
        return self.target.settings

    def fetch(self, probe: Probe, *, rate_limit_is_answer: bool = False) -> Exchange:
        """An exchange (from the cache when already fetched), recorded as evidence.

        A transport error or our own probes being rate limited cannot be judged either way:
        it raises CannotJudge instead of handing the judge a misleading response.
        """
        exchange = self.target.fetch(probe)
        return self._accept(exchange, rate_limit_is_answer)

    def fetch_all(self, probes: Sequence[Probe]) -> list[Exchange]:
        return [self._accept(ex, False) for ex in self.target.fetch_many(probes)]

    def responses(self) -> list[Exchange]:
        """The prefetched exchanges that got a usable answer, for checks that judge many.

        Raises CannotJudge when none did: scanning nothing must not read as a pass.
        """
        return self._usable(self.exchanges)

    def answers(self, probes: Sequence[Probe]) -> list[Exchange]:
        """The exchanges of `probes` that got a usable answer, for a judge that fails when
        any one of them shows the defect (a served /.env among 25 paths, an echoed origin on
        the GET or on the preflight). An unanswered probe does not hide what the others
        show, and the judge still cannot pass without it (see responses()).

        Raises CannotJudge when none got an answer.
        """
        fetched = self.target.fetch_many(probes)
        for exchange in fetched:
            if exchange not in self.exchanges:
                self.exchanges.append(exchange)
        return self._usable(fetched)

    def _usable(self, exchanges: Sequence[Exchange]) -> list[Exchange]:
        usable = [ex for ex in exchanges if ex.status is not None and ex.status != 429]
        if exchanges and not usable:
            first = exchanges[0]
            raise CannotJudge(f"no probe got an answer ({first.request_line}: "
                              f"{first.error or 'rate limited'})")
        # A scan of part of what it meant to look at may still find a defect, but may not
        # pass: passed() refuses while probes are missing (rate limited, not sent...). An
        # answer whose body broke off is judged for what it shows, but counts as missing:
        # what it did not show may have been in the part that never came.
        self.missing += [ex for ex in exchanges
                         if (ex not in usable or ex.error) and ex not in self.missing]
        return usable

    def _accept(self, exchange: Exchange, rate_limit_is_answer: bool) -> Exchange:
        if exchange not in self.exchanges:
            self.exchanges.append(exchange)
        if exchange.status is None:
            raise TargetError(f"{exchange.request_line}: {exchange.error}")
        if exchange.status == 429 and not rate_limit_is_answer:
            raise CannotJudge(f"{exchange.request_line}: rate limited (429) even after backing "
                              "off; cannot judge. Lower max_concurrency or allow-list the checker.")
        return exchange

    def fail(self, message: str, *evidence: Exchange) -> NoReturn:
        """Raise the check's failure, showing `evidence` (default: every exchange seen)."""
        shown = list(evidence) or self.exchanges
        raise CheckFailure(message, shown, remediation=self.spec.remediation,
                           check_id=self.spec.id, rendered=render_failure(self.spec, message, shown))

    def passed(self, message: str, *, complete: bool = True) -> None:
        """The check passes. Refused while probes are missing, unless `complete=False`: a
        pass that one answer proves by itself (a version found on one of several paths)."""
        if self.missing and complete:
            first = self.missing[0]
            raise CannotJudge(
                f"only {len(self.exchanges) - len(self.missing)} of {len(self.exchanges)} probes got "
                f"an answer ({first.request_line}: {first.error or 'rate limited (429)'}); a pass "
                "on part of them would not be true")
        self.message = message

    def skip(self, reason: str) -> NoReturn:
        raise SkipCheck(reason)


def render_failure(spec: CheckSpec, message: str, exchanges: Sequence[Exchange]) -> str:
    masker = exchanges[0].masker if exchanges else None
    text = masker.text(message) if masker else message
    lines = [f"[{spec.id}] {text}", f"Fix: {spec.remediation}"]
    for exchange in list(exchanges)[:RENDERED_EXCHANGES]:
        lines += ["", exchange.render()]
    if len(exchanges) > RENDERED_EXCHANGES:
        lines.append(f"\n(+{len(exchanges) - RENDERED_EXCHANGES} more exchanges in the report)")
    return "\n".join(lines)


def execute(spec: CheckSpec, target: Target, subject: str) -> Result:
    """Run a check and return its Result; never raises for a verdict."""
    missing = spec.missing_config(target.settings)
    if missing:
        return Result(spec.id, subject, "skipped", f"not configured: set {', '.join(missing)}",
                      spec.severity, spec.remediation)
    ctx = Context(spec, target, subject)
    try:
        # Planned once per run (the same Probe objects the prefetch sent), handed over by
        # name: a judge reads ctx.exchange("name") instead of rebuilding its probes.
        named = target.planned(spec.id, subject, lambda: spec.named_probes(target.settings, subject))
        if named:
            # Prefetch without judging: a judge asks for the exchanges it needs (and gets
            # CannotJudge for a broken one) or scans the usable ones with ctx.responses().
            fetched = target.fetch_many(named.values())
            by_probe = dict(zip(dict.fromkeys(named.values()), fetched, strict=True))
            ctx.named = {name: by_probe[probe] for name, probe in named.items()}
            ctx.exchanges = list(fetched)
        spec.judge(ctx)
    except CheckFailure as failure:
        return Result(spec.id, subject, "failed", target.masker.text(failure.message), spec.severity,
                      spec.remediation, failure.exchanges or ctx.exchanges, detail=str(failure),
                      facts=ctx.facts)
    except SkipCheck as skip:
        return Result(spec.id, subject, "skipped", target.masker.text(str(skip)), spec.severity,
                      spec.remediation,
                      ctx.exchanges, facts=ctx.facts)
    except (CannotJudge, OffAllowlist) as exc:
        message = f"cannot judge: {target.masker.text(str(exc))}"
        return Result(spec.id, subject, "error", message, spec.severity, spec.remediation,
                      ctx.exchanges, detail=message, facts=ctx.facts)
    # Pass messages quote the target too (a Server header, a version): masked like failures.
    return Result(spec.id, subject, "passed", target.masker.text(ctx.message or spec.title), spec.severity,
                  spec.remediation, ctx.exchanges, facts=ctx.facts)


def run_check(check_id: str, target: Target, subject: str = "", **settings: Any) -> Result:
    """Run one built-in check by id, optionally with settings overridden for this call."""
    from pytest_prodready.registry import get_check

    spec = get_check(check_id)
    return execute(spec, target.scoped(**settings) if settings else target, subject)
