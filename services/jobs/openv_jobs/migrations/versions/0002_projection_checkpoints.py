"""The projector, and dedupe by event ids.

One checkpoint per projection: `videos` is now written behind the log by the projector,
`user_usage` still in the appending transaction. Both start where the shared `projections`
checkpoint was, so an upgraded database re-projects nothing.

`processed_messages` goes: an event's id is now derived from the message that caused it, so
the log's unique event id is the dedupe record (and the table no longer grows forever).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
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
    op.execute("DELETE FROM checkpoints WHERE name = 'projections'")
    op.drop_table("processed_messages")


def downgrade() -> None:
    # Empty: messages handled before the downgrade are deduplicated by the state machine.
    op.create_table(
        "processed_messages",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("message_type", sa.Text(), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("message_id"),
    )
    # Where both projections are complete: the lower of the two.
    op.execute(
        "INSERT INTO checkpoints (name, position) "
        "SELECT 'projections', min(position) FROM checkpoints "
        "WHERE name IN ('videos', 'user_usage') HAVING count(*) > 0 "
        "ON CONFLICT (name) DO NOTHING"
    )
    op.execute("DELETE FROM checkpoints WHERE name IN ('videos', 'user_usage')")
