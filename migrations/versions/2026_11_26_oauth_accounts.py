"""oauth accounts: external identities linked to users

Revision ID: 97abb3156c41
Revises: 4c1e9a7d2b35
Create Date: 2026-11-26 21:38:23.229047
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "97abb3156c41"
down_revision: str | None = "4c1e9a7d2b35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_oauth_accounts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_accounts")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_oauth_accounts_provider_subject")),
        sa.UniqueConstraint("user_id", "provider", name=op.f("uq_oauth_accounts_user_id_provider")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("oauth_accounts")
