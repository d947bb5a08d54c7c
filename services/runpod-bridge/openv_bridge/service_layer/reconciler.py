"""No job left behind: a background loop over the submissions table.

Every `reconcile_interval_s` it
- retries submissions stuck in `submitting` whose lease ran out (a crash or hang between the
  claim and RunPod's answer; a failed attempt waiting for its retry), failing them after
  `submit_max_attempts`;
- retries cancels RunPod did not confirm;
- polls /status for jobs in flight with no news for `reconcile_quiet_s` (a lost webhook, or a
  job whose progress only polling shows) and handles the answer exactly like a webhook.

While RunPod refuses the bridge's key or endpoint, a pass only probes `/health` (once per pass):
the records wait, and a job's `/status` 404 from a mistyped endpoint is never taken for a job
gone. The first answer ends it and the pass goes on.

All state is in Postgres, so a restarted bridge watches every job its predecessor did; rows are
claimed with `FOR UPDATE SKIP LOCKED`, so several bridges share the work without doubling it.
RunPod's rate limits are respected with bounded concurrency and a requests-per-second pace.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from openv_bridge.config import Settings
from openv_bridge.domain.record import DIED_OPEN, Submission
from openv_bridge.domain.runpod_errors import RunPodError
from openv_bridge.service_layer.ports import ReconciledWork, StalledRecords

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pace:
    """At most `per_s` starts per second, spread evenly (no bursts after a quiet spell)."""

    def __init__(
        self, per_s: float, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.interval = 1.0 / per_s
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await self._sleep(start - now)


@dataclass(frozen=True)
class Sweep:
    """What one pass did (for logs and tests)."""

    resubmitted: int = 0
    cancels_retried: int = 0
    polled: int = 0
    #: Stalled submissions whose dead attempt may have a job: held, not sent again (yet).
    held: int = 0


class Reconciler:
    def __init__(
        self,
        bridge: ReconciledWork,
        submissions: StalledRecords,
        settings: Settings,
        pace: Pace | None = None,
    ) -> None:
        self.bridge = bridge
        self.submissions = submissions
        self.settings = settings
        self.pace = pace or Pace(settings.reconcile_requests_per_s)
        self._slots = asyncio.Semaphore(settings.reconcile_concurrency)

    async def run_forever(self) -> None:
        while True:
            try:
                sweep = await self.run_once()
            except Exception:
                log.exception("reconciler pass failed; trying again next interval")
            else:
                if sweep != Sweep():
                    log.info("reconciler: %s", sweep)
            await asyncio.sleep(self.settings.reconcile_interval_s)

    async def run_once(self) -> Sweep:
        s = self.settings
        if not await self._runpod_accepts_us():
            return Sweep()
        taken = await self.submissions.acquire_stalled(
            s.submit_lease_s, s.ambiguous_run_wait_s, s.reconcile_batch_size
        )
        stalled = [sub for sub in taken if sub.attempt_started]
        for sub in taken:
            if not sub.attempt_started:
                log.warning(
                    "video %s: held %.0f s: %s", sub.video_id, s.ambiguous_run_wait_s, DIED_OPEN
                )
        cancels = await self.submissions.acquire_stalled_cancels(
            s.submit_lease_s, s.reconcile_batch_size
        )
        quiet = await self.submissions.claim_quiet(s.reconcile_quiet_s, s.reconcile_batch_size)
        await asyncio.gather(
            *(self._limited("resubmit", sub, self.bridge.attempt) for sub in stalled),
            *(self._limited("cancel", sub, self.bridge.cancel_on_runpod) for sub in cancels),
            *(self._limited("poll", sub, self.bridge.poll) for sub in quiet),
        )
        return Sweep(len(stalled), len(cancels), len(quiet), len(taken) - len(stalled))

    async def _runpod_accepts_us(self) -> bool:
        runpod = self.bridge.runpod
        if not runpod.access.misconfigured:
            return True
        with contextlib.suppress(RunPodError):  # the client logs a change of state once
            await runpod.health()
        return not runpod.access.misconfigured

    async def _limited(
        self, what: str, sub: Submission, act: Callable[[Submission], Awaitable[object]]
    ) -> None:
        async with self._slots:
            await self.pace.wait()
            try:
                await act(sub)
            except Exception:
                # One record's trouble (S3 down for its completion check, ...) must not stop
                # the others; it is picked up again after its lease or quiet time.
                log.exception("reconciler: %s of video %s failed", what, sub.video_id)
