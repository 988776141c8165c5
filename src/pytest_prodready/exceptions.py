"""The exceptions the plugin raises, each carrying what a user needs to act on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_prodready.evidence import Exchange


class ProdreadyError(Exception):
    """Base of every error the plugin raises on purpose."""


class ConfigError(ProdreadyError):
    """The configuration is wrong. Raised before any request is sent."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        # Every problem found, (key path, problem); key/problem are the first of them.
        self.problems: list[tuple[str, str]] = [(key, problem)]
        super().__init__(f"prodready config: {key}: {problem}" if key else f"prodready: {problem}")


class CannotJudge(ProdreadyError):
    """The check could not reach a verdict (the target errored, timed out, rate limited us).

    Reported as an error, never as a pass or a fail: a network hiccup must not become a
    false verdict.
    """


class TargetError(CannotJudge):
    """A request could not be completed: refused, timed out, reset, malformed answer."""


class TargetUnreachable(TargetError):
    """The target does not answer at all; the run stops with one message.

    `untrusted`: OpenSSL's reason when nothing was sent because every request carried a
    credential and the certificate does not verify (the target may well be up)."""

    def __init__(self, message: str, *, untrusted: str | None = None) -> None:
        super().__init__(message)
        self.untrusted = untrusted


class BudgetExceeded(ProdreadyError):
    """The run reached its hard request budget."""


class OffAllowlist(ProdreadyError):
    """A request to a host outside the allowlist was refused before it was sent."""


class CheckFailure(AssertionError):
    """A check saw the defect. The message renders from the evidence, already masked."""

    def __init__(
        self,
        message: str,
        exchanges: Sequence[Exchange] = (),
        *,
        remediation: str = "",
        check_id: str = "",
        rendered: str = "",
    ) -> None:
        self.message = message
        self.exchanges = tuple(exchanges)
        self.remediation = remediation
        self.check_id = check_id
        super().__init__(rendered or message)
