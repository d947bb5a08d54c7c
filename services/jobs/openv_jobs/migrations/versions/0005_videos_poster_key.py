"""The `videos` projection's `poster_key`: the object key of a completed video's poster frame.

Expand only: a nullable column with no default is a catalogue change (no table rewrite), and
the previous release neither reads nor writes it (its COPY and upserts name their columns).
The log is unchanged; `VideoPosterAdded` events fold into the column.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # IF NOT EXISTS: tables made by `create_all` before migrations are stamped at 0001 and
    # upgraded from there, and already have the column.
    op.add_column("videos", sa.Column("poster_key", sa.Text(), nullable=True), if_not_exists=True)


def downgrade() -> None:
    op.drop_column("videos", "poster_key", if_exists=True)
