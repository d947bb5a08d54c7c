"""The reconciler's pacing and isolation, with fakes for the database and the bridge (the real
ones are exercised in tests/integration/test_bridge_service.py)."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from openv_bridge.config import Settings
from openv_bridge.domain.record import Submission
from openv_bridge.domain.runpod_access import AccessState
from openv_bridge.domain.submissions import SubmissionState
from openv_bridge.service_layer.reconciler import Pace, Reconciler, Sweep
from tests.unit.support import FakeClock


async def test_pace_spreads_starts_evenly_and_does_not_burst_after_a_pause() -> None:
    clock = FakeClock()
    pace = Pace(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await pace.wait()
    assert clock.sleeps == [0.25, 0.25, 0.25]  # the first goes at once
    clock.now += 10  # quiet for a while: still one start per interval, no saved-up burst
    clock.sleeps.clear()
    await pace.wait()
    await pace.wait()
    assert clock.sleeps == [0.25]


def sub(state: SubmissionState = SubmissionState.SUBMITTED) -> Submission:
    return Submission(uuid4(), "u", "k", "job", state)


class FakeSubmissions:
    def __init__(self, stalled: int, cancels: int, quiet: int, held: int = 0) -> None:
        # A takeover starts an attempt (open) or holds the record of a dead attempt (not open).
        started = replace(sub(SubmissionState.SUBMITTING), attempt_open_since=datetime.now(UTC))
        self.stalled = [replace(started, video_id=uuid4()) for _ in range(stalled)]
        self.stalled += [sub(SubmissionState.SUBMITTING) for _ in range(held)]
        self.cancels = [sub(SubmissionState.CANCELLING) for _ in range(cancels)]
        self.quiet = [sub() for _ in range(quiet)]

    async def acquire_stalled(self, lease_s: float, hold_s: float, limit: int) -> list[Submission]:
        return self.stalled[:limit]

    async def acquire_stalled_cancels(self, lease_s: float, limit: int) -> list[Submission]:
        return self.cancels[:limit]

    async def claim_quiet(self, quiet_s: float, limit: int) -> list[Submission]:
        return self.quiet[:limit]


class FakeRunPod:
    def __init__(self) -> None:
        self.access = AccessState()

    async def health(self) -> dict[str, Any]:
        return {}


class FakeBridge:
    def __init__(self, failing: set[Any]) -> None:
        self.runpod = FakeRunPod()
        self.failing = failing
        self.active = 0
        self.most_active = 0
        self.done: list[tuple[str, Any]] = []

    async def _act(self, what: str, s: Submission) -> None:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        await asyncio.sleep(0.01)
        self.active -= 1
        if s.video_id in self.failing:
            raise RuntimeError("S3 is down")
        self.done.append((what, s.video_id))

    async def attempt(self, s: Submission) -> None:
        await self._act("resubmit", s)

    async def cancel_on_runpod(self, s: Submission) -> None:
        await self._act("cancel", s)

    async def poll(self, s: Submission) -> None:
        await self._act("poll", s)


async def test_a_pass_does_every_kind_of_work_concurrently_bounded_and_isolated() -> None:
    settings = Settings(reconcile_concurrency=3, reconcile_batch_size=50)
    subs = FakeSubmissions(stalled=2, cancels=1, quiet=9, held=1)
    failing = {subs.quiet[0].video_id}
    bridge = FakeBridge(failing)
    reconciler = Reconciler(bridge, subs, settings, pace=Pace(10_000.0))
    sweep = await reconciler.run_once()
    assert sweep == Sweep(resubmitted=2, cancels_retried=1, polled=9, held=1)
    assert bridge.most_active == 3  # RunPod sees at most `reconcile_concurrency` calls at once
    # One record's failure did not stop the others; a held record is not sent again.
    assert len(bridge.done) == 11
    assert {what for what, _ in bridge.done} == {"resubmit", "cancel", "poll"}


async def test_a_pass_takes_at_most_a_batch_of_each_kind() -> None:
    settings = Settings(reconcile_batch_size=4)
    subs = FakeSubmissions(stalled=0, cancels=0, quiet=10)
    bridge = FakeBridge(set())
    reconciler = Reconciler(bridge, subs, settings, pace=Pace(10_000.0))
    assert await reconciler.run_once() == Sweep(polled=4)
