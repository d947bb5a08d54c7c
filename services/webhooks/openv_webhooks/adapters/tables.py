"""The webhooks service's tables (its own Postgres database or schema share): watched videos,
deliveries, their attempts, and signing secrets per user."""

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _tz(nullable: bool) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class WatchRow(SQLModel, table=True):
    """A video whose decision named a webhook, with its public view as last folded."""

    __tablename__ = "webhook_videos"

    video_id: UUID = Field(primary_key=True)
    user_id: str
    url: str
    events: list[str] = Field(sa_column=sa.Column(JSONB, nullable=False))
    view: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    version: int
    updated_at: datetime = Field(sa_column=_tz(False))


class DeliveryRow(SQLModel, table=True):
    """One video event to send; its id is the video event's id (webhook-id "msg_" + hex)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("webhook_deliveries_video_version", "video_id", "version"),
        # The dispatcher's scan: pending ones by due time.
        sa.Index(
            "webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("state = 'pending'"),
        ),
        sa.Index("webhook_deliveries_state_finished", "state", "finished_at"),
    )

    id: UUID = Field(primary_key=True)
    video_id: UUID
    user_id: str
    version: int
    event: str
    url: str
    origin: str
    occurred_at: datetime = Field(sa_column=_tz(False))
    view: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    state: str
    created_at: datetime = Field(sa_column=_tz(False))
    give_up_at: datetime = Field(sa_column=_tz(False))
    next_attempt_at: datetime | None = Field(default=None, sa_column=_tz(True))
    lease_until: datetime | None = Field(default=None, sa_column=_tz(True))
    finished_at: datetime | None = Field(default=None, sa_column=_tz(True))
    failed_attempts: int = 0


class AttemptRow(SQLModel, table=True):
    """One try at a delivery."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("webhook_attempts_delivery", "delivery_id", "at"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    delivery_id: UUID
    at: datetime = Field(sa_column=_tz(False))
    status_code: int | None = None
    latency_ms: int
    error: str | None = None


class SecretRow(SQLModel, table=True):
    """A user's signing secret, and the one it replaced while that still signs."""

    __tablename__ = "webhook_secrets"

    user_id: str = Field(primary_key=True)
    secret: str
    created_at: datetime = Field(sa_column=_tz(False))
    previous_secret: str | None = None
    previous_expires_at: datetime | None = Field(default=None, sa_column=_tz(True))
