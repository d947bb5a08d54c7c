"""Pure parts of the gateway: rate limits, idempotency keys, Prefer, SSE framing, pending memory."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from openv_contracts.video import VideoParams
from openv_gateway.domain import idempotency, sse
from openv_gateway.domain.pending import PendingRequests, PendingVideo
from openv_gateway.domain.prefer import InvalidPreference, parse_wait
from openv_gateway.domain.rate_limit import RateLimiter, retry_after_header


def test_token_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.take("u", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("u", 100.0)
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait) == "1"
    assert limiter.take("u", 100.4) > 0  # 0.8 tokens refilled: not enough
    assert limiter.take("u", 100.5) == 0.0  # 1.0 token
    assert limiter.take("other", 100.5) == 0.0  # users are counted apart


def test_token_bucket_refills_no_further_than_the_burst() -> None:
    limiter = RateLimiter(rate_per_s=10.0, burst=2)
    limiter.take("u", 0.0)
    assert [limiter.take("u", 1000.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.take("u", 1000.0) > 0


def test_token_bucket_forgets_idle_users_when_full() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_users=2)
    limiter.take("a", 0.0)
    limiter.take("b", 0.0)
    limiter.take("c", 10.0)  # a and b refilled long ago: forgetting them changes nothing
    assert limiter.take("c", 10.0) > 0
    assert limiter.take("a", 10.0) == 0.0


def test_retry_after_is_a_positive_whole_number() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


def params(seed: int = 1, **changes: object) -> VideoParams:
    return VideoParams.model_validate({"seed": seed, **changes})


def test_an_idempotency_key_names_one_video_per_user() -> None:
    assert idempotency.video_id_for("alice", "k") == idempotency.video_id_for("alice", "k")
    assert idempotency.video_id_for("alice", "k") != idempotency.video_id_for("bob", "k")
    assert idempotency.video_id_for("alice", "k") != idempotency.video_id_for("alice", "k2")
    # User ids may contain ':': the (user, key) pair is encoded unambiguously.
    assert idempotency.video_id_for("a:b", "c") != idempotency.video_id_for("a", "b:c")
    seed = idempotency.seed_for("alice", "k")
    assert seed == idempotency.seed_for("alice", "k")
    assert 0 <= seed < 2**31
    assert seed != idempotency.seed_for("alice", "k2")


def test_same_request_compares_prompt_and_every_parameter() -> None:
    assert idempotency.same_request("fox", params(), "fox", params())
    assert not idempotency.same_request("fox", params(), "cat", params())
    assert not idempotency.same_request("fox", params(), "fox", params(seed=2))
    assert not idempotency.same_request("fox", params(), "fox", params(steps=41))


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("3f1c2e9a-0000-4000-8000-000000000000", True),
        ("a", True),
        ("with inner space", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("", False),
        (" leading", False),
        ("trailing ", False),
        ("tab\tinside", False),
        ("é", False),
    ],
)
def test_idempotency_key_syntax(key: str, ok: bool) -> None:
    assert idempotency.valid_key(key) is ok


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        (None, None),
        ("", None),
        ("wait=10", 10),
        ("wait=0", 0),
        ("wait=60", 60),
        ("respond-async, wait=5", 5),
        ("WAIT=7", 7),
        ('wait="3"', 3),
        ("wait=4; foo=bar", 4),
        ("return=minimal", None),
        ("handling=lenient, return=representation", None),
    ],
)
def test_prefer_wait_is_parsed(header: str | None, wait: int | None) -> None:
    assert parse_wait(header) == wait


@pytest.mark.parametrize("header", ["wait=61", "wait=-1", "wait=abc", "wait", "wait=1.5", "wait=٣"])
def test_a_bad_prefer_wait_is_refused(header: str) -> None:
    with pytest.raises(InvalidPreference):
        parse_wait(header)


def test_sse_event_framing() -> None:
    frame = sse.event("status", 3, '{"a": 1}')
    assert frame == b'event: status\nid: 3\ndata: {"a": 1}\n\n'
    assert sse.event("status", 1, "two\nlines").endswith(b"data: two\ndata: lines\n\n")
    assert sse.KEEPALIVE.startswith(b":") and sse.KEEPALIVE.endswith(b"\n\n")
    assert sse.retry(2000) == b"retry: 2000\n\n"


@pytest.mark.parametrize(
    ("header", "version"),
    [(None, None), ("4", 4), (" 7 ", 7), ("abc", None), ("-1", None), ("9" * 30, None)],
)
def test_last_event_id(header: str | None, version: int | None) -> None:
    assert sse.last_event_id(header) == version


def pending(video_id: object = None) -> PendingVideo:
    return PendingVideo(
        video_id=video_id or uuid4(),  # type: ignore[arg-type]
        user_id="alice",
        prompt="fox",
        params=params(),
        received_at=datetime.now(UTC),
    )


def test_pending_requests_are_remembered_for_their_ttl() -> None:
    memory = PendingRequests(ttl_s=10.0)
    first, second = pending(), pending()
    memory.add(first, now=0.0)
    memory.add(second, now=5.0)
    assert memory.get(first.video_id, now=9.9) == first
    assert memory.get(first.video_id, now=10.0) is None
    assert memory.get(second.video_id, now=14.9) == second
    memory.add(pending(), now=12.0)  # expires the first on the way
    assert len(memory) == 2
    memory.discard(second.video_id)
    assert memory.get(second.video_id, now=13.0) is None


def test_pending_requests_are_bounded() -> None:
    memory = PendingRequests(ttl_s=100.0, max_entries=3)
    videos = [pending() for _ in range(5)]
    for i, video in enumerate(videos):
        memory.add(video, now=float(i))
    assert len(memory) == 3
    assert memory.get(videos[0].video_id, now=5.0) is None
    assert memory.get(videos[4].video_id, now=5.0) == videos[4]


def test_pending_memory_can_be_switched_off() -> None:
    memory = PendingRequests(ttl_s=0)
    video = pending()
    memory.add(video, now=0.0)
    assert memory.get(video.video_id, now=0.0) is None
