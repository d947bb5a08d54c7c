"""Reconciler and crash-safe submission: attempts and lease, the request for resubmission, and
when RunPod last said anything about the job.

Existing rows get `last_news_at = now()` (so jobs in flight are polled once they have been
quiet for the reconciler's quiet time) and no `job_input` (a `submitting` row without it cannot
be resubmitted and is failed by the reconciler).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "runpod_submissions"


def upgrade() -> None:
    op.add_column(
        _TABLE, sa.Column("job_input", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(_TABLE, sa.Column("accepted_event_id", sa.Uuid(), nullable=True))
    op.add_column(_TABLE, sa.Column("correlation_id", sa.Uuid(), nullable=True))
    op.add_column(_TABLE, sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column(_TABLE, sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column(_TABLE, sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column(_TABLE, sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        _TABLE,
        sa.Column(
            "last_news_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column(_TABLE, sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(_TABLE, sa.Column("last_status", sa.Text(), nullable=True))
    op.add_column(_TABLE, sa.Column("last_progress", sa.Integer(), nullable=True))
    op.create_index("runpod_submissions_job_id", _TABLE, ["runpod_job_id"], unique=True)
    op.create_index("runpod_submissions_state_news", _TABLE, ["state", "last_news_at"])


def downgrade() -> None:
    op.drop_index("runpod_submissions_state_news", table_name=_TABLE)
    op.drop_index("runpod_submissions_job_id", table_name=_TABLE)
    for column in (
        "last_progress",
        "last_status",
        "polled_at",
        "last_news_at",
        "submitted_at",
        "last_error",
        "lease_until",
        "attempts",
        "correlation_id",
        "accepted_event_id",
        "job_input",
    ):
        op.drop_column(_TABLE, column)
