"""How batch handlers built from one-envelope handlers order and overlap their work."""

import asyncio
from uuid import uuid4

import pytest

from openv_contracts import Envelope
from openv_contracts.events import VideoSubmitted, video_stream_id
from openv_infra.consuming import per_key_concurrently


def event(video: str, n: int) -> Envelope:
    return Envelope.wrap(
        VideoSubmitted(video_id=uuid4(), runpod_job_id=f"{video}-{n}"),
        user_id="u",
        stream_id=video_stream_id(uuid4()) if video == "?" else video,
        stream_version=n,
    )


async def test_one_keys_envelopes_run_in_order_and_different_keys_side_by_side() -> None:
    log: list[str] = []
    running = peak = 0

    async def handle(envelope: Envelope) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        log.append(f"start {envelope.data['runpod_job_id']}")
        # The first event of "a" is slow: "b" and "c" must not wait for it.
        await asyncio.sleep(0.05 if envelope.data["runpod_job_id"] == "a-1" else 0.001)
        log.append(f"end {envelope.data['runpod_job_id']}")
        running -= 1

    batch = [event("a", 1), event("b", 1), event("a", 2), event("c", 1), event("b", 2)]
    await per_key_concurrently(handle, key=lambda e: e.stream_id, limit=8)(batch)
    ended = [x.removeprefix("end ") for x in log if x.startswith("end ")]
    assert ended.index("a-1") < ended.index("a-2")  # one key: in order
    assert ended.index("b-1") < ended.index("b-2")
    assert ended.index("b-2") < ended.index("a-1")  # other keys went on meanwhile
    assert log.index("start a-2") > log.index("end a-1")  # never two of one key at once
    assert peak == 3


async def test_at_most_limit_keys_at_once() -> None:
    running = peak = 0

    async def handle(envelope: Envelope) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    await per_key_concurrently(handle, key=lambda e: e.event_id, limit=3)(
        [event("?", 1) for _ in range(10)]
    )
    assert peak == 3


async def test_an_error_is_raised_once_every_key_was_handled() -> None:
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        if envelope.data["runpod_job_id"] == "a-1":
            raise RuntimeError("RunPod is down")
        handled.append(envelope.data["runpod_job_id"])

    batch = [event("a", 1), event("a", 2), event("b", 1), event("c", 1)]
    with pytest.raises(RuntimeError, match="RunPod is down"):
        await per_key_concurrently(handle, key=lambda e: e.stream_id, limit=8)(batch)
    assert sorted(handled) == ["b-1", "c-1"]  # a-2 waits for a-1: redelivered with the batch
