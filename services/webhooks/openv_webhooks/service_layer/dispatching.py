"""The dispatcher: sends due deliveries, at most `concurrency` attempts in flight and at most
`per_receiver` per receiver origin, so a hanging receiver fills only its own slots.

Claims are leases in the store (a killed instance's claims are tried again once their lease
ends); a video's deliveries go one at a time in version order (the store only offers a video's
oldest pending delivery). Woken when deliveries are recorded or an attempt ends, else every
`poll_s`."""

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from openv_webhooks.domain.backoff import RetrySchedule
from openv_webhooks.domain.deliveries import DeliveryState, after_attempt
from openv_webhooks.service_layer.attempts import Attempter
from openv_webhooks.service_layer.ports import DeliveryMetrics, DeliveryQueue, Due

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchLimits:
    concurrency: int
    per_receiver: int
    poll_s: float
    lease_s: float


class Dispatcher:
    def __init__(
        self,
        queue: DeliveryQueue,
        attempter: Attempter,
        limits: DispatchLimits,
        schedule: RetrySchedule,
        metrics: DeliveryMetrics,
        clock: Callable[[], datetime],
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.queue = queue
        self.attempter = attempter
        self.limits = limits
        self.schedule = schedule
        self.metrics = metrics
        self.clock = clock
        self.draw = draw
        self.in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        try:
            while True:
                try:
                    claimed = await self.dispatch_once()
                    await self._report_backlog()
                except Exception:
                    log.exception("dispatching failed; trying again in %.1f s", self.limits.poll_s)
                    claimed = 0
                if claimed:
                    continue
                # asyncio.timeout, not wait_for: 3.11's wait_for may swallow a cancel that
                # lands as the event is set, and this loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.limits.poll_s):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Abandon the attempts in flight (their leases end; another instance retries)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def dispatch_once(self) -> int:
        """Claim what fits in the free slots and start an attempt for each; how many."""
        free = self.limits.concurrency - sum(self.in_flight.values())
        if free <= 0:
            return 0
        full = {o for o, n in self.in_flight.items() if n >= self.limits.per_receiver}
        now = self.clock()
        lease_until = now + timedelta(seconds=self.limits.lease_s)
        claimed = await self.queue.claim(now, lease_until, free, full, self._picker(free))
        for due in claimed:
            self.in_flight[due.origin] += 1
            task = asyncio.create_task(self._attempt(due))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    def _picker(self, free: int) -> Callable[[list[Due]], list[Due]]:
        def pick(candidates: list[Due]) -> list[Due]:
            taken: Counter[str] = Counter(self.in_flight)
            picked: list[Due] = []
            for due in candidates:
                if len(picked) >= free:
                    break
                if taken[due.origin] < self.limits.per_receiver:
                    taken[due.origin] += 1
                    picked.append(due)
            return picked

        return pick

    async def _attempt(self, due: Due) -> None:
        try:
            result = await self.attempter.attempt(due)
            outcome = after_attempt(
                result, due.failed_attempts, due.give_up_at, self.schedule, self.draw()
            )
            await self.queue.finish(due, result, outcome)
            self.metrics.attempted(
                "delivered" if result.delivered else "failed", result.latency_ms / 1000
            )
            if outcome.state is not DeliveryState.PENDING:
                self.metrics.finished(outcome.state.value)
        except Exception:
            # Not recorded: the lease ends and the delivery is tried again.
            log.exception("attempt at delivery %s failed", due.id)
        finally:
            self.in_flight[due.origin] -= 1
            if self.in_flight[due.origin] <= 0:
                del self.in_flight[due.origin]
            self._wake.set()

    async def _report_backlog(self) -> None:
        pending, oldest_s = await self.queue.backlog(self.clock())
        self.metrics.backlog(pending, oldest_s)
