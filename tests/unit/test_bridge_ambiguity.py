"""One GPU job per video, the pure and client parts: which `/run` failures leave the answer
lost (a job may exist) and are never sent again by the client, and the attempt marker a
reporting job must echo to be adopted."""

import asyncio
from uuid import uuid4

import httpx
import pytest

from openv_bridge.adapters.runpod_client import RunPodClient
from openv_bridge.config import Settings
from openv_bridge.domain.ambiguity import (
    INPUT_KEY,
    attempt_marker,
    attempt_nonce,
    input_names_attempt,
)
from openv_bridge.domain.runpod_errors import (
    RunPodAnswerLost,
    RunPodError,
    RunPodThrottled,
    RunSend,
)
from tests.unit.test_bridge_runpod_client import Script, ok, status

SECRET = b"s" * 32
VIDEO = uuid4()


@pytest.mark.parametrize("code", [502, 504, 520, 524])
async def test_a_gateway_error_on_run_is_a_lost_answer_and_is_not_sent_again(code: int) -> None:
    script = Script(status(code), ok({"id": "second-job"}))
    with pytest.raises(RunPodAnswerLost, match=f"HTTP {code}"):
        await script.client().run({}, "w", 1, 1)
    assert len(script.requests) == 1
    # The same answer to an idempotent call is retried as before.
    again = Script(status(code), ok({"id": "j", "status": "IN_QUEUE"}))
    assert (await again.client().status("j"))["id"] == "j"
    assert len(again.requests) == 2


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.WriteError("x")],
)
async def test_a_run_sent_without_an_answer_is_a_lost_answer(error: Exception) -> None:
    with pytest.raises(RunPodAnswerLost, match="RunPod may have it"):
        await Script(error).client().run({}, "w", 1, 1)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, text="<html>"), ok(["not", "an", "object"]), ok({"status": "IN_QUEUE"})],
)
async def test_a_run_answered_200_without_a_job_id_is_a_lost_answer(
    answer: httpx.Response,
) -> None:
    with pytest.raises(RunPodAnswerLost):
        await Script(answer).client().run({}, "w", 1, 1)


async def test_refusals_by_runpods_own_server_are_not_lost_answers() -> None:
    """500/503 and connections that never opened: RunPod created nothing, retried. A 429 is
    handed back at once (RunPodThrottled, see the limits): nothing was created either."""
    script = Script(status(500), status(503), httpx.ConnectError("refused"), status(500))
    send = RunSend()
    with pytest.raises(RunPodError) as failed:
        await script.client(max_attempts=4, backoff_s=0).run({}, "w", 1, 1, send)
    assert not isinstance(failed.value, RunPodAnswerLost)
    assert len(script.requests) == 4
    assert not send.maybe_sent

    throttled = Script(status(429))
    send = RunSend()
    with pytest.raises(RunPodThrottled):
        await throttled.client(max_attempts=4, backoff_s=0).run({}, "w", 1, 1, send)
    assert len(throttled.requests) == 1
    assert not send.maybe_sent


async def test_a_run_cancelled_by_the_callers_timeout_tells_whether_it_was_in_flight() -> None:
    in_flight = asyncio.Event()
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        in_flight.set()
        await never.wait()
        raise AssertionError("unreachable")

    client = RunPodClient("https://api.example/v2", "ep", "k", transport=httpx.MockTransport(hang))
    send = RunSend()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.run({}, "w", 1, 1, send)
    assert in_flight.is_set() and send.maybe_sent

    # Cancelled while waiting to retry after a 503: nothing was in flight, no job exists.
    script = Script(status(503, **{"Retry-After": "30"}))

    async def slow_sleep(seconds: float) -> None:
        await asyncio.sleep(seconds)

    waiting = RunPodClient(
        "https://api.example/v2",
        "ep",
        "k",
        transport=httpx.MockTransport(script.handler),
        sleep=slow_sleep,
    )
    send = RunSend()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await waiting.run({}, "w", 1, 1, send)
    assert len(script.requests) == 1 and not send.maybe_sent


def test_the_attempt_marker_names_the_video_and_attempt_with_a_nonce_only_the_secret_makes() -> (
    None
):
    marker = attempt_marker(SECRET, VIDEO, 2)
    assert marker == {"video_id": str(VIDEO), "attempt": 2, "nonce": marker["nonce"]}
    assert len({attempt_nonce(SECRET, VIDEO, n) for n in (1, 2, 3)}) == 3
    assert attempt_nonce(b"t" * 32, VIDEO, 2) != marker["nonce"]

    def body(marker: object) -> dict[str, object]:
        return {"id": "j1", "status": "COMPLETED", "input": {"prompt": "x", INPUT_KEY: marker}}

    # Any attempt so far of this video, with its nonce.
    assert input_names_attempt(SECRET, body(marker), VIDEO, attempts=2)
    assert input_names_attempt(SECRET, body(attempt_marker(SECRET, VIDEO, 1)), VIDEO, 3)
    # A later attempt than the record knows, another video, another secret's nonce, a
    # wrong nonce, odd types, or no marker at all: no evidence.
    assert not input_names_attempt(SECRET, body(marker), VIDEO, attempts=1)
    assert not input_names_attempt(SECRET, body(attempt_marker(SECRET, uuid4(), 2)), VIDEO, 2)
    assert not input_names_attempt(SECRET, body(attempt_marker(b"t" * 32, VIDEO, 2)), VIDEO, 2)
    for bad in (
        {**marker, "nonce": "0" * 32},
        {**marker, "nonce": "é"},
        {**marker, "nonce": None},
        {**marker, "attempt": True},
        {**marker, "attempt": "2"},
        {**marker, "attempt": 0},
        "marker",
        None,
    ):
        assert not input_names_attempt(SECRET, body(bad), VIDEO, 2), bad
    assert not input_names_attempt(SECRET, {"id": "j1", "status": "COMPLETED"}, VIDEO, 2)
    assert not input_names_attempt(SECRET, {"input": "x"}, VIDEO, 2)
    assert not input_names_attempt(SECRET, [], VIDEO, 2)


def test_the_wait_for_a_lost_answers_job_defaults_to_minutes_not_seconds() -> None:
    settings = Settings()
    # Long enough for a job that starts soon to run to its end and report (the webhook comes
    # only then), far longer than the retry delay of a refused attempt.
    assert settings.ambiguous_run_wait_s >= 10 * 60
    assert settings.ambiguous_run_wait_s > settings.submit_retry_base_s * 2**4
