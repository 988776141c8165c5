"""A hard deadline per exchange, on top of requests' per-read timeouts.

requests (urllib3) time out a read only when *no* byte arrives for `timeout` seconds, so a
target that trickles its headers or body one byte at a time (slowloris) can hold a check
forever. Here each exchange arms a timer; when it fires, every socket the exchange opened
is shut down, the blocked read fails at once, and the client reports what happened.

The sockets are found through urllib3's own extension points: a connection class whose
`getresponse` registers its socket with the exchange running in the current thread.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class DeadlineExceeded(OSError):
    """The exchange outlived its deadline; its sockets were shut down."""


@dataclass(eq=False)  # hashable by identity: a client keeps its in-flight watches in a set
class Watch:
    sockets: list[socket.socket] = field(default_factory=list)
    expired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    until: float = math.inf  # time.monotonic() at which the exchange is cut
    # When the latest attempt (urllib3 retries each in turn) started: the answer's latency
    # is counted from there, not from before the waits a 503 or a reset caused.
    attempt_started: float | None = None

    def remaining(self) -> float:
        return self.until - time.monotonic()

    def register(self, sock: socket.socket | None) -> None:
        with self.lock:
            if self.expired:
                raise DeadlineExceeded("deadline passed before the response")
            if sock is not None:
                self.sockets.append(sock)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # already closed: nothing left to stop
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def deadline(seconds: float) -> Iterator[Watch]:
    """Run the block as one exchange that is cut off after `seconds`."""
    exchange = Watch(until=time.monotonic() + seconds)
    previous = getattr(_current, "exchange", None)
    _current.exchange = exchange
    timer = threading.Timer(seconds, exchange.expire)
    timer.daemon = True
    timer.start()
    try:
        yield exchange
    finally:
        timer.cancel()
        _current.exchange = previous


def remaining() -> float:
    """Seconds left to the exchange running in this thread (infinite outside one)."""
    exchange: Watch | None = getattr(_current, "exchange", None)
    return math.inf if exchange is None else exchange.remaining()


def _register(conn: HTTPConnection) -> None:
    exchange: Watch | None = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.register(conn.sock)


class DeadlineHTTPConnection(HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self)
        return super().getresponse(*args, **kwargs)


class DeadlineHTTPSConnection(HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register(self)
        return super().getresponse(*args, **kwargs)


def _attempt_starts() -> None:
    exchange: Watch | None = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.attempt_started = time.monotonic()


class DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = DeadlineHTTPConnection

    def _make_request(self, *args: Any, **kwargs: Any) -> Any:
        _attempt_starts()
        return super()._make_request(*args, **kwargs)


class DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection

    def _make_request(self, *args: Any, **kwargs: Any) -> Any:
        _attempt_starts()
        return super()._make_request(*args, **kwargs)


POOL_CLASSES = {"http": DeadlineHTTPConnectionPool, "https": DeadlineHTTPSConnectionPool}
