"""The envelope and the versioned message registry."""

from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from openv_contracts import Envelope, UnknownMessageType
from openv_contracts.commands import RequestVideo
from openv_contracts.events import VideoFailed
from openv_contracts.upcasting import upcast, upcaster
from openv_contracts.video import VideoParams, VideoStatus


def test_envelope_round_trips_through_json_and_keeps_the_typed_message() -> None:
    cmd = RequestVideo(video_id=uuid4(), prompt="a dog", params=VideoParams(seed=3))
    env = Envelope.wrap(cmd, user_id="bob", trace_context={"traceparent": "00-abc-def-01"})
    again = Envelope.model_validate_json(env.model_dump_json())
    assert again == env
    assert again.message() == cmd
    assert again.correlation_id == env.event_id


def test_follow_keeps_correlation_and_sets_causation() -> None:
    cmd = RequestVideo(video_id=uuid4(), prompt="a dog", params=VideoParams(seed=3))
    env = Envelope.wrap(cmd, user_id="bob")
    failed = VideoFailed(video_id=cmd.video_id, code="x", message="y")
    child = env.follow(failed, stream_id="s", stream_version=2)
    assert child.causation_id == env.event_id
    assert child.correlation_id == env.correlation_id
    assert child.user_id == "bob"
    assert (child.stream_id, child.stream_version) == ("s", 2)


def test_unknown_type_is_refused() -> None:
    env = Envelope(type="NoSuchThing", schema_version=1, data={})
    with pytest.raises(UnknownMessageType):
        env.message()


@pytest.mark.parametrize(
    "params",
    [
        {"seed": 1, "width": 500},  # not a multiple of 16
        {"seed": 1, "height": 864},  # above 848
        {"seed": 1, "num_frames": 30},  # (30 - 1) % 6 != 0
        {"seed": -1},
        {"seed": 1, "steps": 66},
        {"seed": 1, "cfg": 0.5},
    ],
)
def test_video_params_enforce_the_worker_bounds(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        VideoParams.model_validate(params)


def test_older_schema_versions_are_upcast_on_read() -> None:
    @upcaster("TestRenamed", 1)
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"new_name": data["old_name"]}

    assert upcast("TestRenamed", 1, 2, {"old_name": "x"}) == {"new_name": "x"}
    with pytest.raises(ValueError, match="no upcaster"):
        upcast("TestRenamed", 2, 3, {})


def test_a_stored_v1_rejection_loads_without_a_retry_time() -> None:
    from openv_contracts.events import VideoRejected

    raw = Envelope.wrap(
        RequestVideo(video_id=uuid4(), prompt="p", params=VideoParams(seed=1)), user_id="bob"
    ).model_dump(mode="json")
    data = {
        "video_id": str(uuid4()),
        "prompt": "a dog",
        "params": VideoParams(seed=3).model_dump(mode="json"),
        "code": "quota_exceeded",
        "message": "no seconds left",
    }
    raw.update(type="VideoRejected", schema_version=1, data=data)
    message = Envelope.model_validate(raw).message()
    assert isinstance(message, VideoRejected)
    assert (message.code, message.retry_at) == ("quota_exceeded", None)


def test_derived_event_ids_are_deterministic_distinct_and_version_8() -> None:
    from uuid import uuid4

    from openv_contracts.envelope import derived_event_id

    causes = [uuid4() for _ in range(200)]
    ids = [derived_event_id(c, i) for c in causes for i in range(10)]
    assert len(set(ids)) == len(ids)  # per cause and index
    assert set(ids).isdisjoint(causes)
    assert [derived_event_id(c, 3) for c in causes] == [derived_event_id(c, 3) for c in causes]
    assert {(u.version, u.variant) for u in ids} == {(8, "specified in RFC 4122")}
    # Fixed forever: events already in logs carry these ids.
    cause = UUID("12345678-1234-4234-9234-123456789abc")
    assert [str(derived_event_id(cause, i)) for i in (0, 1, 9)] == [
        "42ab0c92-8db3-8971-9b6e-a3735ff0a26c",
        "a70997f7-8afd-8cd5-b755-9dd297a8943f",
        "672eaecc-2093-8788-8d99-99cf9dc7d88b",
    ]
    assert derived_event_id(cause, 0) == UUID("42ab0c92-8db3-8971-9b6e-a3735ff0a26c")


