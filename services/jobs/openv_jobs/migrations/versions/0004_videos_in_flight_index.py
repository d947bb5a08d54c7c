"""A partial index of the videos in flight (`submitted`, `running`), for the silent-too-long
timer.

Expand only; the previous release ignores the index. Building it holds off writes to `videos`
(the projector's, which readers do not wait for) for one scan of the table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "videos_in_flight_since",
        "videos",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('submitted', 'running')"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("videos_in_flight_since", table_name="videos", if_exists=True)
