"""`python -m app`: serve the API with Uvicorn, in one process or several.

With several worker processes, each keeps its own metrics; they are written to a shared
directory (`PROMETHEUS_MULTIPROC_DIR`, a fresh one unless set) so any process's `/metrics`
reports the sum. Uvicorn logs through the application's configuration (JSON in
production) and leaves the access line to the application.
"""

from __future__ import annotations

import argparse
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


if __name__ == "__main__":
    main()
