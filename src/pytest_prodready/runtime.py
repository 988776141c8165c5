"""Per-run state of the pytest layer, kept in config.stash (never module globals)."""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pytest_prodready.config import Settings
from pytest_prodready.exceptions import TargetUnreachable
from pytest_prodready.masking import Masker
from pytest_prodready.records import Policy
from pytest_prodready.runshare import RunShare
from pytest_prodready.target import Target

# A logger's filters only see records logged to that very logger, not its children's, so
# each logger of the HTTP stack that can print a URL or a header gets the filter.
HTTP_LOGGERS = ("urllib3", "urllib3.connectionpool", "urllib3.connection", "urllib3.response",
                "urllib3.poolmanager", "urllib3.util.retry", "requests", "pytest_prodready")


class MaskingFilter(logging.Filter):
    """Masks secrets in records of the HTTP libraries' loggers (urllib3 logs every URL)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.text(record.getMessage())
        record.args = ()
        return True


@dataclass
class Runtime:
    settings: Settings
    # The run folder shared with xdist workers (budget, once-only probes, breaker).
    share: RunShare = field(default_factory=RunShare)
    _target: Target | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _log_filter: MaskingFilter | None = None
    _previous_factory: Any = None
    # Rendered exchange -> the node id whose failure showed it first (the terminal shows a
    # shared exchange once per run).
    shown_exchanges: dict[str, str] = field(default_factory=dict)
    # Why the run stopped before the first check (the preflight found the target down), for
    # `prodready check` to word its exit; None while it runs.
    stopped: TargetUnreachable | None = None

    def target(self) -> Target:
        with self._lock:
            if self._target is None:
                self._target = Target(self.settings, share=self.share)
                self._log_filter = MaskingFilter(self._target.masker)
                for name in HTTP_LOGGERS:
                    logging.getLogger(name).addFilter(self._log_filter)
                self._mask_every_log_record(self._target.masker)
            return self._target

    def _mask_every_log_record(self, masker: Masker) -> None:
        """Any logger of the run (a user's own test logging a token, shown live with
        log_cli): its records are masked where they are made, before any handler formats
        them. Restored by close()."""
        previous = logging.getLogRecordFactory()

        def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a record whose args do not format: leave it to logging
                return record
            record.msg, record.args = masker.text(message), ()
            return record

        self._previous_factory = previous
        logging.setLogRecordFactory(masked_record)

    def masker(self) -> Masker:
        """The run's masker: configured secrets, and those discovered in responses so far."""
        return self.target().masker

    def cancel(self) -> None:
        if self._target is not None:
            self._target.cancel()

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
        self.share.close()
        if self._log_filter is not None:
            for name in HTTP_LOGGERS:
                logging.getLogger(name).removeFilter(self._log_filter)
        if self._previous_factory is not None:
            logging.setLogRecordFactory(self._previous_factory)
            self._previous_factory = None

    @functools.cached_property
    def policy(self) -> Policy:
        """Severity overrides and waivers of this run (records.Policy), built once."""
        return Policy.from_settings(self.settings)
