"""The jobs service's deciding rules through JobsService on the in-memory recorder: limits,
cancel, delete, RunPod facts moving states, duplicates and late facts changing nothing.
(tests/integration/test_event_store.py runs the same paths over Postgres.)"""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from openv_contracts import Envelope, Message
from openv_contracts.commands import CancelVideo, DeleteVideo, RequestVideo
from openv_contracts.envelope import derived_event_id
from openv_contracts.events import video_stream_id
from openv_contracts.facts import (
    RunPodJobCompleted,
    RunPodJobFailed,
    RunPodJobRunning,
    RunPodJobSubmitted,
    StorageObjectsDeleted,
    VideoPosterStored,
)
from openv_contracts.storage_keys import video_output_key, video_poster_key
from openv_contracts.video import VideoParams, VideoStatus
from openv_infra.failures import PermanentError
from openv_jobs.adapters.memory_recorder import MemoryRecorder, MemoryTransaction
from openv_jobs.domain.usage import Limits
from openv_jobs.service_layer.jobs_service import JobsService
from openv_jobs.service_layer.recorder import ConcurrencyConflict
from tests.jobs_messages import Clock, fact, request, vid

LIMITS = Limits(max_active_jobs=3, quota_seconds=600.0)


def types(recorder: MemoryRecorder, video_id: UUID) -> list[str]:
    return [r.type for r in recorder.streams.get(video_stream_id(video_id), [])]


def status(recorder: MemoryRecorder, video_id: UUID) -> VideoStatus:
    return recorder.states()[video_id].status


async def test_redelivered_commands_and_facts_record_nothing_new() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, LIMITS)
    req = request("alice")
    [accepted] = await service.handle(req)
    # The event's id derives from the command's: a second decision could not be appended.
    assert accepted.envelope.event_id == derived_event_id(req.event_id, 0)
    assert isinstance(accepted.appended, tuple)  # a NewEvent, as decided
    again_decided = accepted.appended._replace(stream_version=2)
    with pytest.raises(ConcurrencyConflict):
        async with recorder.transaction() as log:
            await log.append([again_decided], accepted.recorded_at)
    assert await service.handle(req) == []
    assert await service.handle_batch([req, req]) == []
    submitted = fact(RunPodJobSubmitted(video_id=vid(req), runpod_job_id="j1"), "alice")
    assert len(await service.handle_batch([submitted, submitted])) == 1
    assert await service.handle(submitted) == []
    # A different fact saying the same thing (a duplicate webhook) changes nothing either.
    again = fact(RunPodJobSubmitted(video_id=vid(req), runpod_job_id="j1"), "alice")
    assert await service.handle(again) == []
    assert types(recorder, vid(req)) == ["VideoAccepted", "VideoSubmitted"]


async def test_a_request_for_an_existing_video_reaching_a_cold_service_records_nothing() -> None:
    """A restarted service (empty cache) takes requests to name new videos without reading
    them; the recorder's conflict on the taken (stream, version) makes it decide again."""
    recorder = MemoryRecorder()
    req = request("carol")
    [_] = await JobsService(recorder, LIMITS).handle(req)
    retry = Envelope.wrap(RequestVideo.model_validate(req.data), user_id="carol")  # new id
    fresh = request("carol")
    recorded = await JobsService(recorder, LIMITS).handle_batch([req, retry, fresh])
    assert [(r.envelope.type, r.envelope.data["video_id"]) for r in recorded] == [
        ("VideoAccepted", str(vid(fresh)))
    ]
    assert types(recorder, vid(req)) == ["VideoAccepted"]
    assert recorder.usages["carol"].active_jobs == 2  # charged once per video


async def test_a_batch_written_in_chunks_is_decided_in_order_at_consecutive_positions() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, Limits(max_active_jobs=1, quota_seconds=1e9))
    await service.handle(request("first"))
    requests = [request(f"user-{i // 2}") for i in range(300)]  # several chunks
    recorded = await service.handle_batch(requests)
    assert [r.position for r in recorded] == list(range(2, 302))
    assert [r.envelope.type for r in recorded] == ["VideoAccepted", "VideoRejected"] * 150
    assert [r.envelope.event_id for r in recorded] == [
        derived_event_id(req.event_id, 0) for req in requests
    ]
    assert [(r.position, r.envelope) for r in recorder.log[1:]] == [
        (r.position, r.envelope) for r in recorded
    ]
    assert recorded[0].envelope.causation_id == requests[0].event_id
    assert recorder.checkpoints["user_usage"] == 301


