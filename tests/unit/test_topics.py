"""Every topic the domains record has a handler, so no event ends in the dead letter unread."""

from __future__ import annotations

import re
from pathlib import Path

from app import outbox
from app.domains import load_models

APP = Path(__file__).resolve().parents[2] / "app"


def test_every_recorded_topic_has_a_handler() -> None:
    load_models()
    recorded = {
        topic
        for path in APP.rglob("*.py")
        for topic in re.findall(r'outbox\.record\(\s*session,\s*"([a-z_.]+)"', path.read_text())
    }

    assert recorded >= {"user.created", "user.deleted", "post.created", "vote.cast"}
    assert recorded <= outbox.handled_topics()
