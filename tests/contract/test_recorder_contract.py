"""What JobsService relies on of a recorder (service_layer/recorder.py), held against every
implementation: the in-memory one and the Postgres one (conftest.py)."""

import asyncio
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest

from openv_contracts import Envelope
from openv_contracts.commands import RequestVideo
from openv_contracts.envelope import derived_event_id
from openv_contracts.events import VideoAccepted, VideoSubmitted, video_stream_id
from openv_contracts.video import VideoParams, VideoStatus
from openv_jobs.domain.projection import fold_video
from openv_jobs.domain.usage import Usage
from openv_jobs.service_layer.recorder import ConcurrencyConflict, NewEvent
from tests.contract.conftest import NewRecorder

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def accepted(video_id: UUID, user: str = "alice") -> NewEvent:
    cause = Envelope.wrap(
        RequestVideo(video_id=video_id, prompt="a cat", params=VideoParams(seed=1)), user_id=user
    )
    message = VideoAccepted(
        video_id=video_id,
        prompt="a cat",
        params=VideoParams(seed=1),
        duration_seconds=31 / 24,
        charged_seconds=31 / 24,
        object_prefix=f"videos/{user}/{video_id}/",
    )
    stream = video_stream_id(video_id)
    return NewEvent(cause, message, derived_event_id(cause.event_id, 0), user, stream, 1, AT)


def submitted(first: NewEvent, job: str = "job-1", version: int = 2) -> NewEvent:
    message = VideoSubmitted(video_id=first.message.video_id, runpod_job_id=job)  # type: ignore[attr-defined]
    cause = Envelope.wrap(message, user_id=first.user_id)
    event_id = derived_event_id(cause.event_id, 0)
    return first._replace(cause=cause, message=message, event_id=event_id, stream_version=version)


async def test_an_empty_log_has_head_zero_and_knows_nothing(new_recorder: NewRecorder) -> None:
    async with new_recorder().transaction() as log:
        assert await log.head() == 0
        assert await log.load_states([uuid4()]) == {}
        assert await log.load_usages(["nobody"]) == {}


async def test_appended_events_are_numbered_in_order_and_fold_into_states(
    new_recorder: NewRecorder,
) -> None:
    recorder = new_recorder()
    one, two = accepted(uuid4()), accepted(uuid4(), "bob")
    events = [one, two, submitted(one)]
    async with recorder.transaction() as log:
        await log.append(events[:2], AT)
        await log.append(events[2:], AT)  # numbered tells every append since it last asked
        recorded = await log.numbered(events, AT)
    assert [r.position for r in recorded] == [1, 2, 3]
    assert [r.appended for r in recorded] == events
    assert [r.envelope.event_id for r in recorded] == [e.event_id for e in events]

    video_one, video_two, unknown = one.message.video_id, two.message.video_id, uuid4()  # type: ignore[attr-defined]
    async with recorder.transaction() as log:
        assert await log.head() == 3
        states = await log.load_states([video_one, video_two, unknown])
    first = fold_video(None, one.message, "alice", AT)
    assert states == {
        video_one: fold_video(first, events[2].message, "alice", AT),
        video_two: fold_video(None, two.message, "bob", AT),
    }
    assert (states[video_one].status, states[video_one].version) == (VideoStatus.SUBMITTED, 2)
    assert states[video_two].user_id == "bob"


async def test_a_taken_stream_version_is_a_conflict_and_keeps_nothing(
    new_recorder: NewRecorder,
) -> None:
    recorder, first = new_recorder(), accepted(uuid4())
    async with recorder.transaction() as log:
        await log.append([first], AT)
    other = submitted(first, version=1)  # another writer's event at a version now taken
    with pytest.raises(ConcurrencyConflict):
        async with recorder.transaction() as log:
            await log.append([submitted(first, "job-0")], AT)  # version 2: fine so far
            await log.append([other], AT)
    async with recorder.transaction() as log:
        assert await log.head() == 1
        [state] = (await log.load_states([first.message.video_id])).values()  # type: ignore[attr-defined]
    assert (state.status, state.version) == (VideoStatus.QUEUED, 1)


async def test_an_event_appended_already_is_a_conflict_even_at_a_free_version(
    new_recorder: NewRecorder,
) -> None:
    """Idempotency by cause: an event's id derives from its cause, so the same decision
    appended twice (a redelivered message) is refused whatever version it claims."""
    recorder, first = new_recorder(), accepted(uuid4())
    async with recorder.transaction() as log:
        await log.append([first], AT)
    with pytest.raises(ConcurrencyConflict):
        async with recorder.transaction() as log:
            await log.append([first._replace(stream_version=2)], AT)
    with pytest.raises(ConcurrencyConflict):  # twice in one append: none of it is kept
        async with recorder.transaction() as log:
            again = submitted(first)
            await log.append([again, again._replace(stream_version=3)], AT)
    async with recorder.transaction() as log:
        assert await log.head() == 1


async def test_a_transaction_that_raises_keeps_nothing_and_positions_only_grow(
    new_recorder: NewRecorder,
) -> None:
    recorder, first, lost = new_recorder(), accepted(uuid4()), accepted(uuid4())
    async with recorder.transaction() as log:
        await log.append([first], AT)
        await log.save_usages([Usage("alice", 1, date(2026, 11, 1), 1.0)], 1)
    with pytest.raises(RuntimeError):
        async with recorder.transaction() as log:
            await log.append([lost], AT)
            await log.save_usages([Usage("alice", 2, date(2026, 11, 1), 2.0)], 2)
            raise RuntimeError("deciding failed")
    async with recorder.transaction() as log:
        assert await log.head() == 1
        assert await log.load_states([lost.message.video_id]) == {}  # type: ignore[attr-defined]
        assert await log.load_usages(["alice"]) == {
            "alice": Usage("alice", 1, date(2026, 11, 1), 1.0)
        }
        later = accepted(uuid4())
        await log.append([later], AT)
        [recorded] = await log.numbered([later], AT)
    assert recorded.position > 1


async def test_usages_are_saved_replaced_and_loaded_back(new_recorder: NewRecorder) -> None:
    recorder = new_recorder()
    november, december = date(2026, 11, 1), date(2026, 12, 1)
    async with recorder.transaction() as log:
        await log.append([accepted(uuid4())], AT)
        await log.save_usages([Usage("alice", 1, november, 1.5), Usage("bob", 0, november, 0.0)], 1)
    async with recorder.transaction() as log:
        await log.save_usages([Usage("alice", 0, december, 0.0)], 1)
    async with recorder.transaction() as log:
        assert await log.load_usages(["alice", "bob", "carol"]) == {
            "alice": Usage("alice", 0, december, 0.0),
            "bob": Usage("bob", 0, november, 0.0),
        }


async def test_one_transaction_at_a_time_across_writers(new_recorder: NewRecorder) -> None:
    """The append lock: a second writer's transaction begins only once the first ended, and
    then sees what it appended."""
    first_writer, second_writer = new_recorder(), new_recorder()
    holding, release = asyncio.Event(), asyncio.Event()
    seen: list[int] = []

    async def first() -> None:
        async with first_writer.transaction() as log:
            await log.append([accepted(uuid4())], AT)
            holding.set()
            await release.wait()

    async def second() -> None:
        await holding.wait()
        async with second_writer.transaction() as log:
            seen.append(await log.head())

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await holding.wait()
    await asyncio.sleep(0.3)
    assert seen == []  # still waiting for the lock
    release.set()
    await asyncio.gather(*tasks)
    assert seen == [1]
