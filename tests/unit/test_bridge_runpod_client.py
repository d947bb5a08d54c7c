"""The RunPod HTTP client against a scripted transport: auth, bodies, bounded retries with
backoff and Retry-After, and which failures are never retried."""

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from openv_bridge.adapters.runpod_client import (
    InvalidJobId,
    JobNotFound,
    RunPodClient,
    RunPodError,
    RunPodRefused,
)

Answer = httpx.Response | Exception


class Script:
    """Answers requests in order (the last one repeats) and records them and the sleeps."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

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


async def test_429_honours_retry_after_in_seconds_or_as_a_date_capped() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    script = Script(
        status(429, **{"Retry-After": "7"}),
        status(429, **{"Retry-After": later}),
        status(429, **{"Retry-After": "3600"}),
        ok({"id": "s", "status": "IN_QUEUE"}),
    )
    await script.client(backoff_s=0.01, retry_after_max_s=30.0).status("s")
    assert script.sleeps[0] == 7
    assert 15 <= script.sleeps[1] <= 20
    assert script.sleeps[2] == 30


async def test_retries_are_bounded() -> None:
    script = Script(status(500))
    with pytest.raises(RunPodError, match="after 3 attempts: HTTP 500"):
        await script.client(max_attempts=3).status("j")
    assert len(script.requests) == 3
    assert len(script.sleeps) == 2


async def test_a_refusal_is_permanent_and_keeps_runpods_message() -> None:
    script = Script(status(400, {"error": "input too large"}))
    with pytest.raises(RunPodRefused) as refused:
        await script.client().run({}, "w", 1, 1)
    assert (refused.value.status_code, refused.value.message) == (400, "input too large")
    assert len(script.requests) == 1
    plain = Script(httpx.Response(401, text="Unauthorized"))
    with pytest.raises(RunPodRefused, match="Unauthorized"):
        await plain.client().health()


async def test_404_means_the_job_is_gone_for_job_calls_and_a_refusal_for_run() -> None:
    for call in ("status", "cancel"):
        script = Script(status(404))
        with pytest.raises(JobNotFound):
            await getattr(script.client(), call)("j")
        assert len(script.requests) == 1
    script = Script(status(404, {"error": "endpoint not found"}))
    with pytest.raises(RunPodRefused, match="endpoint not found"):
        await script.client().run({}, "w", 1, 1)


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