def test_wrapped_envelopes_equal_validated_ones() -> None:
    """Envelope.wrap builds without validating (its arguments are typed); what it builds
    must be exactly what validation would give, field for field and on the wire."""
    from datetime import UTC, datetime

    cmd = RequestVideo(video_id=uuid4(), prompt="a cat", params=VideoParams(seed=3))
    wrapped = Envelope.wrap(
        cmd,
        user_id="u1",
        stream_id="video-x",
        stream_version=2,
        causation_id=uuid4(),
        trace_context={"traceparent": "00-1-2-01"},
        occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    validated = Envelope.model_validate(wrapped.model_dump())
    assert wrapped == validated
    assert wrapped.model_dump_json() == validated.model_dump_json()
    assert wrapped.model_fields_set == validated.model_fields_set
    assert wrapped.model_copy(update={"stream_version": 3}).stream_version == 3
    assert Envelope.model_validate_json(wrapped.model_dump_json()) == wrapped
    assert wrapped.message() == cmd
    with pytest.raises(ValidationError):  # still frozen
        wrapped.type = "other"  # type: ignore[misc]
    follower = wrapped.follow(cmd)
    assert (follower.user_id, follower.causation_id) == ("u1", wrapped.event_id)
    assert follower.correlation_id == wrapped.correlation_id


@pytest.mark.parametrize(
    ("active_jobs", "used_seconds"),
    [(0, 0.0), (3, 0.0), (0, 600.0)],  # accepted; rejected at the concurrency limit, the quota
)
def test_the_view_of_a_decision_is_the_jobs_services_own(
    active_jobs: int, used_seconds: float
) -> None:
    """The gateway answers a create from the decision it reads on the video-events topic;
    that view must be exactly the one the jobs service folds and serves at version 1."""
    from datetime import UTC, datetime

    from openv_contracts.events import video_stream_id
    from openv_contracts.queries import decided_view
    from openv_jobs.adapters.queries import _view
    from openv_jobs.domain.decisions import decide_request
    from openv_jobs.domain.projection import fold_video
    from openv_jobs.domain.usage import Limits, Usage
    from openv_jobs.service_layer.recorder import NewEvent

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    cmd = RequestVideo(video_id=uuid4(), prompt="a cat", params=VideoParams(seed=5))
    request = Envelope.wrap(cmd, user_id="alice")
    usage = Usage("alice", active_jobs, now.date().replace(day=1), used_seconds)
    [event] = decide_request(None, cmd, "alice", usage, Limits(max_active_jobs=3))
    decided = NewEvent(request, event, uuid4(), "alice", video_stream_id(cmd.video_id), 1, now)
    # As the relay publishes it: the envelope, through JSON.
    published = Envelope.model_validate_json(decided.envelope().model_dump_json())
    view = decided_view(published)
    assert view == _view(fold_video(None, event, "alice", now))
    assert view is not None and view.poster_key is None  # no decision has a poster yet
    if used_seconds:  # the quota refusal tells when to try again
        assert view is not None and view.error is not None
        assert view.error.retry_at == datetime(2026, 12, 1, tzinfo=UTC)
    later = published.model_copy(update={"stream_version": 2})
    assert decided_view(later) is None


def test_a_decided_event_is_stored_as_the_row_of_its_envelope() -> None:
    """The decision path writes a NewEvent's row without building its envelope; the row must
    be the one the envelope itself would give."""
    from datetime import UTC, datetime

    from openv_contracts.events import VideoSubmitted, video_stream_id
    from openv_jobs.adapters.event_store import _row
    from openv_jobs.service_layer.recorder import NewEvent

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    video_id = uuid4()
    cause = Envelope.wrap(
        RequestVideo(video_id=video_id, prompt="a cat", params=VideoParams(seed=5)),
        user_id="alice",
        correlation_id=uuid4(),
        trace_context={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
    )
    event = VideoSubmitted(video_id=video_id, runpod_job_id="job-1")
    decided = NewEvent(cause, event, uuid4(), "alice", video_stream_id(video_id), 2, now)
    assert _row(decided, now) == _row(decided.envelope(), now)


@pytest.mark.parametrize(
    "message_type",
    ["RequestVideo", "VideoAccepted", "VideoRejected", "RunPodJobCompleted", "VideoDeleted"],
)
def test_messages_from_a_newer_release_with_unknown_fields_are_understood(
    message_type: str,
) -> None:
    """A rolling deploy: the new release adds a field (top level and inside `params`); the
    old release must still handle the message, not dead-letter it."""
    params = {**VideoParams(seed=3).model_dump(), "motion_strength": 0.7}
    data: dict[str, Any] = {
        "video_id": str(uuid4()),
        "prompt": "a dog",
        "params": params,
        "duration_seconds": 31 / 24,
        "charged_seconds": 31 / 24,
        "object_prefix": "videos/u/v/",
        "code": "x",
        "message": "y",
        "runpod_job_id": "job-1",
        "object_key": "videos/u/v/video.mp4",
        "size_bytes": 10,
        "previous_status": "completed",
        "added_in_a_later_release": {"nested": True},
    }
    raw = Envelope.wrap(
        RequestVideo(video_id=uuid4(), prompt="p", params=VideoParams(seed=1)), user_id="bob"
    ).model_dump(mode="json")
    raw.update(type=message_type, schema_version=2 if message_type == "VideoAccepted" else 1)
    raw["data"] = data
    raw["a_new_envelope_field"] = 1
    message = Envelope.model_validate(raw).message()
    assert message_type == message.TYPE


def test_a_poster_reaches_the_gateway_only_through_the_jobs_services_view() -> None:
    """The live feed builds a view only from a decision; a poster event (any later version)
    gives none, so the gateway re-reads the video, and the jobs service's view has the key.
    The presenter presigns it like the file, and only for a completed video."""
    from datetime import UTC, datetime

    from openv_contracts.events import VideoAccepted, VideoCompleted, VideoPosterAdded
    from openv_contracts.queries import decided_view
    from openv_contracts.storage_keys import video_output_key, video_poster_key, video_prefix
    from openv_gateway.entrypoints.presenter import present
    from openv_jobs.adapters.queries import _view
    from openv_jobs.domain.projection import fold_video

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    video_id = uuid4()
    poster_key = video_poster_key("alice", video_id)
    events = [
        VideoAccepted(
            video_id=video_id,
            prompt="a cat",
            params=VideoParams(seed=5),
            duration_seconds=31 / 24,
            charged_seconds=31 / 24,
            object_prefix=video_prefix("alice", video_id),
        ),
        VideoCompleted(
            video_id=video_id, object_key=video_output_key("alice", video_id), size_bytes=9
        ),
        VideoPosterAdded(video_id=video_id, object_key=poster_key, width=16, height=16),
    ]
    state = None
    for event in events:
        state = fold_video(state, event, "alice", now)
    assert state is not None
    view = _view(state)
    assert view.poster_key == poster_key
    poster = Envelope.wrap(events[-1], user_id="alice").model_copy(update={"stream_version": 3})
    assert decided_view(poster) is None

    from minio import Minio

    from openv_infra.playback import Playback

    signer = Minio("s3.example", "key", "secret", region="us-east-1")  # presigns offline
    playback = Playback(signer, "videos", 600)
    url = present(view, playback).poster_url
    assert url is not None and url.startswith(f"https://s3.example/videos/{poster_key}?")
    assert "X-Amz-Expires=600" in url  # the file's expiry
    deleted = view.model_copy(update={"status": VideoStatus.DELETED})
    assert present(deleted, playback).poster_url is None


def test_a_video_stream_id_names_its_video_and_nothing_else_does() -> None:
    from openv_contracts.events import stream_video_id, video_stream_id

    video_id = uuid4()
    assert stream_video_id(video_stream_id(video_id)) == video_id
    for other in (None, "", str(video_id), "video-", "video-not-a-uuid", f"user-{video_id}"):
        assert stream_video_id(other) is None


def test_the_render_job_input_has_the_public_bounds_and_ignores_bookkeeping() -> None:
    from pydantic import ValidationError

    from openv_contracts.render_job import RenderJobInput

    job = {
        "positive_prompt": "a fox",
        "width": 848,
        "height": 480,
        "num_frames": 31,
        "seed": 7,
        "steps": 40,
        "cfg": 6.0,
        "openv_attempt": "marker",  # the bridge's bookkeeping: not the worker's business
    }
    parsed = RenderJobInput.model_validate(job)
    assert parsed.negative_prompt == "" and parsed.output_put_url is None
    for field, bad in [("width", 383), ("height", 850), ("num_frames", 30), ("steps", 66)]:
        with pytest.raises(ValidationError):
            RenderJobInput.model_validate({**job, field: bad})
    with pytest.raises(ValidationError):
        RenderJobInput.model_validate({**job, "positive_prompt": ""})
