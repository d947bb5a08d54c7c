"""The fault suite's invariants as pure functions of what was collected after the load.

Each check takes plain data (the event log, the topic's records, the simulator's jobs, the
bucket's keys, the gateway's views) and returns a `Check`; tests/unit/test_fault_invariants.py
feeds each one crafted inputs that break it.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

#: Events that end a video (one per stream at most); `VideoDeleted` may follow one of them
#: or end a video by itself (deleted while in flight).
OUTCOMES = frozenset(
    {"VideoCompleted", "VideoFailed", "VideoCancelled", "VideoTimedOut", "VideoRejected"}
)
_OUTCOME_STATUS = {
    "VideoCompleted": "completed",
    "VideoFailed": "failed",
    "VideoCancelled": "cancelled",
    "VideoTimedOut": "timed_out",
    "VideoRejected": "rejected",
    "VideoDeleted": "deleted",
}
#: Event types a stream holds at most once: a second one is a fact applied twice.
ONCE = frozenset(
    {"VideoAccepted", "VideoSubmitted", "VideoRunning", "VideoDeleted", "VideoFileDeleted"}
    | OUTCOMES
)
TERMINAL_STATUSES = frozenset(
    {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}
)
_EXAMPLES = 5


@dataclass(frozen=True)
class LogEvent:
    """One row of the jobs service's event log."""

    position: int
    event_id: str
    stream_id: str
    version: int
    type: str
    causation_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def video_id(self) -> str:
        return self.stream_id.removeprefix("video-")


@dataclass(frozen=True)
class TopicRecord:
    """One record of a topic read from the beginning (offset order within its partition)."""

    partition: int
    offset: int
    key: str | None
    event_id: str
    type: str
    stream_id: str | None = None
    version: int | None = None
    video_id: str | None = None


@dataclass(frozen=True)
class SimJob:
    """A job the RunPod simulator accepted: whose video, and when (time.monotonic())."""

    job_id: str
    video_id: str | None
    created: float
    #: When the bridge first took a report of it (a webhook it answered 2xx), if ever.
    reported: float | None = None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _examples(items: Iterable[Any]) -> str:
    listed = list(items)
    shown = ", ".join(str(item) for item in listed[:_EXAMPLES])
    return shown + (f" (+{len(listed) - _EXAMPLES} more)" if len(listed) > _EXAMPLES else "")


def streams(events: Iterable[LogEvent]) -> dict[str, list[LogEvent]]:
    """Events by video id, in stream-version order."""
    by_video: dict[str, list[LogEvent]] = defaultdict(list)
    for event in events:
        by_video[event.video_id].append(event)
    for stream in by_video.values():
        stream.sort(key=lambda e: e.version)
    return dict(by_video)


def log_status(stream: list[LogEvent]) -> str | None:
    """The status a stream's terminal events give it (None: not terminal)."""
    status = None
    for event in stream:
        status = _OUTCOME_STATUS.get(event.type, status)
    return status


def settled(view: Mapping[str, Any] | None) -> bool:
    """A gateway view that will not change any more: terminal, a completed video's poster
    made (it follows the completion, so the log grows until then), and a deletion's files
    gone."""
    if view is None or view.get("status") not in TERMINAL_STATUSES:
        return False
    if view["status"] == "completed":
        return view.get("poster_url") is not None
    return view["status"] != "deleted" or bool(view.get("file_deleted"))


def check_settled(
    known: Iterable[str], views: Mapping[str, Mapping[str, Any] | None], bound_s: float
) -> Check:
    """Every video the gateway acknowledged is settled in its view within the bound."""
    known = sorted(set(known))
    unsettled = [
        f"{vid}={(views.get(vid) or {}).get('status', 'missing')}"
        for vid in known
        if not settled(views.get(vid))
    ]
    statuses = Counter((views.get(vid) or {}).get("status", "missing") for vid in known)
    summary = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
    # Why videos failed: a fault should not be a reason (a worker's failure is).
    reasons = Counter(
        str(((views.get(vid) or {}).get("error") or {}).get("code", "?"))
        for vid in known
        if (views.get(vid) or {}).get("status") == "failed"
    )
    if reasons:
        summary += "; failed: " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
    if unsettled:
        return Check(
            "settled in the gateway's view",
            False,
            f"{len(unsettled)} of {len(known)} not settled within {bound_s:.0f} s: "
            f"{_examples(unsettled)}",
        )
    return Check(
        "settled in the gateway's view",
        True,
        f"{len(known)} videos within {bound_s:.0f} s ({summary})",
    )


