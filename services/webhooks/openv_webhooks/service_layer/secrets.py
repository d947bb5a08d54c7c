"""Signing secrets per user: made on first use, rotated with an overlap during which the
replaced secret keeps signing alongside the new one (receivers can switch without a gap)."""

from collections.abc import Callable
from datetime import datetime, timedelta

from openv_contracts.webhooks import WebhookSecretView
from openv_webhooks.service_layer.ports import SecretStore, StoredSecret


class Secrets:
    def __init__(
        self,
        store: SecretStore,
        new_secret: Callable[[], str],
        overlap_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.new_secret = new_secret
        self.overlap = timedelta(seconds=overlap_s)
        self.clock = clock

    async def current(self, user_id: str) -> StoredSecret:
        """The user's secret, made now if the user has none."""
        found = await self.store.get(user_id)
        if found is not None:
            return found
        return await self.store.create(user_id, StoredSecret(self.new_secret(), self.clock()))

    async def view(self, user_id: str) -> WebhookSecretView:
        return _view(await self.current(user_id), self.clock())

    async def rotate(self, user_id: str) -> WebhookSecretView:
        """A new secret; the one it replaces signs alongside for the overlap."""
        old = await self.current(user_id)
        now = self.clock()
        new = StoredSecret(self.new_secret(), now, old.secret, now + self.overlap)
        await self.store.replace(user_id, new)
        return _view(new, now)

    async def in_use(self, user_id: str) -> list[str]:
        """The secrets a delivery is signed with now: the current one, then the previous one
        while its overlap lasts."""
        stored = await self.current(user_id)
        return _in_use(stored, self.clock())


def _still_signing(stored: StoredSecret, now: datetime) -> str | None:
    """The replaced secret while its overlap lasts, else None."""
    expires = stored.previous_expires_at
    if stored.previous is None or expires is None or now >= expires:
        return None
    return stored.previous


def _in_use(stored: StoredSecret, now: datetime) -> list[str]:
    previous = _still_signing(stored, now)
    return [stored.secret] if previous is None else [stored.secret, previous]


def _view(stored: StoredSecret, now: datetime) -> WebhookSecretView:
    signing = _still_signing(stored, now) is not None
    return WebhookSecretView(
        secret=stored.secret,
        created_at=stored.created_at,
        previous_expires_at=stored.previous_expires_at if signing else None,
    )
