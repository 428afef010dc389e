"""The auth tables: `refresh_tokens`, one row per refresh token, grouped into families
(sessions); `oauth_accounts`, the external identities linked to each user; and the short-lived
records of a sign-in with a provider, `oauth_flows` and `oauth_exchange_codes`."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import NEVER_REUSE_IDS, Base, BigIntId, str_enum, utcnow


class RevokeReason(StrEnum):
    ROTATED = "rotated"  # replaced by its child; presenting it again is reuse
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password
    SESSION_ENDED = "session_ended"
    REUSE_DETECTED = "reuse_detected"


class RefreshToken(Base):
    """A refresh token. Only its SHA-256 is stored; the token itself exists only client-side.

    A login starts a family (`family_id`, which is the session id); each refresh revokes the
    presented token as `rotated` and adds its child. At most one token per family is live.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    parent_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("refresh_tokens.id", ondelete="SET NULL")
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When this token stops working: the idle deadline, capped by the family's.
    expires_at: Mapped[datetime]
    # When the whole family (session) ends, however often it is refreshed.
    family_expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[RevokeReason | None] = mapped_column(str_enum(RevokeReason))


class OAuthAccount(Base):
    """An external identity linked to a user: `(provider, subject)` names it, never the email.

    A user has at most one link per provider.
    """

    __tablename__ = "oauth_accounts"
    __table_args__ = (
        UniqueConstraint("provider", "subject"),
        UniqueConstraint("user_id", "provider"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    # What the provider said at the last sign-in; informative, never used to find the user.
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]


class OAuthFlow(Base):
    """A sign-in with a provider between its start and its callback: what the callback needs
    and must check. Single use, deleted as it is consumed.

    Found by the SHA-256 of its `state`; it belongs to the browser whose cookie hashes to
    `browser_hash`. The PKCE verifier and the nonce never leave the server.
    """

    __tablename__ = "oauth_flows"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    # The user adding this identity to their account; none for a sign-in.
    user_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE")
    )
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    # Where the browser goes when the flow ends; none: the callback answers with JSON.
    redirect_to: Mapped[str | None] = mapped_column(String(2048))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OAuthExchangeCode(Base):
    """A finished sign-in waiting for the frontend to exchange its one-time code for tokens.

    Found by the SHA-256 of the code; deleted as it is exchanged.
    """

    __tablename__ = "oauth_exchange_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(index=True)
