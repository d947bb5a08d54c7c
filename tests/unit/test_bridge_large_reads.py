"""Large reports read from /status (webhooks over the body limit) are bounded: a few at a
time, and one per video whatever RunPod retries, so a burst cannot exhaust memory."""

import asyncio
from uuid import uuid4

from openv_bridge.domain.record import Submission
from openv_bridge.domain.submissions import SubmissionState
from openv_bridge.service_layer import outputs


def _sub() -> Submission:
    return Submission(
        video_id=uuid4(),
        user_id="u",
        object_key="k",
        runpod_job_id="job-1",
        state=SubmissionState.SUBMITTED,
    )


async def test_large_reads_run_a_few_at_a_time_and_once_per_video() -> None:
    running = peak = 0
    release = asyncio.Event()
    polled: list[Submission] = []

    async def poll(sub: Submission) -> None:
        nonlocal running, peak
        polled.append(sub)
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    subs = [_sub() for _ in range(5)]
    reads = [asyncio.create_task(outputs.read_from_status(poll, sub)) for sub in subs]
    # RunPod delivers the first video's webhook twice more while its read is in progress.
    again = [asyncio.create_task(outputs.read_from_status(poll, subs[0])) for _ in range(2)]
    await asyncio.sleep(0.05)
    assert running == outputs.LARGE_READS_AT_ONCE
    await asyncio.gather(*again)  # returned at once: the read in progress settles it
    release.set()
    await asyncio.gather(*reads)
    assert peak == outputs.LARGE_READS_AT_ONCE
    assert sorted(s.video_id for s in polled) == sorted(s.video_id for s in subs)