def check_one_terminal_event(
    known: Iterable[str], events: Iterable[LogEvent], views: Mapping[str, Mapping[str, Any] | None]
) -> Check:
    """Each acknowledged video's stream ends exactly once (one outcome and/or one deletion,
    never two outcomes), and the gateway shows the status the log gives it."""
    by_video = streams(events)
    problems: list[str] = []
    for vid in sorted(set(known)):
        stream = by_video.get(vid)
        if not stream:
            problems.append(f"{vid}: no stream in the log")
            continue
        types = Counter(e.type for e in stream)
        outcomes = sum(types[t] for t in OUTCOMES)
        if outcomes > 1 or types["VideoDeleted"] > 1:
            problems.append(f"{vid}: {outcomes} outcomes, {types['VideoDeleted']} deletions")
        elif outcomes + types["VideoDeleted"] == 0:
            problems.append(f"{vid}: no terminal event")
        view = views.get(vid)
        shown = view.get("status") if view else None
        if shown != log_status(stream):
            problems.append(f"{vid}: gateway says {shown}, log says {log_status(stream)}")
    name = "exactly one terminal event per video (log = view)"
    if problems:
        return Check(name, False, f"{len(problems)} problems: {_examples(problems)}")
    return Check(name, True, f"{len(set(known))} streams")


def check_single_submission(jobs: Iterable[SimJob], bound_s: float) -> Check:
    """No video got a second RunPod job while the bridge knew of its first one. A `/run` whose
    outcome the bridge never learnt (a lost answer, a crash or a database outage before the
    answer was recorded) may be followed by another, but only after the attempt's lease and
    the hold for its job to report (`bound_s`; docs/architecture.md, "One GPU job per video"),
    and only if that job had not reported by then (a job that reports is adopted)."""
    by_video: dict[str, list[SimJob]] = defaultdict(list)
    for job in jobs:
        by_video[job.video_id or "?"].append(job)
    excused: list[str] = []
    doubled: list[str] = []
    for vid, its in sorted(by_video.items()):
        its.sort(key=lambda j: j.created)
        for before, extra in pairwise(its):
            known = before.reported is not None and before.reported <= extra.created
            soon = extra.created - before.created < bound_s
            pair = f"{vid}: {before.job_id} then {extra.job_id}"
            (doubled if known or soon else excused).append(pair)
    total = sum(len(its) for its in by_video.values())
    name = "one RunPod job per video (/run count)"
    if doubled:
        return Check(name, False, f"{len(doubled)} extra jobs: {_examples(doubled)}")
    return Check(
        name,
        True,
        f"{total} jobs for {len(by_video)} videos; {len(excused)} extra, each sent after the "
        f"documented bound (lease + hold = {bound_s:.0f} s) with no report of the first",
    )


def check_objects(events: Iterable[LogEvent], keys: Iterable[str]) -> Check:
    """No object under a deleted video's prefix; a completed (not deleted) video has its file."""
    objects: dict[str, set[str]] = defaultdict(set)
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 4 and parts[0] == "videos":
            objects[parts[2]].add(key)
    problems: list[str] = []
    completed = deleted = 0
    for vid, stream in streams(events).items():
        status = log_status(stream)
        if status == "deleted":
            deleted += 1
            if objects.get(vid):
                problems.append(f"{vid} deleted, still has {_examples(sorted(objects[vid]))}")
        elif status == "completed":
            completed += 1
            done = next(e for e in stream if e.type == "VideoCompleted")
            if done.data.get("object_key") not in objects.get(vid, set()):
                problems.append(f"{vid} completed, {done.data.get('object_key')} missing")
    name = "objects: none of deleted videos, every completed one's"
    if problems:
        return Check(name, False, f"{len(problems)} problems: {_examples(problems)}")
    return Check(name, True, f"{deleted} deleted videos empty, {completed} completed files there")


