"""RunPod's rate limits kept on our side: the sliding window (pure, the time passed in), the
rest after a 429, the per-route limiter (a fake clock), and which answers are whose fault."""

import asyncio
from typing import Any

import httpx
import pytest

from openv_bridge.adapters.runpod_client import RunPodClient
from openv_bridge.adapters.runpod_limits import RUNPOD_LIMITS, RouteBusy, RouteLimiter
from openv_bridge.domain.rate_limits import RouteLimit, SlidingWindow, throttled_hold
from openv_bridge.domain.runpod_access import AccessState, Verdict, classify
from openv_bridge.domain.runpod_errors import RunPodThrottled
from tests.unit.support import FakeClock


def cancelling_client(clock: FakeClock, **options: Any) -> tuple[RunPodClient, list[float]]:
    """A client on `clock` whose every call is answered at once; the times calls were sent."""
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        return httpx.Response(200, json={"id": "j1", "status": "CANCELLED"})

    client = RunPodClient(
        "https://api.example/v2",
        "ep",
        "k",
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        **options,
    )
    return client, sent


def starts_in_any_window(starts: list[float], window_s: float) -> int:
    # (less a nanosecond: `now + wait` may land a rounding error before the exact start)
    return max(sum(1 for t in starts if s <= t < s + window_s - 1e-9) for s in starts)


def test_the_window_lets_a_burst_through_up_to_the_limit_then_spaces_the_rest() -> None:
    window = SlidingWindow(limit=3, window_s=10.0)
    waits = [window.reserve(now=100.0) for _ in range(7)]
    assert waits == [0, 0, 0, 10, 10, 10, 20]
    assert window.wait_s(100.0) == 20  # the eighth would go at 120; nothing booked by asking
    assert window.reserve(125.0) == 0  # after a quiet spell the window is free again


def test_no_window_ever_holds_more_than_the_limit() -> None:
    window = SlidingWindow(limit=20, window_s=10.0)
    starts, now = [], 0.0
    for i in range(500):  # arrivals far faster than 2 per second, with pauses
        now += 0.01 if i % 50 else 7.0
        starts.append(now + window.reserve(now))
    assert starts_in_any_window(starts, 10.0) == 20
    assert starts == sorted(starts)


def test_a_hold_pushes_every_start_past_it() -> None:
    window = SlidingWindow(limit=100, window_s=10.0)
    window.hold(until=31.5)
    assert window.reserve(20.0) == 11.5
    window.hold(until=25.0)  # an earlier hold never shortens a later one
    assert window.reserve(21.0) == 10.5


@pytest.mark.parametrize("bad", [(0, 10.0), (5, 0.0)])
def test_a_window_needs_a_positive_limit_and_length(bad: tuple[int, float]) -> None:
    with pytest.raises(ValueError):
        SlidingWindow(*bad)


def test_after_a_429_the_rest_is_past_the_window_with_jitter_and_any_retry_after() -> None:
    assert throttled_hold(10.0, 2.0, rand=0.0) == 10.0
    assert throttled_hold(10.0, 2.0, rand=0.999) == pytest.approx(11.998)
    assert throttled_hold(10.0, 2.0, rand=0.5, retry_after_s=30.0) == 30.0
    # Four tries in ~3.5 s (the old client) all landed in one window; this never does.
    assert min(throttled_hold(10.0, 2.0, r / 10) for r in range(10)) >= 10.0


async def test_the_limiter_caps_concurrency_and_rate_per_route() -> None:
    clock = FakeClock()
    limiter = RouteLimiter(RouteLimit(100, 10.0, concurrent=20), 60.0, 2.0, clock, clock.sleep)
    active = most = 0
    release = asyncio.Event()

    async def call() -> None:
        nonlocal active, most
        async with limiter.admit():
            active += 1
            most = max(most, active)
            await release.wait()
            active -= 1

    tasks = [asyncio.create_task(call()) for _ in range(64)]  # a consumer batch of cancels
    await asyncio.sleep(0.01)
    assert active == 20  # RunPod's /cancel allows 20 at once
    release.set()
    await asyncio.gather(*tasks)
    assert most == 20


async def test_the_limiter_refuses_a_wait_longer_than_allowed_and_books_nothing() -> None:
    clock = FakeClock()
    limiter = RouteLimiter(RouteLimit(2, 10.0), 5.0, 0.0, clock, clock.sleep)
    for _ in range(2):
        async with limiter.admit():
            pass
    with pytest.raises(RouteBusy) as busy:
        async with limiter.admit():
            pass
    assert busy.value.wait_s == 10.0
    clock.now += 6.0  # now the wait is 4 s: admitted after sleeping it
    async with limiter.admit():
        pass
    assert clock.sleeps == [4.0]


async def test_the_client_keeps_runpods_documented_limits_by_default() -> None:
    assert {
        "run": RouteLimit(1000, 10.0, 200),
        "status": RouteLimit(2000, 10.0),
        "cancel": RouteLimit(100, 10.0, 20),
    } == RUNPOD_LIMITS
    clock = FakeClock()
    client, sent = cancelling_client(clock, limit_max_wait_s=15.0)
    for _ in range(200):
        await client.cancel("j1")
    assert starts_in_any_window(sent, 10.0) == 100
    assert sent[-1] - sent[0] == 10.0
    await client.aclose()


async def test_a_call_that_would_wait_too_long_is_not_sent() -> None:
    clock = FakeClock()
    client, sent = cancelling_client(
        clock, limits={"cancel": RouteLimit(1, 10.0)}, limit_max_wait_s=5.0
    )
    await client.cancel("j1")
    with pytest.raises(RunPodThrottled) as throttled:
        await client.cancel("j1")  # its turn is 10 s away, more than the 5 s it may wait
    assert throttled.value.retry_in_s == 10.0
    assert len(sent) == 1
    await client.aclose()


@pytest.mark.parametrize(
    ("code", "job_call", "verdict"),
    [
        (200, False, Verdict.OK),
        (401, False, Verdict.MISCONFIGURED),
        (403, True, Verdict.MISCONFIGURED),
        (404, False, Verdict.MISCONFIGURED),  # /run, /health: the endpoint is unknown
        (404, True, Verdict.JOB_NOT_FOUND),
        (429, False, Verdict.TRANSIENT),
        (408, False, Verdict.TRANSIENT),
        (503, False, Verdict.TRANSIENT),
        (400, False, Verdict.REFUSED),
        (413, False, Verdict.REFUSED),
        (422, False, Verdict.REFUSED),
    ],
)
def test_which_answers_are_the_videos_fault(code: int, job_call: bool, verdict: Verdict) -> None:
    assert classify(code, job_call) is verdict


def test_the_access_state_reports_only_its_changes() -> None:
    state = AccessState()
    assert state.answered() is False
    assert state.refused("401") is True
    assert state.refused("401 again") is False
    assert (state.misconfigured, state.reason) == (True, "401 again")
    assert state.answered() is True
    assert state.answered() is False
