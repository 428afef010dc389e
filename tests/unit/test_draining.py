"""SIGTERM handling: readiness fails at once, the server hears of it after the drain delay."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from app.draining import Draining


class ServerHandler:
    """Stands in for the server's own SIGTERM handler (uvicorn's `handle_exit`)."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.called = asyncio.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.calls.append(signum)
        self.called.set()


@pytest.fixture
def server_handler() -> Iterator[ServerHandler]:
    handler = ServerHandler()
    previous = signal.signal(signal.SIGTERM, handler)
    yield handler
    signal.signal(signal.SIGTERM, previous)


async def test_sigterm_starts_draining_and_reaches_the_server_after_the_delay(
    server_handler: ServerHandler,
) -> None:
    draining = Draining()
    with draining.on_sigterm(delay_seconds=0.05):
        signal.raise_signal(signal.SIGTERM)
        assert server_handler.calls == []  # not yet: the drain delay runs first
        await server_handler.called.wait()
        assert draining.started
    assert server_handler.calls == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is server_handler  # handed back on exit


async def test_a_second_sigterm_reaches_the_server_at_once(
    server_handler: ServerHandler,
) -> None:
    draining = Draining()
    with draining.on_sigterm(delay_seconds=3600):
        signal.raise_signal(signal.SIGTERM)
        assert draining.started  # at once, before the loop has run anything
        assert server_handler.calls == []
        signal.raise_signal(signal.SIGTERM)  # even before the loop has run anything
        assert server_handler.calls == [signal.SIGTERM]


async def test_without_a_server_handler_nothing_is_installed() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with Draining().on_sigterm(delay_seconds=1):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_off_the_main_thread_nothing_is_installed(server_handler: ServerHandler) -> None:
    seen: list[object] = []

    async def enter() -> None:
        with Draining().on_sigterm(delay_seconds=1):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=asyncio.run, args=(enter(),))
    thread.start()
    thread.join()
    assert seen == [server_handler]
