"""The endpoint's workers as RunPod runs them: a limited number, cold starts, scale to zero.

A job holds one worker while IN_PROGRESS. With every worker busy, later jobs stay IN_QUEUE
behind it (a long queue). A job that finds no warm idle worker waits `cold_start_s` for a new
one to boot, still IN_QUEUE. A worker idle for `idle_timeout_s` is scaled down, so the first
job after a quiet spell pays the cold start again. All of that waiting shows in `delayTime`.
"""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, PositiveInt


class PoolUpdate(BaseModel):
    """Body of `POST /admin/workers`; only the keys given are changed."""

    model_config = ConfigDict(extra="forbid")

    max_workers: PositiveInt | None = None
    cold_start_s: NonNegativeFloat | None = None
    idle_timeout_s: NonNegativeFloat | None = None


class PoolConfig(BaseModel):
    max_workers: PositiveInt
    cold_start_s: NonNegativeFloat
    idle_timeout_s: NonNegativeFloat


@dataclass
class _Warm:
    worker_id: str
    idle_since: float


def new_worker_id() -> str:
    return secrets.token_hex(7)


class WorkerPool:
    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self._defaults = config
        self._busy = 0
        self._warm: list[_Warm] = []
        # Bumped by reset(): workers of jobs stopped by it do not come back warm.
        self._generation = 0
        # Replaced on every release: waiters for a free worker wake and look again.
        self._freed = asyncio.Event()

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def idle(self) -> int:
        """Warm workers waiting for a job (RunPod's `workers.idle`)."""
        self._scale_down(time.monotonic())
        return len(self._warm)

    def update(self, update: PoolUpdate) -> PoolConfig:
        self.config = self.config.model_copy(update=update.model_dump(exclude_none=True))
        self._wake()  # more workers may let queued jobs start now
        return self.config

    def reset(self) -> None:
        """Back to the configured settings, every warm worker scaled down."""
        self.config = self._defaults
        self._warm.clear()
        self._generation += 1
        self._wake()

    @asynccontextmanager
    async def lease(self, cold_start_s: float | None = None) -> AsyncIterator[str]:
        """Wait for a free worker (cold-starting one if none is warm); yield its id.

        `cold_start_s` forces this job onto a fresh worker that boots that long."""
        while self._busy >= self.config.max_workers:
            await self._freed.wait()
        self._busy += 1
        generation = self._generation
        worker_id: str | None = None
        try:
            warm = self._take_warm() if cold_start_s is None else None
            if warm is None:
                boot = self.config.cold_start_s if cold_start_s is None else cold_start_s
                if boot:
                    await asyncio.sleep(boot)
                worker_id = new_worker_id()
            else:
                worker_id = warm.worker_id
            yield worker_id
        finally:
            self._busy -= 1
            # A worker cancelled while booting never came up.
            if worker_id is not None and generation == self._generation:
                self._warm.append(_Warm(worker_id, time.monotonic()))
            self._wake()

    def _take_warm(self) -> _Warm | None:
        self._scale_down(time.monotonic())
        return self._warm.pop() if self._warm else None

    def _scale_down(self, now: float) -> None:
        timeout = self.config.idle_timeout_s
        self._warm = [w for w in self._warm if now < w.idle_since + timeout]
        # Never more warm workers than the endpoint may have beside the busy ones.
        room = max(0, self.config.max_workers - self._busy)
        del self._warm[: max(0, len(self._warm) - room)]

    def _wake(self) -> None:
        self._freed.set()
        self._freed = asyncio.Event()
