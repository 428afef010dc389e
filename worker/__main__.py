"""`python -m worker` (or `make worker`): run the outbox worker until SIGTERM or SIGINT."""

from __future__ import annotations

from arq import run_worker

from app.settings import get_settings
from worker.arq_worker import worker_settings


def main() -> None:
    run_worker(worker_settings(get_settings()))


if __name__ == "__main__":
    main()
