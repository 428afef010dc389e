"""baseline: the empty schema every later revision builds on

Revision ID: 1e2290d16f8b
Revises:
Create Date: 2026-11-26 17:17:08.201876
"""

from collections.abc import Sequence

revision: str = "1e2290d16f8b"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