async def test_twenty_concurrent_creates_for_one_user_accept_exactly_three() -> None:
    recorder = MemoryRecorder()
    services = [JobsService(recorder, LIMITS) for _ in range(4)]  # as if four consumers raced
    requests = [request("racer") for _ in range(20)]
    results = await asyncio.gather(*(services[i % 4].handle(r) for i, r in enumerate(requests)))
    decided = [r[0].envelope.type for r in results]
    assert decided.count("VideoAccepted") == 3
    assert decided.count("VideoRejected") == 17
    usage = recorder.usages["racer"]
    assert usage.active_jobs == 3
    assert usage.used_seconds == pytest.approx(3 * 31 / 24)


async def test_a_request_over_the_concurrency_limit_is_rejected_until_a_slot_frees() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, Limits(max_active_jobs=2, quota_seconds=600.0))
    first, second, third = request("dan"), request("dan"), request("dan")
    await service.handle_batch([first, second])
    [rejected] = await service.handle(third)
    assert rejected.type == "VideoRejected"
    assert rejected.envelope.data["code"] == "concurrency_limit"
    assert status(recorder, vid(third)) is VideoStatus.REJECTED
    done = RunPodJobCompleted(video_id=vid(first), runpod_job_id="j", object_key="k", size_bytes=9)
    await service.handle_batch(
        [fact(RunPodJobSubmitted(video_id=vid(first), runpod_job_id="j"), "dan"), fact(done, "dan")]
    )
    [accepted] = await service.handle(request("dan"))
    assert accepted.type == "VideoAccepted"
    await service.handle(fact(CancelVideo(video_id=vid(second)), "dan"))
    [accepted] = await service.handle(request("dan"))
    assert accepted.type == "VideoAccepted"


async def test_quota_is_charged_on_acceptance_and_refunded_on_failure() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, Limits(max_active_jobs=10, quota_seconds=10.0))
    first, second, third = (request("q", num_frames=127) for _ in range(3))  # 5.29 s each
    assert (await service.handle(first))[0].type == "VideoAccepted"
    [rejected] = await service.handle(second)
    assert (rejected.type, rejected.envelope.data["code"]) == ("VideoRejected", "quota_exceeded")
    failed = RunPodJobFailed(
        video_id=vid(first), runpod_job_id="j", code="worker_failed", message="x"
    )
    await service.handle(fact(failed, "q"))
    assert (await service.handle(third))[0].type == "VideoAccepted"


async def test_a_new_month_starts_with_nothing_charged() -> None:
    clock = Clock(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    recorder = MemoryRecorder()
    service = JobsService(recorder, Limits(max_active_jobs=10, quota_seconds=6.0), clock=clock)
    first = request("m", num_frames=127)
    assert (await service.handle(first))[0].type == "VideoAccepted"
    assert (await service.handle(request("m", num_frames=127)))[0].type == "VideoRejected"
    clock.now += timedelta(hours=2)  # December
    assert (await service.handle(request("m", num_frames=127)))[0].type == "VideoAccepted"


async def test_runpod_facts_move_a_video_forward_and_late_facts_change_nothing() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, LIMITS)
    req = request("erin")
    video = vid(req)
    await service.handle(req)
    steps: list[tuple[Message, VideoStatus]] = [
        (RunPodJobSubmitted(video_id=video, runpod_job_id="j"), VideoStatus.SUBMITTED),
        (RunPodJobRunning(video_id=video, runpod_job_id="j", progress=30), VideoStatus.RUNNING),
        (RunPodJobRunning(video_id=video, runpod_job_id="j", progress=70), VideoStatus.RUNNING),
        (
            RunPodJobCompleted(video_id=video, runpod_job_id="j", object_key="k", size_bytes=99),
            VideoStatus.COMPLETED,
        ),
    ]
    for message, expected in steps:
        assert len(await service.handle(fact(message, "erin"))) == 1
        assert status(recorder, video) is expected
    assert recorder.states()[video].object_key == "k"
    late: list[Message] = [
        RunPodJobRunning(video_id=video, runpod_job_id="j", progress=50),
        RunPodJobSubmitted(video_id=video, runpod_job_id="j"),
        RunPodJobFailed(video_id=video, runpod_job_id="j", code="worker_failed", message="x"),
        CancelVideo(video_id=video),
    ]
    assert await service.handle_batch([fact(m, "erin") for m in late]) == []
    assert types(recorder, video) == [
        "VideoAccepted",
        "VideoSubmitted",
        "VideoRunning",
        "VideoProgressed",
        "VideoCompleted",
    ]
    assert recorder.usages["erin"].active_jobs == 0
    assert recorder.usages["erin"].used_seconds == pytest.approx(31 / 24)  # charged, kept


