"""The jobs service's cache of decided states and usages (service_layer/state_cache.py)."""

from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from openv_contracts.commands import RequestVideo
from openv_contracts.video import VideoParams
from openv_jobs.domain.decisions import decide_request
from openv_jobs.domain.usage import Limits, Usage, period_of
from openv_jobs.domain.video import VideoState, start
from openv_jobs.service_layer.state_cache import StateCache

AT = datetime(2026, 12, 3, tzinfo=UTC)
LIMITS = Limits(max_active_jobs=3, quota_seconds=600.0)


def _state(video_id: UUID) -> VideoState:
    """The state a request for `video_id` starts, decided as the jobs service decides it."""
    command = RequestVideo(video_id=video_id, prompt="a cat", params=VideoParams(seed=1))
    usage = Usage("alice", 0, period_of(AT), 0.0)
    [accepted] = decide_request(None, command, "alice", usage, LIMITS)
    return start(accepted, "alice", AT)


def test_committed_entries_are_found_by_their_ids_and_the_rest_are_missing() -> None:
    cache = StateCache(capacity=10)
    known, unknown = uuid4(), uuid4()
    usage = Usage("alice", 1, date(2026, 12, 1), 1.5)
    cache.committed(7, {known: _state(known)}, {"alice": usage})

    found, missing = cache.videos([known, unknown])
    assert found == {known: _state(known)}
    assert missing == [unknown]
    assert cache.usages(["alice", "bob"]) == ({"alice": usage}, ["bob"])


def test_the_least_recently_committed_entry_is_evicted_first() -> None:
    cache = StateCache(capacity=2)
    first, second, third = uuid4(), uuid4(), uuid4()
    cache.committed(1, {first: _state(first), second: _state(second)}, {})
    cache.committed(2, {first: _state(first)}, {})  # read again by a later batch
    cache.committed(3, {third: _state(third)}, {})

    found, missing = cache.videos([first, second, third])
    assert set(found) == {first, third}
    assert missing == [second]


def test_another_head_forgets_everything() -> None:
    cache = StateCache(capacity=10)
    video_id = uuid4()
    cache.committed(5, {video_id: _state(video_id)}, {})
    cache.check(5)
    assert video_id in cache.videos([video_id])[0]
    cache.check(6)  # someone else appended since
    assert cache.videos([video_id]) == ({}, [video_id])
    assert cache.head is None
