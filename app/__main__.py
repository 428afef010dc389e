"""`python -m app`: serve the API with Uvicorn, in one process or several.

With several worker processes, each keeps its own metrics; they are written to a shared
directory (`PROMETHEUS_MULTIPROC_DIR`, a fresh one unless set) so any process's `/metrics`
reports the sum. Uvicorn logs through the application's configuration (JSON in
production) and leaves the access line to the application.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Sequence

import uvicorn

from app.observability.logs import configure_logging
from app.observability.metrics import MULTIPROCESS_DIR_VARIABLE
from app.settings import get_settings


def main(argv: Sequence[str] | None = None) -> None:
    settings = get_settings()
    server = settings.server
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default=server.host)
    parser.add_argument("--port", type=int, default=server.port)
    parser.add_argument("--fd", type=int, help="serve on this already-bound socket instead")
    parser.add_argument("--workers", type=int, default=server.workers)
    args = parser.parse_args(argv)
    configure_logging(settings)
    return_freed_blocks_to_the_system()
    metrics_dir = None
    if args.workers > 1 and settings.metrics.multiprocess_dir is None:
        # The worker processes inherit it: prometheus_client and their settings read it.
        metrics_dir = os.environ[MULTIPROCESS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="metrics-")
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            fd=args.fd,
            workers=args.workers,
            access_log=False,
            log_config=None,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


# glibc's mallopt() parameter for the size from which blocks are mmap()ed.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default


def return_freed_blocks_to_the_system() -> bool:
    """Keep glibc unmapping large blocks when they are freed; False where that is not glibc.

    Each argon2 hash allocates `AUTH_ARGON2_MEMORY_KIB` (19 MiB by default). glibc serves a
    block that size with mmap() and unmaps it when freed, but the first such free raises its
    threshold to the block's size, and from then on the blocks come from per-thread heaps
    that keep the memory: after a burst of logins the process held about 75 MiB more
    (`bench/`). Setting the threshold fixes it at the default and keeps the first behaviour,
    at the price of fresh pages for every hash (a third fewer logins a second in a flood).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # no C library found, or one without mallopt()
        return False


if __name__ == "__main__":
    main()
