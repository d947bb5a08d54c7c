"""One GPU job per video: when the last `/run` answer of a submission was lost.

A `submitting` record with `answer_lost_at` set is ambiguous: its attempt may have created a
job, so the next attempt waits (`OPENV_AMBIGUOUS_RUN_WAIT_S`) for that job to report. Existing
rows get NULL: nothing known to be ambiguous.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "runpod_submissions"


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("answer_lost_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column(_TABLE, "answer_lost_at")
