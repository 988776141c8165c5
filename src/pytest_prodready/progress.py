"""The live progress line while the plugin prefetches probes: `prodready: probing 12/40 (host)`.

One line, rewritten in place on an interactive terminal and erased before the first test
runs, so nothing of it is left in the output. It is never shown where a rewritten line is
noise or garbage: in CI logs (CI is set), when stdout is not a terminal, under -q, under an
xdist worker (the controller prints the run), or when pytest's terminal reporter is off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from pytest_prodready.target import Probe, Target

PREFIX = "prodready: probing"
_ERASE = "\r\x1b[K"  # back to the first column, erase to the end of the line
MIN_INTERVAL_S = 0.1  # a redraw at most every 100 ms: a fast prefetch does not flood the tty


class _Writer(Protocol):
    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None: ...


def wanted(config: pytest.Config, environ: dict[str, str] | None = None) -> bool:
    """True when this run should show the progress line."""
    env = os.environ if environ is None else environ
    if hasattr(config, "workerinput") or env.get("CI", "").strip().lower() not in ("", "0", "false"):
        return False
    if config.get_verbosity() < 0:  # -q (and -qq)
        return False
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return reporter is not None and bool(getattr(reporter, "isatty", False))


def host_label(url: str) -> str:
    """'host' or 'host:port' of a URL (never its userinfo, path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


class ProgressLine:
    """`on_done(done, total)` for Target.prefetch; `clear()` erases the line.

    `hosts[i]` is the host of the i-th probe in submission order: the pool works through
    the probes in that order, so the one after the last finished is the one in flight.
    """

    def __init__(self, writer: _Writer, hosts: Sequence[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._writer = writer
        self._hosts = list(hosts)
        self._clock = clock
        self._last = float("-inf")
        self.shown = False

    def text(self, done: int, total: int) -> str:
        host = self._hosts[min(done, len(self._hosts) - 1)] if self._hosts else ""
        return f"{PREFIX} {done}/{total}" + (f" ({host})" if host else "")

    def start(self) -> None:
        self._draw(self.text(0, len(self._hosts)))

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if done < total and now - self._last < MIN_INTERVAL_S:
            return
        self._last = now
        self._draw(self.text(done, total))

    def _draw(self, line: str) -> None:
        self._writer.write(_ERASE + line, flush=True)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self._writer.write(_ERASE, flush=True)
            self.shown = False


def for_prefetch(config: pytest.Config, target: Target, probes: Iterable[Probe]) -> ProgressLine | None:
    """The progress line for `target.prefetch(probes)`, or None when it is not wanted.

    The line starts on a line of its own (pytest's last line, "collected N items", is kept)
    and is erased back to that empty line, where the first test's output begins.
    """
    if not wanted(config):
        return None
    unique = list(dict.fromkeys(probes))  # as prefetch submits them
    if not unique:
        return None
    reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
    reporter.ensure_newline()
    line = ProgressLine(reporter, [host_label(target.masker.url(target.url_for(p.path))) for p in unique])
    line.start()
    return line
