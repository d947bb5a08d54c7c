"""The RunPod HTTP client against a scripted transport: auth, bodies, bounded retries with
backoff and Retry-After, and which failures are never retried."""

import json

import httpx
import pytest

from openv_bridge.adapters.metrics import RUNPOD_MISCONFIGURED
from openv_bridge.adapters.runpod_client import RunPodClient
from openv_bridge.domain.runpod_errors import (
    AnswerTooLarge,
    InvalidJobId,
    JobNotFound,
    RunPodError,
    RunPodMisconfigured,
    RunPodRefused,
    RunPodThrottled,
)

Answer = httpx.Response | Exception


class Script:
    """Answers requests in order (the last one repeats) and records them and the sleeps."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.now = 1000.0  # the client's clock: only sleeping moves it

    def clock(self) -> float:
        return self.now

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def client(
        self, max_attempts: int = 4, backoff_s: float = 0.5, retry_after_max_s: float = 30.0
    ) -> RunPodClient:
        return RunPodClient(
            "https://api.example/v2/",
            "ep1",
            "secret-key",
            max_attempts=max_attempts,
            backoff_s=backoff_s,
            retry_after_max_s=retry_after_max_s,
            transport=httpx.MockTransport(self.handler),
            sleep=self.sleep,
            clock=self.clock,
        )


def ok(body: object) -> httpx.Response:
    return httpx.Response(200, json=body)


def status(code: int, body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(code, json=body or {"error": f"HTTP {code}"}, headers=headers)


async def test_run_sends_bearer_auth_input_webhook_and_policy() -> None:
    script = Script(ok({"id": "job-1", "status": "IN_QUEUE"}))
    client = script.client()
    job_id = await client.run(
        {"positive_prompt": "a fox"}, "https://b/h?token=t", 600_000, 86_400_000
    )
    assert job_id == "job-1"
    [request] = script.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.example/v2/ep1/run"
    assert request.headers["Authorization"] == "Bearer secret-key"
    assert json.loads(request.content) == {
        "input": {"positive_prompt": "a fox"},
        "webhook": "https://b/h?token=t",
        "policy": {"executionTimeout": 600_000, "ttl": 86_400_000},
    }
    await client.aclose()


async def test_5xx_and_connection_errors_are_retried_with_growing_jittered_delays() -> None:
    # (A 502/504 on /run is not retried: its job may exist, see test_bridge_ambiguity.)
    connect = httpx.ConnectError("refused")
    script = Script(status(500), connect, status(503), ok({"id": "job-1"}))
    assert await script.client(backoff_s=1.0).run({}, "w", 1, 1) == "job-1"
    assert len(script.requests) == 4
    # Base 1, 2, 4 s, each with +-50 % jitter.
    for delay, base in zip(script.sleeps, [1, 2, 4], strict=True):
        assert base * 0.5 <= delay <= base * 1.5


async def test_a_429_rests_the_route_past_runpods_window_with_jitter_or_retry_after() -> None:
    """RunPod counts per 10 s window and sends no Retry-After: the retry waits the whole window
    plus 0..2 s jitter (the old client tried 4 times within ~3.5 s, all in the same window)."""
    script = Script(status(429), status(429, **{"Retry-After": "25"}), ok({"id": "s"}))
    await script.client(backoff_s=0.01).status("s")
    assert len(script.requests) == 3
    first, second = script.sleeps
    assert 10 <= first <= 12
    assert second == pytest.approx(25)


async def test_a_429_on_run_is_not_retried_and_says_how_long_to_wait() -> None:
    script = Script(status(429), ok({"id": "job-1"}))
    with pytest.raises(RunPodThrottled) as throttled:
        await script.client().run({}, "w", 1, 1)
    assert 10 <= throttled.value.retry_in_s <= 12
    assert len(script.requests) == 1
    assert script.sleeps == []


async def test_retries_are_bounded() -> None:
    script = Script(status(500))
    with pytest.raises(RunPodError, match="after 3 attempts: HTTP 500"):
        await script.client(max_attempts=3).status("j")
    assert len(script.requests) == 3
    assert len(script.sleeps) == 2


async def test_a_refusal_is_permanent_and_keeps_runpods_message() -> None:
    for code in (400, 413, 422):
        script = Script(status(code, {"error": "input too large"}))
        with pytest.raises(RunPodRefused) as refused:
            await script.client().run({}, "w", 1, 1)
        assert (refused.value.status_code, refused.value.message) == (code, "input too large")
        assert len(script.requests) == 1


async def test_404_means_the_job_is_gone_for_job_calls_and_a_wrong_endpoint_otherwise() -> None:
    for call in ("status", "cancel"):
        script = Script(status(404))
        client = script.client()
        with pytest.raises(JobNotFound):
            await getattr(client, call)("j")
        assert len(script.requests) == 1
        assert not client.access.misconfigured
    script = Script(status(404, {"error": "endpoint not found"}))
    client = script.client()
    with pytest.raises(RunPodMisconfigured, match="endpoint not found"):
        await client.run({}, "w", 1, 1)
    assert client.access.misconfigured


async def test_a_refused_key_marks_the_client_misconfigured_until_a_call_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(
        httpx.Response(401, text="Unauthorized"),
        status(403),
        status(404),
        ok({"jobs": {}, "workers": {}}),
    )
    client = script.client()
    with pytest.raises(RunPodMisconfigured, match="Unauthorized"):
        await client.run({}, "w", 1, 1)  # never "refused": the video is not at fault
    assert client.access.misconfigured
    assert RUNPOD_MISCONFIGURED._value.get() == 1
    with pytest.raises(RunPodMisconfigured):
        await client.status("j")
    with pytest.raises(RunPodMisconfigured):
        await client.health()
    assert len(script.requests) == 3  # not retried: it would fail the same way
    await client.health()
    assert not client.access.misconfigured
    assert RUNPOD_MISCONFIGURED._value.get() == 0
    # One line when it broke and one when it healed, not one per call.
    changes = [r.getMessage() for r in caplog.records if "key" in r.getMessage()]
    assert len(changes) == 2, changes


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.WriteError("x")],
)
async def test_a_run_that_may_have_reached_runpod_is_not_sent_again(error: Exception) -> None:
    script = Script(error, ok({"id": "second-job"}))
    with pytest.raises(RunPodError, match="RunPod may have it"):
        await script.client().run({}, "w", 1, 1)
    assert len(script.requests) == 1
    # The same trouble on an idempotent call is retried.
    again = Script(error, ok({"id": "j", "status": "IN_QUEUE"}))
    assert (await again.client().status("j"))["id"] == "j"
    assert len(again.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, text="<html>"), ok(["not", "an", "object"]), ok({"status": "IN_QUEUE"})],
)
async def test_unusable_answers_are_errors(answer: httpx.Response) -> None:
    with pytest.raises(RunPodError):
        await Script(answer).client().run({}, "w", 1, 1)


@pytest.mark.parametrize("job_id", ["../purge-queue", "..", "a/b", "%2e%2e", "j?x=1", "", "é"])
async def test_a_job_id_that_is_not_a_runpod_id_is_never_sent(job_id: str) -> None:
    script = Script(ok({"removed": 3, "status": "completed"}))
    client = script.client()
    with pytest.raises(InvalidJobId):
        await client.cancel(job_id)
    with pytest.raises(InvalidJobId):
        await client.status(job_id)
    assert script.requests == []


async def test_every_path_segment_is_percent_encoded() -> None:
    script = Script(ok({"id": "j1", "status": "IN_QUEUE"}))
    client = RunPodClient(
        "https://api.example/v2",
        "ep 1/../x",
        "k",
        transport=httpx.MockTransport(script.handler),
        sleep=script.sleep,
    )
    job = "60902e6c-08a1-426e-9cb9-9eaec90f5e2b-u1"
    await client.status(job)
    await client.cancel(job)
    assert [r.url.raw_path.decode() for r in script.requests] == [
        f"/v2/ep%201%2F..%2Fx/status/{job}",
        f"/v2/ep%201%2F..%2Fx/cancel/{job}",
    ]
    with pytest.raises(ValueError, match="path segment"):
        RunPodClient("https://api.example/v2", "..", "k")


@pytest.mark.parametrize("job_id", ["../purge-queue", "a/b", 7, "", None])
async def test_a_run_answer_without_a_runpod_id_is_an_error(job_id: object) -> None:
    script = Script(ok({"id": job_id, "status": "IN_QUEUE"}))
    with pytest.raises(RunPodError, match="valid job id"):
        await script.client().run({"p": 1}, "https://hook", 1000, 10_000)


async def test_runpods_refusal_text_is_cleaned_before_it_travels() -> None:
    # As RunPod could send it: JSON escapes for a NUL and a lone surrogate.
    body = b'{"error": "bad\\u0000input \\ud800' + b"x" * 2000 + b'"}'
    script = Script(httpx.Response(400, content=body))
    with pytest.raises(RunPodRefused) as refused:
        await script.client().run({"p": 1}, "https://hook", 1000, 10_000)
    message = refused.value.message
    assert "\x00" not in message and "\ud800" not in message
    assert message.startswith("bad\ufffdinput \ufffd") and len(message) == 500
    message.encode()  # valid UTF-8


async def test_an_answer_over_the_cap_is_refused_once_and_not_retried() -> None:
    """A /status answer carries the job's output (a base64 video can be huge): it is read
    only up to `max_answer_bytes`, whether or not its length is declared."""
    big = {"id": "j-1", "status": "COMPLETED", "output": {"videos": [{"data": "A" * 5000}]}}

    def chunked(request: httpx.Request) -> httpx.Response:
        # No Content-Length: the cap is enforced while the body streams in.
        body = json.dumps(big).encode()
        return httpx.Response(200, stream=httpx.ByteStream(body), headers={})

    for transport in (httpx.MockTransport(lambda r: ok(big)), httpx.MockTransport(chunked)):
        client = RunPodClient(
            "https://api.example/v2", "ep1", "k", max_answer_bytes=4096, transport=transport
        )
        calls: list[float] = []

        async def sleep(s: float, calls: list[float] = calls) -> None:
            calls.append(s)

        client._sleep = sleep
        with pytest.raises(AnswerTooLarge, match="larger than 4096 bytes"):
            await client.status("j-1")
        assert calls == []  # asking again would get the same answer
        await client.aclose()
    small = RunPodClient(
        "https://api.example/v2",
        "ep1",
        "k",
        max_answer_bytes=len(json.dumps(big)) + 10,
        transport=httpx.MockTransport(lambda r: ok(big)),
    )
    assert await small.status("j-1") == big
    await small.aclose()