def _row_diff(
    live: Mapping[str, Mapping[str, Any]], rebuilt: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    diffs = [f"{key} only live" for key in live.keys() - rebuilt.keys()]
    diffs += [f"{key} only rebuilt" for key in rebuilt.keys() - live.keys()]
    for key in live.keys() & rebuilt.keys():
        cols = [c for c in live[key] if live[key][c] != rebuilt[key].get(c)]
        if cols:
            diffs.append(f"{key}: {', '.join(sorted(cols))}")
    return sorted(diffs)


def check_projections(
    live_videos: Mapping[str, Mapping[str, Any]],
    rebuilt_videos: Mapping[str, Mapping[str, Any]],
    live_usage: Mapping[str, Mapping[str, Any]],
    rebuilt_usage: Mapping[str, Mapping[str, Any]],
) -> Check:
    """The live projections equal a rebuild from the log, row by row, column by column."""
    diffs = [f"videos {d}" for d in _row_diff(live_videos, rebuilt_videos)]
    diffs += [f"user_usage {d}" for d in _row_diff(live_usage, rebuilt_usage)]
    name = "projections = rebuild from the log"
    if diffs:
        return Check(name, False, f"{len(diffs)} differences: {_examples(diffs)}")
    return Check(name, True, f"{len(live_videos)} videos, {len(live_usage)} users equal")


def check_relayed(events: Iterable[LogEvent], records: Iterable[TopicRecord]) -> Check:
    """Every stored event is on the topic, keyed by its video, first seen in stream order;
    nothing is on the topic that the log does not hold (redeliveries are allowed)."""
    events, records = list(events), list(records)
    by_id = {e.event_id: e for e in events}
    first: dict[str, TopicRecord] = {}
    problems: list[str] = []
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = by_id.get(record.event_id)
        if event is None:
            problems.append(f"{record.event_id} on the topic, not in the log")
            continue
        if record.key != event.video_id:
            problems.append(f"{record.event_id} keyed {record.key}, not {event.video_id}")
        first.setdefault(record.event_id, record)
    missing = [e.event_id for e in events if e.event_id not in first]
    if missing:
        problems.append(f"{len(missing)} never relayed: {_examples(missing)}")
    for vid, stream in streams(events).items():
        seen = [first[e.event_id] for e in stream if e.event_id in first]
        order = [(r.partition, r.offset) for r in seen]
        if order != sorted(order) or len({p for p, _ in order}) > 1:
            problems.append(f"{vid}: out of order on the topic")
    name = "every event relayed, in order per video"
    if problems:
        return Check(name, False, f"{len(problems)} problems: {_examples(problems)}")
    return Check(name, True, f"{len(events)} events, {len(records)} records")


def check_applied_once(events: Iterable[LogEvent], storage_facts: Iterable[TopicRecord]) -> Check:
    """No message was applied twice. In the log: stream versions run 1..n without a gap, no
    source message (causation id) caused two events, and no once-only fact (submitted,
    running, an outcome, deletion, file deletion) is in a stream twice. From storage: each
    video's removal was reported under one fact id (a redelivery repeats the same one)."""
    events = list(events)
    problems: list[str] = []
    causes = Counter(e.causation_id for e in events if e.causation_id)
    twice = sorted(cause for cause, n in causes.items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} messages caused two events: {_examples(twice)}")
    for vid, stream in streams(events).items():
        versions = [e.version for e in stream]
        if versions != list(range(1, len(stream) + 1)):
            problems.append(f"{vid}: versions {versions}")
        repeated = sorted(t for t, n in Counter(e.type for e in stream).items() if n > 1)
        if set(repeated) & ONCE:
            problems.append(f"{vid}: {', '.join(sorted(set(repeated) & ONCE))} twice")
    fact_ids: dict[str, set[str]] = defaultdict(set)
    for fact in storage_facts:
        if fact.type == "StorageObjectsDeleted":
            fact_ids[fact.video_id or fact.key or "?"].add(fact.event_id)
    removed_twice = sorted(vid for vid, ids in fact_ids.items() if len(ids) > 1)
    if removed_twice:
        problems.append(f"removals reported under two ids: {_examples(removed_twice)}")
    name = "no message applied twice"
    if problems:
        return Check(name, False, f"{len(problems)} problems: {_examples(problems)}")
    return Check(
        name,
        True,
        f"{len(events)} events, {len(causes)} causes once each; {len(fact_ids)} removals once",
    )


def check_no_server_errors(statuses: Mapping[str, Counter[str]], bad: Iterable[str]) -> Check:
    """No 5xx from the gateway but a 503 with Retry-After."""
    bad = list(bad)
    total = sum(sum(c.values()) for c in statuses.values())
    name = "no 500 from the gateway"
    if bad:
        return Check(name, False, f"{len(bad)} of {total} answers: {_examples(bad)}")
    return Check(name, True, f"{total} requests")
