"""The API served by `python -m app` in a subprocess, on a socket bound before it starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from tests.support import ROOT


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> int:
        """SIGTERM, as an orchestrator sends it: in-flight requests finish, then the server
        re-raises the signal so its exit status names what stopped it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def served(
    env: Mapping[str, str] | Callable[[str], Mapping[str, str]],
    *args: str,
    stderr: int | IO[bytes] | None = None,
) -> Iterator[Server]:
    """`python -m app` with `env` added to this process's environment; `env` may be a
    function of the server's URL, for settings that name the server itself.

    The test binds the socket itself and hands it over (`--fd`): connections made before
    the server is up wait in the listen backlog, so no test polls or sleeps.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    host, port = listener.getsockname()
    url = f"http://{host}:{port}"
    process = subprocess.Popen(  # noqa: S603 - fixed argv built from this interpreter
        [sys.executable, "-m", "app", "--fd", str(listener.fileno()), *args],
        cwd=ROOT,
        env=os.environ | dict(env(url) if callable(env) else env),
        pass_fds=[listener.fileno()],
        stderr=stderr,
    )
    listener.close()
    server = Server(url, process)
    try:
        yield server
    finally:
        server.stop()
        if process.stderr is not None:
            process.stderr.close()
