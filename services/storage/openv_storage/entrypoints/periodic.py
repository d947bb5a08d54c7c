"""The sweeper as a background task of the running service."""

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)

#: The first sweep after a start comes at most this soon (a restarted service still sweeps).
FIRST_SWEEP_MAX_DELAY_S = 60.0


class Sweeps(Protocol):
    async def sweep(self) -> object: ...


async def sweep_periodically(sweeper: Sweeps, interval_s: float) -> None:
    """Sweep every `interval_s` seconds until cancelled; a failed sweep is logged, not fatal."""
    await asyncio.sleep(min(interval_s, FIRST_SWEEP_MAX_DELAY_S))
    while True:
        try:
            await sweeper.sweep()
        except Exception:
            log.exception("sweep failed; next one in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
