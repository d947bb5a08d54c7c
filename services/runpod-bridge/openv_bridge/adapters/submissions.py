"""The bridge's own record of RunPod submissions (its Postgres database).

A redelivered "accepted" event finds the record and never submits twice; the webhook
checks the reported job id against it.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel


class SubmissionRow(SQLModel, table=True):
    __tablename__ = "runpod_submissions"

    video_id: UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    user_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    object_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    runpod_job_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    #: submitting | submitted | finished | cancelled
    state: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )
    updated_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )


_t = SubmissionRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Submission:
    video_id: UUID
    user_id: str
    object_key: str
    runpod_job_id: str | None
    state: str


class Submissions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(self, video_id: UUID, user_id: str, object_key: str) -> bool:
        """Start a submission; False if one was already started for this video."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                pg_insert(_t)
                .values(
                    video_id=video_id, user_id=user_id, object_key=object_key, state="submitting"
                )
                .on_conflict_do_nothing()
                .returning(_t.c.video_id)
            )
            return result.first() is not None

    async def get(self, video_id: UUID) -> Submission | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(_t).where(_t.c.video_id == video_id))).first()
        if row is None:
            return None
        return Submission(row.video_id, row.user_id, row.object_key, row.runpod_job_id, row.state)

    async def set_state(self, video_id: UUID, state: str, runpod_job_id: str | None = None) -> None:
        values: dict[str, object] = {"state": state, "updated_at": sa.func.now()}
        if runpod_job_id is not None:
            values["runpod_job_id"] = runpod_job_id
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(_t).where(_t.c.video_id == video_id).values(**values))