async def test_cancel_then_delete_then_the_files_removed() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, LIMITS)
    req = request("fay")
    video = vid(req)
    await service.handle(req)
    [cancelled] = await service.handle(fact(CancelVideo(video_id=video), "fay"))
    assert cancelled.type == "VideoCancelled"
    assert recorder.usages["fay"].used_seconds == 0.0  # stopped before it ran: refunded
    assert await service.handle(fact(CancelVideo(video_id=video), "fay")) == []
    [deleted] = await service.handle(fact(DeleteVideo(video_id=video), "fay"))
    assert deleted.type == "VideoDeleted"
    assert deleted.envelope.data["object_prefix"] == recorder.states()[video].object_prefix
    assert await service.handle(fact(DeleteVideo(video_id=video), "fay")) == []
    removed = fact(StorageObjectsDeleted(video_id=video, objects_removed=1), "fay")
    assert [r.type for r in await service.handle(removed)] == ["VideoFileDeleted"]
    assert await service.handle(removed) == []
    state = recorder.states()[video]
    assert (state.status, state.file_deleted) == (VideoStatus.DELETED, True)


async def test_a_fact_for_an_unknown_video_is_ignored_and_a_request_without_a_user_refused() -> (
    None
):
    recorder = MemoryRecorder()
    service = JobsService(recorder, LIMITS)
    unknown = fact(RunPodJobSubmitted(video_id=uuid4(), runpod_job_id="j"), "gus")
    assert await service.handle(unknown) == []
    assert recorder.log == []
    anonymous = Envelope.wrap(
        RequestVideo(video_id=uuid4(), prompt="a cat", params=VideoParams(seed=1)), user_id=""
    )
    with pytest.raises(PermanentError):
        await service.handle(anonymous)


async def test_news_another_instance_recorded_is_seen_despite_the_cache() -> None:
    recorder = MemoryRecorder()
    one, other = JobsService(recorder, LIMITS), JobsService(recorder, LIMITS)
    req = request("hal")
    await one.handle(req)  # `one` caches the queued video
    await other.handle(fact(CancelVideo(video_id=vid(req)), "hal"))
    submitted = fact(RunPodJobSubmitted(video_id=vid(req), runpod_job_id="j"), "hal")
    assert await one.handle(submitted) == []  # the log's head moved: read again, cancelled
    assert types(recorder, vid(req)) == ["VideoAccepted", "VideoCancelled"]


async def test_a_batch_that_fails_after_appending_leaves_nothing_and_the_next_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, LIMITS)
    req = request("ivy")

    async def broken(*args: object) -> None:
        raise RuntimeError("usage write failed")

    monkeypatch.setattr(MemoryTransaction, "save_usages", broken)  # after the append
    with pytest.raises(RuntimeError):
        await service.handle(req)
    assert recorder.log == [] and recorder.usages == {}
    monkeypatch.undo()
    [accepted] = await service.handle(req)
    assert accepted.type == "VideoAccepted"
    assert accepted.position == 2  # like an identity, a lost transaction's position is spent


def _poster(video: UUID, user: str, key: str | None = None) -> Envelope:
    stored = VideoPosterStored(
        video_id=video,
        object_key=key or video_poster_key(user, video),
        width=160,
        height=96,
    )
    return fact(stored, user)


async def _completed(service: JobsService, user: str) -> UUID:
    req = request(user)
    video = vid(req)
    await service.handle(req)
    key = video_output_key(user, video)
    done = RunPodJobCompleted(video_id=video, runpod_job_id="j", object_key=key, size_bytes=9)
    await service.handle(fact(done, user))
    return video


async def test_a_completed_videos_poster_is_recorded_once() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, LIMITS)
    video = await _completed(service, "gus")
    poster = _poster(video, "gus")
    [added] = await service.handle(poster)
    assert added.type == "VideoPosterAdded"
    assert added.envelope.data["object_key"] == video_poster_key("gus", video)
    # The same fact again, or another saying the same (a re-extraction): nothing new.
    assert await service.handle(poster) == []
    assert await service.handle(_poster(video, "gus")) == []
    state = recorder.states()[video]
    assert (state.status, state.poster_key) == (
        VideoStatus.COMPLETED,
        video_poster_key("gus", video),
    )
    assert recorder.usages["gus"].active_jobs == 0  # usage untouched by a poster
    # A key outside the video's prefix is never taken.
    other = await _completed(service, "gus")
    assert await service.handle(_poster(other, "gus", video_poster_key("gus", video))) == []


async def test_a_poster_of_a_deleted_failed_or_unfinished_video_is_ignored() -> None:
    recorder = MemoryRecorder()
    service = JobsService(recorder, LIMITS)
    deleted = await _completed(service, "hal")
    await service.handle(fact(DeleteVideo(video_id=deleted), "hal"))
    failed = request("hal")
    await service.handle(failed)
    await service.handle(
        fact(RunPodJobFailed(video_id=vid(failed), runpod_job_id="j", code="x", message="m"), "hal")
    )
    queued = request("hal")
    await service.handle(queued)
    for video in (deleted, vid(failed), vid(queued)):
        assert await service.handle(_poster(video, "hal")) == []
        assert recorder.states()[video].poster_key is None
    assert types(recorder, deleted)[-1] == "VideoDeleted"
