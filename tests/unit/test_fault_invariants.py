"""The fault suite's invariant checks (tests/faults/invariants.py) hold on consistent data and
break on each crafted inconsistency: a check that cannot fail would prove nothing."""

from collections import Counter
from typing import Any

from tests.faults.invariants import (
    LogEvent,
    SimJob,
    TopicRecord,
    check_applied_once,
    check_no_server_errors,
    check_objects,
    check_one_terminal_event,
    check_projections,
    check_relayed,
    check_settled,
    check_single_submission,
)

A, B = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
KEY_A = f"videos/u1/{A}/video.mp4"


def _log(*streams: tuple[str, list[str]]) -> list[LogEvent]:
    events, position = [], 0
    for vid, types in streams:
        for version, kind in enumerate(types, start=1):
            position += 1
            data = {"object_key": f"videos/u1/{vid}/video.mp4"} if kind == "VideoCompleted" else {}
            events.append(
                LogEvent(
                    position, f"e{position}", f"video-{vid}", version, kind, f"c{position}", data
                )
            )
    return events


def _good_log() -> list[LogEvent]:
    return _log(
        (A, ["VideoAccepted", "VideoSubmitted", "VideoRunning", "VideoCompleted"]),
        (B, ["VideoAccepted", "VideoDeleted", "VideoFileDeleted"]),
    )


VIEWS: dict[str, dict[str, Any] | None] = {
    A: {"status": "completed", "poster_url": "http://s3/poster.jpg"},
    B: {"status": "deleted", "file_deleted": True},
}


def _records(events: list[LogEvent]) -> list[TopicRecord]:
    return [
        TopicRecord(0 if e.video_id == A else 1, i, e.video_id, e.event_id, e.type)
        for i, e in enumerate(events)
    ]


def test_settled_needs_every_video_terminal_and_deletions_confirmed() -> None:
    assert check_settled([A, B], VIEWS, 60).ok
    assert not check_settled([A, B], {**VIEWS, A: {"status": "running"}}, 60).ok
    assert not check_settled([A, B], {**VIEWS, B: {"status": "deleted"}}, 60).ok
    # A completed video gets its poster: until then its history still grows.
    assert not check_settled([A, B], {**VIEWS, A: {"status": "completed"}}, 60).ok
    assert not check_settled([A, B], {A: VIEWS[A]}, 60).ok


def test_one_terminal_event_per_stream() -> None:
    assert check_one_terminal_event([A, B], _good_log(), VIEWS).ok
    twice = _log((A, ["VideoAccepted", "VideoCancelled", "VideoCompleted"]))
    assert not check_one_terminal_event([A], twice, {A: {"status": "cancelled"}}).ok
    none = _log((A, ["VideoAccepted", "VideoSubmitted"]))
    assert not check_one_terminal_event([A], none, {A: {"status": "submitted"}}).ok
    # The gateway shows another status than the log gives.
    assert not check_one_terminal_event([A, B], _good_log(), {**VIEWS, A: {"status": "failed"}}).ok
    # An acknowledged video the log does not hold.
    assert not check_one_terminal_event([A, B], _good_log()[:4], VIEWS).ok


def test_a_second_runpod_job_is_excused_only_after_the_lease_and_the_hold() -> None:
    one_each = [SimJob("j1", A, 10.0), SimJob("j2", B, 11.0)]
    assert check_single_submission(one_each, 25).ok
    assert not check_single_submission([SimJob("j1", A, 10.0), SimJob("j2", A, 30.0)], 25).ok
    assert check_single_submission([SimJob("j1", A, 10.0), SimJob("j2", A, 40.0)], 25).ok
    # Each job counts against the one before it.
    three = [SimJob("j1", A, 10.0), SimJob("j2", A, 40.0), SimJob("j3", A, 41.0)]
    assert not check_single_submission(three, 25).ok
    # Sent again after the bridge took the first one's report: it knew, whenever that was.
    reported = [SimJob("j1", A, 10.0, reported=12.0), SimJob("j2", A, 60.0)]
    assert not check_single_submission(reported, 25).ok
    reported_late = [SimJob("j1", A, 10.0, reported=61.0), SimJob("j2", A, 60.0)]
    assert check_single_submission(reported_late, 25).ok


def test_objects_of_deleted_videos_are_gone_and_completed_ones_are_there() -> None:
    assert check_objects(_good_log(), [KEY_A, f"videos/u1/{A}/uploads/1-x.mp4"]).ok
    assert not check_objects(_good_log(), []).ok
    assert not check_objects(_good_log(), [KEY_A, f"videos/u1/{B}/uploads/1-x.mp4"]).ok


def test_projections_must_equal_the_rebuild() -> None:
    videos = {A: {"status": "completed", "version": 4}}
    usage = {"u1": {"active_jobs": 0}}
    assert check_projections(videos, dict(videos), usage, dict(usage)).ok
    assert not check_projections(videos, {A: {"status": "running", "version": 4}}, usage, usage).ok
    assert not check_projections(videos, {}, usage, usage).ok
    assert not check_projections(videos, videos, usage, {"u1": {"active_jobs": 1}}).ok


def test_every_event_relayed_in_order_per_video() -> None:
    events = _good_log()
    records = _records(events)
    assert check_relayed(events, records).ok
    # A redelivered step (the relay's checkpoint trails the broker) is fine.
    assert check_relayed(events, [*records, records[1], records[2]]).ok
    assert not check_relayed(events, records[:-1]).ok  # one never relayed
    swapped = [*records]
    swapped[1], swapped[2] = (
        TopicRecord(0, 1, A, records[2].event_id, records[2].type),
        TopicRecord(0, 2, A, records[1].event_id, records[1].type),
    )
    assert not check_relayed(events, swapped).ok  # out of order
    wrong_key = [*records[:-1], TopicRecord(1, 99, A, records[-1].event_id, "x")]
    assert not check_relayed(events, wrong_key).ok
    assert not check_relayed(events, [*records, TopicRecord(0, 100, A, "phantom", "x")]).ok


def test_no_message_applied_twice() -> None:
    events = _good_log()
    purged = TopicRecord(1, 0, B, "f1", "StorageObjectsDeleted", video_id=B)
    assert check_applied_once(events, [purged, purged]).ok
    again = TopicRecord(1, 1, B, "f2", "StorageObjectsDeleted", video_id=B)
    assert not check_applied_once(events, [purged, again]).ok
    same_cause = [*events[:3], LogEvent(4, "e4", f"video-{A}", 4, "VideoProgressed", "c3")]
    assert not check_applied_once(same_cause, []).ok
    running_twice = _log((A, ["VideoAccepted", "VideoRunning", "VideoRunning"]))
    assert not check_applied_once(running_twice, []).ok
    gap = [*events[:2], LogEvent(3, "e3", f"video-{A}", 4, "VideoCompleted", "c3")]
    assert not check_applied_once(gap, []).ok


def test_server_errors_other_than_503_with_retry_after_fail() -> None:
    answers = {"create": Counter({"202": 3, "503": 1, "refused": 2})}
    assert check_no_server_errors(answers, []).ok
    assert not check_no_server_errors(answers, ["create POST /v1/videos -> 500"]).ok
