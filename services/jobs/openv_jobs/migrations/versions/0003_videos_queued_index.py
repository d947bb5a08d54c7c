"""A partial index of the videos still `queued`, for the queued-too-long timer.

Expand only; the previous release ignores the index. Building it holds off writes to `videos`
(the projector's, which readers do not wait for) for one scan of the table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "videos_queued_since",
        "videos",
        ["updated_at"],
        postgresql_where=sa.text("status = 'queued'"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("videos_queued_since", table_name="videos", if_exists=True)
