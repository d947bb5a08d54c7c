"""Postgres tables of the jobs service: the event log, projections, checkpoints."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class StoredEvent(SQLModel, table=True):
    """Append-only event log. (stream_id, stream_version) unique = optimistic concurrency."""

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("stream_id", "stream_version", name="events_stream_version"),
    )

    position: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    event_id: UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, unique=True))
    stream_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    stream_version: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    event_type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    schema_version: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    data: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    meta: dict[str, Any] = Field(sa_column=sa.Column("metadata", JSONB, nullable=False))
    occurred_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    recorded_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )


class ProcessedMessage(SQLModel, table=True):
    """Unused since revision 0002 (events' ids now derive from their message, see
    service_layer/jobs_service.py).

    Kept for the previous release during a rolling upgrade; a later release drops it.
    """

    __tablename__ = "processed_messages"

    message_id: UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    message_type: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    processed_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )


class VideoRow(SQLModel, table=True):
    """The `videos` projection: one row per video, the state folded from its stream."""

    __tablename__ = "videos"
    __table_args__ = (
        sa.Index("videos_user_created", "user_id", "created_at", "video_id"),
        # The queued-too-long timer's look-up: few rows, whatever the table's size.
        sa.Index(
            "videos_queued_since", "updated_at", postgresql_where=sa.text("status = 'queued'")
        ),
        # The silent-too-long timer's: the videos in flight, by their last news.
        sa.Index(
            "videos_in_flight_since",
            "updated_at",
            postgresql_where=sa.text("status IN ('submitted', 'running')"),
        ),
    )

    video_id: UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    progress: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    prompt: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    params: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    duration_seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    charged_seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    object_prefix: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    runpod_job_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    object_key: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    size_bytes: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    content_type: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    error_code: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    error_message: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    file_deleted: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    started_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    completed_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    version: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    #: Last, as revision 0005 added it (COPY and the rebuild's tables follow this order).
    poster_key: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class UsageRow(SQLModel, table=True):
    """Per-user usage projection; its row lock serializes one user's limit decisions."""

    __tablename__ = "user_usage"

    user_id: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    active_jobs: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    period_start: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    used_seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class Checkpoint(SQLModel, table=True):
    """How far a reader of the log (the relay, a projection) has come."""

    __tablename__ = "checkpoints"

    name: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    position: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


METADATA = SQLModel.metadata
