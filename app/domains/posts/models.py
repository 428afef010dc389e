"""The `posts` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import NEVER_REUSE_IDS, Base, BigIntId, utcnow

TITLE_MAX_LENGTH = 200
CONTENT_MAX_LENGTH = 10_000


class Post(Base):
    __tablename__ = "posts"
    # Serves the newest-first listing and its (created_at, id) tie-break.
    __table_args__ = (Index("ix_posts_created_at_id", "created_at", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    content: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
