"""Stopping well: on SIGTERM, readiness fails at once and the server stops a little later."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from app.observability.logs import get_logger

logger = get_logger(__name__)


class Draining:
    """Whether the process has been asked to stop: `/ready` then fails while it finishes."""

    def __init__(self) -> None:
        self.started = False

    @contextmanager
    def on_sigterm(self, delay_seconds: float) -> Iterator[None]:
        """While open, SIGTERM starts draining at once and reaches the server `delay_seconds`
        later; the server then stops accepting connections and finishes the requests it has.

        The delay lets load balancers see the failing readiness and stop sending traffic
        before the listener closes. Without a server's handler to pass the signal on to, or
        off the main thread (where signals cannot be handled), this does nothing.
        """
        server_handler = signal.getsignal(signal.SIGTERM)
        if (
            not callable(server_handler)
            or threading.current_thread() is not threading.main_thread()
        ):
            yield
            return
        loop = asyncio.get_running_loop()

        def start(signum: int, frame: FrameType | None) -> None:
            logger.info("draining: readiness fails from now on", seconds=delay_seconds)
            loop.call_later(delay_seconds, server_handler, signum, frame)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.started:  # a second SIGTERM does not wait
                server_handler(signum, frame)
                return
            self.started = True  # readiness fails from this moment
            # Logging and timers belong to the loop, not to a signal handler.
            loop.call_soon_threadsafe(start, signum, frame)

        signal.signal(signal.SIGTERM, on_signal)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, server_handler)
