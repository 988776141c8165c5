"""State that belongs to the whole run, shared by every thread and every xdist worker.

pytest-xdist runs one process per worker, so anything promised "per run" needs a mechanism
the processes share. The controller creates a run folder and hands its path to the
workers (`workerinput`); in it live:

- the request budget: one counter in a file, incremented under `flock`, so
  `request_budget = 5` is five requests whether the run has one worker or four;
- requests sent at most once per run (a correctly signed webhook a correct target
  accepts): the first process to claim the probe's key sends it and publishes the
  exchange; the others wait for it and read it;
- the circuit breaker: when one process finds the target down, the others stop too.

Without a run folder (a script, `Target.from_url`) the same objects work in memory.
Where `fcntl` is missing (Windows) the budget is per process, as documented.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_prodready.exceptions import BudgetExceeded

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_COUNT = struct.Struct("<q")


def _exceeded(limit: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"request budget of {limit} requests reached (request_budget); raise it in the "
        "config, or narrow the run with --prodready-only or -k")


class Budget:
    """A hard cap on requests (and other connections) per run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> int:
        return self._spent

    def charge(self, count: int = 1) -> None:
        """Take `count` requests from the budget, all or none (a load run reserves its
        whole size before it starts)."""
        with self._lock:
            if self._spent + count > self.limit:
                raise _exceeded(self.limit)
            self._spent += count


class SharedBudget(Budget):
    """The same cap, counted in a file that every process of the run increments under a lock."""

    def __init__(self, limit: int, path: Path) -> None:
        super().__init__(limit)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def _locked(self, change: Callable[[int], int]) -> int:
        # flock excludes processes, not the threads of one process sharing the descriptor:
        # the thread lock comes first.
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(self._fd, _COUNT.size, 0)
                count = _COUNT.unpack(raw)[0] if len(raw) == _COUNT.size else 0
                new = change(count)
                if new != count:
                    os.pwrite(self._fd, _COUNT.pack(new), 0)
                return new
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    @property
    def spent(self) -> int:
        return self._locked(lambda count: count)

    def charge(self, count: int = 1) -> None:
        def take(spent: int) -> int:
            if spent + count > self.limit:
                raise _exceeded(self.limit)
            return spent + count

        self._locked(take)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class RunShare:
    """The run folder (or nothing, for a single process) and what lives in it."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._once: dict[str, Any] = {}
        self._once_lock = threading.Lock()
        self._budgets: list[SharedBudget] = []
        self._tripped: str | None = None

    def budget(self, limit: int) -> Budget:
        if self.folder is None or fcntl is None:
            return Budget(limit)
        shared = SharedBudget(limit, self.folder / "budget")
        self._budgets.append(shared)
        return shared

    # -- at most once per run --------------------------------------------------------------
    def once(self, key: bytes, send: Callable[[], Any], wait_s: float) -> Any:
        """The result of `send()`, run by exactly one thread of one process of the run.

        The others wait (up to `wait_s`) for the published result. A result is any
        picklable value; the caller decides what is safe to publish (masked evidence only).
        """
        name = hashlib.sha256(key).hexdigest()[:32]
        with self._once_lock:
            if name in self._once:
                return self._once[name]
            if self.folder is None:
                value = self._once[name] = send()
                return value
            claim = self.folder / f"once-{name}"
            result = self.folder / f"once-{name}.result"
            try:
                os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                owner = True
            except FileExistsError:
                owner = False
            if owner:
                value = send()
                tmp = result.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(pickle.dumps(value))
                tmp.replace(result)  # atomic: a reader sees all of it or nothing
            else:
                value = self._wait_for(result, wait_s)
            self._once[name] = value
            return value

    @staticmethod
    def _wait_for(result: Path, wait_s: float) -> Any:
        until = time.monotonic() + wait_s
        while time.monotonic() < until:
            if result.exists():
                return pickle.loads(result.read_bytes())  # our own run folder, written by this run
            time.sleep(0.02)
        return None

    # -- the circuit breaker, run-wide ----------------------------------------------------
    def trip(self, reason: str) -> None:
        self._tripped = reason
        if self.folder is not None:
            with contextlib.suppress(OSError):
                (self.folder / "tripped").write_text(reason, encoding="utf-8")

    def tripped(self) -> str | None:
        if self._tripped is None and self.folder is not None:
            path = self.folder / "tripped"
            with contextlib.suppress(OSError):
                if path.exists():
                    self._tripped = path.read_text(encoding="utf-8")
        return self._tripped

    def close(self) -> None:
        for budget in self._budgets:
            budget.close()
