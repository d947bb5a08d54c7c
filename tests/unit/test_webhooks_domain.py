"""The webhooks service's pure rules: event mapping, retry schedule, receiver origin, states."""

import itertools
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from openv_contracts.queries import VideoView
from openv_contracts.video import VideoParams, VideoStatus
from openv_contracts.webhooks import WebhookEvent
from openv_webhooks.domain.backoff import Jitter, RetrySchedule
from openv_webhooks.domain.deliveries import (
    AttemptResult,
    DeliveryState,
    after_attempt,
    attempt_error,
    webhook_id,
)
from openv_webhooks.domain.events import webhook_event
from openv_webhooks.domain.receivers import origin

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def view(status: VideoStatus, progress: int | None = None) -> VideoView:
    return VideoView(
        id=uuid4(),
        user_id="u",
        status=status,
        progress=progress,
        prompt="p",
        params=VideoParams(seed=1),
        duration_seconds=1.0,
        created_at=T0,
        updated_at=T0,
        version=1,
    )


@pytest.mark.parametrize(
    ("event_type", "before", "after", "expected"),
    [
        ("VideoAccepted", None, view(VideoStatus.QUEUED, 0), WebhookEvent.QUEUED),
        ("VideoRejected", None, view(VideoStatus.REJECTED), WebhookEvent.COMPLETED),
        (
            "VideoRunning",
            view(VideoStatus.SUBMITTED),
            view(VideoStatus.RUNNING),
            WebhookEvent.STARTED,
        ),
        (
            "VideoRunning",
            view(VideoStatus.RUNNING, 10),
            view(VideoStatus.RUNNING, 20),
            WebhookEvent.PROGRESS,
        ),
        ("VideoRunning", view(VideoStatus.RUNNING, 10), view(VideoStatus.RUNNING, 10), None),
        (
            "VideoProgressed",
            view(VideoStatus.RUNNING, 10),
            view(VideoStatus.RUNNING, 30),
            WebhookEvent.PROGRESS,
        ),
        ("VideoCompleted", None, view(VideoStatus.COMPLETED), WebhookEvent.COMPLETED),
        ("VideoFailed", None, view(VideoStatus.FAILED), WebhookEvent.COMPLETED),
        ("VideoCancelled", None, view(VideoStatus.CANCELLED), WebhookEvent.COMPLETED),
        ("VideoTimedOut", None, view(VideoStatus.TIMED_OUT), WebhookEvent.COMPLETED),
        ("VideoSubmitted", None, view(VideoStatus.SUBMITTED), None),
        ("VideoDeleted", None, view(VideoStatus.DELETED), None),
        ("VideoPosterAdded", None, view(VideoStatus.COMPLETED), None),
        ("VideoFileDeleted", None, view(VideoStatus.DELETED), None),
    ],
)
def test_event_mapping(
    event_type: str, before: VideoView | None, after: VideoView, expected: WebhookEvent | None
) -> None:
    assert webhook_event(event_type, before, after) == expected


@pytest.mark.parametrize("jitter", list(Jitter))
def test_backoff_grows_is_bounded_and_jitter_stays_in_range(jitter: Jitter) -> None:
    schedule = RetrySchedule(5, 3600, jitter)
    ceilings = [schedule.ceiling_s(n) for n in range(1, 40)]
    assert ceilings[:4] == [5, 10, 20, 40]
    assert all(a <= b for a, b in itertools.pairwise(ceilings))
    assert max(ceilings) == 3600
    low = 0 if jitter is Jitter.FULL else 0.5
    for n in (1, 3, 12, 60):
        for draw in (0.0, 0.25, 0.999):
            delay = schedule.delay_s(n, draw)
            ceiling = schedule.ceiling_s(n)
            assert low * ceiling <= delay <= ceiling
    assert schedule.delay_s(3, 0.0) < schedule.delay_s(3, 0.9)


def test_backoff_gives_up_at_the_give_up_time() -> None:
    schedule = RetrySchedule(5, 3600)
    give_up = T0 + timedelta(seconds=100)
    assert schedule.next_attempt(1, T0, give_up, 0.5) == T0 + timedelta(seconds=3.75)
    assert schedule.next_attempt(8, T0, give_up, 0.5) is None  # 640 s ceiling: past it


def test_origin_is_scheme_host_and_explicit_port() -> None:
    assert origin("https://Example.com/hook?a=1") == "https://example.com:443"
    assert origin("https://example.com:8443/x") == "https://example.com:8443"
    assert origin("http://127.0.0.1/x") == "http://127.0.0.1:80"
    assert origin("http://[::1]:9000/x") == "http://[::1]:9000"
    assert origin("https://a.example.com/") != origin("https://b.example.com/")


def _result(status: int | None, error: str | None = None) -> AttemptResult:
    return AttemptResult(T0, status, 12, error)


def test_states_after_an_attempt() -> None:
    schedule = RetrySchedule(5, 3600)
    give_up = T0 + timedelta(hours=24)
    ok = after_attempt(_result(204), 2, give_up, schedule, 0.5)
    assert ok.state is DeliveryState.DELIVERED and ok.next_attempt_at is None
    retry = after_attempt(_result(500, "answered 500"), 0, give_up, schedule, 0.0)
    assert retry.state is DeliveryState.PENDING
    assert retry.next_attempt_at == T0 + timedelta(seconds=2.5)
    late = after_attempt(_result(None, "timeout"), 0, T0 + timedelta(seconds=1), schedule, 0.5)
    assert late.state is DeliveryState.FAILED


def test_redirects_and_errors_are_not_deliveries() -> None:
    assert attempt_error(200) is None and attempt_error(299) is None
    assert "redirects are not followed" in (attempt_error(302) or "")
    assert attempt_error(500) == "answered 500"
    assert not _result(200, "refused").delivered
    assert webhook_id(uuid4()).startswith("msg_")
