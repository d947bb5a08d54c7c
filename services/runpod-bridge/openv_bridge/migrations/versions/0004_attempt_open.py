"""One GPU job per video: an attempt that died between claiming and recording.

`attempt_open_since` is set while an attempt may be sending `/run` and has recorded no outcome.
A takeover of a record whose lease ran out with it still set holds the record like a lost
answer instead of sending the video again. Existing rows get NULL: their next takeover starts an
attempt, as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "runpod_submissions"


def upgrade() -> None:
    op.add_column(
        _TABLE, sa.Column("attempt_open_since", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column(_TABLE, "attempt_open_since")
