"""Postgres signing secrets per user (`SecretStore`)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_webhooks.adapters.tables import SecretRow
from openv_webhooks.service_layer.ports import StoredSecret

_S = SecretRow.__table__  # type: ignore[attr-defined]


class PostgresSecrets:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, user_id: str) -> StoredSecret | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(_S).where(_S.c.user_id == user_id))).first()
        if row is None:
            return None
        return StoredSecret(
            row.secret, row.created_at, row.previous_secret, row.previous_expires_at
        )

    async def create(self, user_id: str, secret: StoredSecret) -> StoredSecret:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(_S)
                .values(user_id=user_id, **_values(secret))
                .on_conflict_do_nothing(index_elements=["user_id"])
            )
        found = await self.get(user_id)
        assert found is not None
        return found

    async def replace(self, user_id: str, secret: StoredSecret) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(_S)
                .values(user_id=user_id, **_values(secret))
                .on_conflict_do_update(index_elements=["user_id"], set_=_values(secret))
            )


def _values(secret: StoredSecret) -> dict[str, object]:
    return {
        "secret": secret.secret,
        "created_at": secret.created_at,
        "previous_secret": secret.previous,
        "previous_expires_at": secret.previous_expires_at,
    }
