"""outbox effects and the reaper index

Revision ID: 700965334da0
Revises: 1497d680cd6f
Create Date: 2026-11-26 18:22:28.265466
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "700965334da0"
down_revision: str | None = "1497d680cd6f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_effects",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("effect", sa.String(length=100), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["outbox_events.id"],
            name=op.f("fk_outbox_effects_event_id_outbox_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "effect", name=op.f("pk_outbox_effects")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_events_status_locked_until", ["status", "locked_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_status_locked_until")

    op.drop_table("outbox_effects")
