"""One checkpoint per projection: `videos` is now written behind the log by the projector,
`user_usage` still in the appending transaction. Both start where the shared `projections`
checkpoint was, so an upgraded database re-projects nothing.

Expand only: the previous release (still serving while this runs) keeps its `projections`
checkpoint and its `processed_messages` table; a later release drops both.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO checkpoints (name, position) "
        "SELECT n, position FROM checkpoints, (VALUES ('videos'), ('user_usage')) AS v(n) "
        "WHERE name = 'projections' ON CONFLICT (name) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DELETE FROM checkpoints WHERE name IN ('videos', 'user_usage')")
