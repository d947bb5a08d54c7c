"""The RunPod simulator over real sockets: a subprocess sim, an in-process receiver for uploads and
webhooks, and one in-process sim with short retention."""

import asyncio
import io
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response

from openv_bridge.domain.outcomes import Uploaded
from openv_bridge.domain.worker_outputs import completed
from openv_contracts.render_job import RenderJobInput, RenderJobUploaded
from openv_localstack.ports import free_port
from openv_runpod_sim.app import create_app
from openv_runpod_sim.config import SimSettings
from tests.integration.support import serve

pytestmark = pytest.mark.integration

API_KEY = "test-key"
ENDPOINT = "ep-test"
RETRY_INTERVAL_S = 0.2
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


# --- a tiny receiver: presigned-PUT target and webhook sink -----------------------------------


@dataclass
class Hook:
    name: str
    content_type: str
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    uploads: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    hooks: list[Hook] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def hooks_for(self, name: str) -> list[Hook]:
        return [h for h in self.hooks if h.name == name]


def receiver_app(rec: Receiver) -> FastAPI:
    app = FastAPI()

    @app.put("/put/{key:path}")
    async def put(key: str, request: Request, fail: int | None = None, codes: str = "") -> Response:
        # `codes` scripts the answers per attempt (e.g. "503,503": S3 away), then 200.
        body = await request.body()
        attempt = rec.hits.get(f"put:{key}", 0)
        rec.hits[f"put:{key}"] = attempt + 1
        script = [int(c) for c in codes.split(",") if c]
        if attempt < len(script):
            fail = script[attempt]
        if fail:
            return Response(b"<Error><Code>AccessDenied</Code></Error>", status_code=fail)
        rec.uploads[key] = (body, request.headers.get("content-type", ""))
        return Response(status_code=200)

    @app.post("/hook/{name}")
    async def hook(name: str, request: Request, codes: str = "") -> Response:
        # `codes` scripts the answers per delivery attempt (e.g. "500,500"), then 200.
        body = await request.body()
        attempt = rec.hits.get(name, 0)
        rec.hits[name] = attempt + 1
        ctype = request.headers.get("content-type", "")
        rec.hooks.append(Hook(name, ctype, body, time.monotonic()))
        rec.arrived.set()
        script = [int(c) for c in codes.split(",") if c]
        return Response(status_code=script[attempt] if attempt < len(script) else 200)

    return app


# --- fixtures --------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    port = free_port()
    rec.url = f"http://127.0.0.1:{port}"
    async with serve(receiver_app(rec), port):
        yield rec


@pytest.fixture(scope="session")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m openv_runpod_sim` as a real process; --port must override RUNPOD_SIM_PORT."""
    port = free_port()
    env = {
        **os.environ,
        "RUNPOD_SIM_API_KEY": API_KEY,
        "RUNPOD_SIM_PORT": "1",
        "RUNPOD_SIM_DEFAULT_DURATION_S": "0.4",
        "RUNPOD_SIM_DEFAULT_QUEUE_S": "0.2",
        "RUNPOD_SIM_WEBHOOK_RETRY_INTERVAL_S": str(RETRY_INTERVAL_S),
        "RUNPOD_SIM_RENDER_SCALE": "4",
        "RUNPOD_SIM_LOG_LEVEL": "warning",
    }
    log_path = Path(tmp_path_factory.mktemp("runpod-sim")) / "sim.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openv_runpod_sim", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"simulator exited: {log_path.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"simulator did not start: {log_path.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest_asyncio.fixture(scope="session")
async def client(sim_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=sim_url, headers=headers, timeout=10) as c:
        yield c


# --- helpers ---------------------------------------------------------------------------------


def api(path: str) -> str:
    return f"/v2/{ENDPOINT}{path}"


def model_input(**extra: Any) -> dict[str, Any]:
    return {
        "positive_prompt": "a red fox in snow",
        "negative_prompt": "",
        "width": 848,
        "height": 480,
        "seed": 7,
        "steps": 30,
        "cfg": 4.5,
        "num_frames": 25,
        **extra,
    }


async def submit(
    client: httpx.AsyncClient,
    job_input: dict[str, Any],
    webhook: str | None = None,
    policy: dict[str, int] | None = None,
) -> str:
    body: dict[str, Any] = {"input": job_input}
    if webhook is not None:
        body["webhook"] = webhook
    if policy is not None:
        body["policy"] = policy
    response = await client.post(api("/run"), json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "IN_QUEUE"
    assert answer["id"].endswith("-u1")
    uuid.UUID(answer["id"].removesuffix("-u1"))
    return str(answer["id"])


async def status(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(api(f"/status/{job_id}"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def trace(
    client: httpx.AsyncClient, job_id: str, until: set[str] = TERMINAL, limit_s: float = 8
) -> list[dict[str, Any]]:
    """Poll fast and return every /status answer up to the first one in `until`."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(limit_s):
        while True:
            body = await status(client, job_id)
            seen.append(body)
            if body["status"] in until:
                return seen
            await asyncio.sleep(0.02)


async def final(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    return (await trace(client, job_id))[-1]


async def admin_job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    jobs = (await client.get("/admin/jobs")).json()["jobs"]
    found: dict[str, Any] = next(j for j in jobs if j["id"] == job_id)
    return found


async def wait_hooks(rec: Receiver, name: str, count: int) -> list[Hook]:
    async with asyncio.timeout(5):
        while len(rec.hooks_for(name)) < count:
            rec.arrived.clear()
            await rec.arrived.wait()
    return rec.hooks_for(name)


def decode(video: bytes) -> tuple[int, int, int]:
    """(frames, width, height) as PyAV decodes them."""
    assert video[4:8] == b"ftyp"
    with av.open(io.BytesIO(video), mode="r") as container:
        stream = container.streams.video[0]
        frames = len(list(container.decode(stream)))
        return frames, int(stream.width), int(stream.height)


def name() -> str:
    return uuid.uuid4().hex[:12]


# --- tests -----------------------------------------------------------------------------------


async def test_auth_and_request_validation(sim_url: str, client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=sim_url) as anon:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "nope"}):
            response = await anon.get(api("/health"), headers=headers)
            assert response.status_code == 401
            assert "error" in response.json()
        assert (await anon.post(api("/run"), json={"input": {}})).status_code == 401
        assert (await anon.get(api("/health"), headers={"Authorization": API_KEY})).is_success
        assert (await anon.get("/healthz")).text == "ok"
    assert (await client.get(api("/health"))).status_code == 200

    for bad in ({}, {"input": "x"}, {"input": [1]}, {"input": {"sim": "x"}}, [1]):
        response = await client.post(api("/run"), json=bad)
        assert response.status_code == 400, bad
        assert "error" in response.json()
    bad_policy = {"input": {}, "policy": {"executionTimeout": "soon"}}
    assert (await client.post(api("/run"), json=bad_policy)).status_code == 400
    not_json = await client.post(api("/run"), content=b"{nope")
    assert not_json.status_code == 400
    big = json.dumps({"input": {"blob": "x" * (10 * 1024 * 1024)}}).encode()
    assert (await client.post(api("/run"), content=big)).status_code == 413

    assert (await client.get(api("/status/nope-u1"))).status_code == 404
    job_id = await submit(client, model_input(sim={"duration_s": 0.05}))
    # Jobs are visible only under their own endpoint.
    assert (await client.get(f"/v2/other/status/{job_id}")).status_code == 404
    assert (await final(client, job_id))["status"] == "COMPLETED"


async def test_run_progress_upload_and_webhook(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook_name, key = name(), f"videos/{name()}.mp4"
    job_input = model_input(output_put_url=f"{receiver.url}/put/{key}", output_key=key)
    job_id = await submit(client, job_input, webhook=f"{receiver.url}/hook/{hook_name}")
    seen = await trace(client, job_id)

    states = [s["status"] for s in seen]
    assert states[0] == "IN_QUEUE"
    assert states[-1] == "COMPLETED"
    # Order: queue, then progress, then done; never back.
    order = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2}
    assert [order[s] for s in states] == sorted(order[s] for s in states)
    progress = [s["output"] for s in seen if s["status"] == "IN_PROGRESS"]
    assert len(progress) >= 3
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in progress)
    assert progress == sorted(progress)
    assert len(set(progress)) >= 2
    assert any("workerId" in s for s in seen if s["status"] == "IN_PROGRESS")

    done = seen[-1]
    assert done["output"] == {
        "key": key,
        "size_bytes": len(receiver.uploads[key][0]),
        "content_type": "video/mp4",
        "status": "DONE",
    }
    assert done["delayTime"] >= 150
    assert done["executionTime"] >= 350
    video, content_type = receiver.uploads[key]
    assert content_type == "video/mp4"
    assert decode(video) == (25, 208, 128)  # 848x480 / 4, to multiples of 16
    # The render job's contract, as the bridge reads it: the input is one it would send, the
    # output one it takes for an upload of the video's key.
    RenderJobInput.model_validate(job_input)
    assert RenderJobUploaded.model_validate(done["output"]).key == key
    assert completed(done["output"], None, key) == Uploaded(key)

    (hook,) = await wait_hooks(receiver, hook_name, 1)
    payload = hook.json()
    assert hook.content_type == "application/json"
    assert set(payload) == {
        "delayTime",
        "executionTime",
        "id",
        "input",
        "output",
        "status",
        "webhook",
    }
    assert payload["id"] == job_id
    assert payload["status"] == "COMPLETED"
    assert payload["output"] == done["output"]
    assert payload["input"] == job_input
    assert payload["webhook"] == f"{receiver.url}/hook/{hook_name}"
    await asyncio.sleep(0.05)
    view = await admin_job(client, job_id)
    assert (view["webhook_attempts"], view["webhooks_delivered"]) == (1, 1)


async def test_result_url_modes_and_runsync(client: httpx.AsyncClient, receiver: Receiver) -> None:
    fast = {"duration_s": 0.1, "queue_s": 0.05}
    key_b, key_c = f"b/{name()}.mp4", f"c/{name()}.mp4"
    plain = await submit(client, model_input(num_frames=13, sim=fast))
    forced = await submit(
        client,
        model_input(
            output_put_url=f"{receiver.url}/put/{key_b}",
            output_key=key_b,
            sim={**fast, "result_url": True},
        ),
    )
    lying = await submit(
        client,
        model_input(
            output_put_url=f"{receiver.url}/put/{key_c}",
            output_key=key_c,
            sim={**fast, "upload_fail": True},
        ),
    )
    results = await asyncio.gather(*(final(client, j) for j in (plain, forced, lying)))
    assert [r["status"] for r in results] == ["COMPLETED"] * 3

    for job_id, result in zip((plain, forced), results[:2], strict=True):
        assert result["output"]["status"] == "DONE"
        url = result["output"]["result"]
        assert url.endswith(f"/files/{job_id}.mp4")
        async with httpx.AsyncClient() as anon:  # no auth: an importer must be able to fetch it
            response = await anon.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp4"
        frames, _, _ = decode(response.content)
        assert frames == (13 if job_id == plain else 25)
    assert key_b not in receiver.uploads

    assert results[2]["output"]["key"] == key_c
    assert results[2]["output"]["size_bytes"] > 0
    assert key_c not in receiver.uploads  # the worker lied

    response = await client.post(
        api("/runsync"), json={"input": model_input(sim=fast)}, params={"wait": 5000}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "COMPLETED"
    assert response.json()["output"]["result"].endswith(".mp4")


async def test_an_upload_s3_does_not_answer_is_tried_again_a_refused_one_is_not(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The worker contract: a PUT S3 did not answer (5xx, 429, no connection) is retried with
    backoff, so a render outlives a short S3 outage; a refusal (4xx) fails the job at once."""
    fast = {"duration_s": 0.1, "queue_s": 0.05}
    away, refused = f"away/{name()}.mp4", f"refused/{name()}.mp4"
    outage = await submit(
        client,
        model_input(
            output_put_url=f"{receiver.url}/put/{away}?codes=503,500,429",
            output_key=away,
            sim=fast,
        ),
    )
    denied = await submit(
        client,
        model_input(
            output_put_url=f"{receiver.url}/put/{refused}?codes=403,403",
            output_key=refused,
            sim=fast,
        ),
    )
    done, failed = await asyncio.gather(final(client, outage), final(client, denied))
    assert done["status"] == "COMPLETED"
    assert receiver.hits[f"put:{away}"] == 4 and away in receiver.uploads
    assert failed["status"] == "FAILED"
    assert "HTTP 403" in json.dumps(failed)
    assert receiver.hits[f"put:{refused}"] == 1


async def test_failure_knobs_progress_formats_and_retry(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    fast = {"duration_s": 0.1, "queue_s": 0.05}
    hook_fail = name()
    key_d = f"d/{name()}.mp4"
    raised = await submit(
        client,
        model_input(sim={**fast, "fail": "boom"}),
        webhook=f"{receiver.url}/hook/{hook_fail}",
    )
    out_err = await submit(client, model_input(sim={**fast, "output_error": "bad prompt"}))
    liar = await submit(client, model_input(sim={**fast, "failed_result": "oom"}))
    denied = await submit(
        client,
        model_input(output_put_url=f"{receiver.url}/put/{key_d}?fail=403", output_key=key_d),
    )
    as_progress = await submit(
        client, model_input(sim={"duration_s": 0.5, "progress_format": "dict_progress"})
    )
    as_percent = await submit(
        client, model_input(sim={"duration_s": 0.5, "progress_format": "dict_percent"})
    )
    flaky = await submit(client, model_input(sim={**fast, "fail": "flaky", "fail_times": 1}))

    traces = await asyncio.gather(
        *(trace(client, j) for j in (raised, out_err, liar, denied, as_progress, as_percent, flaky))
    )
    raised_r, out_err_r, liar_r, denied_r, prog_r, pct_r, flaky_r = (t[-1] for t in traces)

    assert raised_r["status"] == "FAILED"
    assert "output" not in raised_r
    error = json.loads(raised_r["error"])
    assert error["error_message"] == "boom"
    assert "RuntimeError" in error["error_type"]
    assert "Traceback" in error["error_traceback"]
    (hook,) = await wait_hooks(receiver, hook_fail, 1)
    assert hook.json()["status"] == "FAILED"
    assert hook.json()["error"] == raised_r["error"]

    assert out_err_r["status"] == "FAILED"
    assert out_err_r["error"] == "bad prompt"
    assert "output" not in out_err_r

    assert liar_r["status"] == "COMPLETED"
    assert liar_r["output"] == {"result": "FAILED: oom"}
    assert "error" not in liar_r

    assert denied_r["status"] == "FAILED"
    # Answered as OpenV's worker does (the render job contract), not raised.
    assert denied_r["error"].startswith("upload_failed: ")
    assert "HTTP 403" in denied_r["error"]
    assert denied_r["output"] == {"status": "ERROR"}
    assert key_d not in receiver.uploads

    for seen, field_name in ((traces[4], "progress"), (traces[5], "percent")):
        outputs = [s["output"] for s in seen if s["status"] == "IN_PROGRESS"]
        assert outputs
        assert all(set(o) == {field_name} and isinstance(o[field_name], int) for o in outputs)
    assert prog_r["status"] == pct_r["status"] == "COMPLETED"

    assert flaky_r["status"] == "FAILED"
    health_before = (await client.get(api("/health"))).json()["jobs"]["retried"]
    response = await client.post(api(f"/retry/{flaky}"))
    assert response.json() == {"id": flaky, "status": "IN_QUEUE"}
    again = await final(client, flaky)
    assert again["status"] == "COMPLETED"
    assert "error" not in again
    assert (await client.get(api("/health"))).json()["jobs"]["retried"] == health_before + 1
    assert (await client.post(api(f"/retry/{flaky}"))).status_code == 400


async def test_webhook_knobs_and_retries(client: httpx.AsyncClient, receiver: Receiver) -> None:
    fast = {"duration_s": 0.1, "queue_s": 0.05}
    names = {k: name() for k in ("drop", "dup", "late", "stale", "html", "retry", "dead")}
    hook = {k: f"{receiver.url}/hook/{v}" for k, v in names.items()}
    dropped = await submit(client, model_input(sim={**fast, "drop_webhook": True}), hook["drop"])
    dup = await submit(client, model_input(sim={**fast, "duplicate_webhook": 2}), hook["dup"])
    late = await submit(client, model_input(sim={**fast, "webhook_delay_s": 0.6}), hook["late"])
    stale = await submit(
        client, model_input(sim={**fast, "progress_after_complete": True}), hook["stale"]
    )
    html = await submit(client, model_input(sim={**fast, "non_json_webhook": True}), hook["html"])
    retried = await submit(client, model_input(sim=fast), hook["retry"] + "?codes=500,500")
    dead = await submit(client, model_input(sim=fast), hook["dead"] + "?codes=500,500,500,500")

    # The poll sees the result before the delayed webhook arrives.
    await final(client, late)
    seen_at = time.monotonic()
    assert receiver.hooks_for(names["late"]) == []
    (late_hook,) = await wait_hooks(receiver, names["late"], 1)
    assert late_hook.at > seen_at
    assert late_hook.json()["status"] == "COMPLETED"

    dups = await wait_hooks(receiver, names["dup"], 3)
    assert len({h.body for h in dups}) == 1
    assert dups[0].json()["id"] == dup

    first, second = await wait_hooks(receiver, names["stale"], 2)
    assert [first.json()["status"], second.json()["status"]] == ["COMPLETED", "IN_PROGRESS"]
    assert first.json()["id"] == second.json()["id"] == stale

    (html_hook,) = await wait_hooks(receiver, names["html"], 1)
    assert html_hook.content_type.startswith("text/html")
    with pytest.raises(ValueError):
        html_hook.json()
    assert html in (await client.get("/admin/jobs")).text

    attempts = await wait_hooks(receiver, names["retry"], 3)
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert all(gap >= RETRY_INTERVAL_S * 0.8 for gap in gaps)
    view = await admin_job(client, retried)
    assert (view["webhook_attempts"], view["webhooks_delivered"]) == (3, 1)
    assert [r["http_status"] for r in view["webhook_log"]] == [500, 500, 200]

    await wait_hooks(receiver, names["dead"], 3)
    await asyncio.sleep(RETRY_INTERVAL_S * 2)
    assert len(receiver.hooks_for(names["dead"])) == 3  # gives up after 3 attempts
    view = await admin_job(client, dead)
    assert (view["webhook_attempts"], view["webhooks_delivered"]) == (3, 0)
    assert (await status(client, dead))["status"] == "COMPLETED"

    assert (await final(client, dropped))["status"] == "COMPLETED"
    await asyncio.sleep(0.1)
    assert receiver.hooks_for(names["drop"]) == []
    assert (await admin_job(client, dropped))["webhook_attempts"] == 0


async def test_cancel_timeout_ttl_and_timing_knobs(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    h_timeout, h_timeout_hook, h_cancel, h_cancel_hook = name(), name(), name(), name()
    hang = {"hang": True, "queue_s": 0.05}
    timed = await submit(
        client,
        model_input(sim=hang),
        webhook=f"{receiver.url}/hook/{h_timeout}",
        policy={"executionTimeout": 600},
    )
    hung = await submit(client, model_input(sim=hang), webhook=f"{receiver.url}/hook/{h_cancel}")
    timed_hook = await submit(
        client,
        model_input(sim={**hang, "webhook_on_timeout": True}),
        webhook=f"{receiver.url}/hook/{h_timeout_hook}",
        policy={"executionTimeout": 600},
    )
    hung_hook = await submit(
        client,
        model_input(sim={**hang, "webhook_on_cancel": True}),
        webhook=f"{receiver.url}/hook/{h_cancel_hook}",
    )
    queued = await submit(client, model_input(sim={"queue_s": 5}))
    # ttl long enough to still be alive after the checks above on a loaded machine.
    expiring = await submit(client, model_input(sim=hang), policy={"ttl": 4000})
    slow_queue = await submit(client, model_input(sim={"queue_s": 0.5, "duration_s": 0.1}))
    quick = await submit(client, model_input(sim={"queue_s": 0.05, "duration_s": 0.05}))

    for job_id in (hung, hung_hook):
        await trace(client, job_id, until={"IN_PROGRESS"})
        response = await client.post(api(f"/cancel/{job_id}"))
        assert response.json() == {"id": job_id, "status": "CANCELLED"}
    response = await client.post(api(f"/cancel/{queued}"))
    assert response.json() == {"id": queued, "status": "CANCELLED"}

    timed_r = await final(client, timed)
    assert timed_r["status"] == "TIMED_OUT"
    assert 550 <= timed_r["executionTime"] < 2000

    quick_r = await final(client, quick)
    assert quick_r["status"] == "COMPLETED"
    response = await client.post(api(f"/cancel/{quick}"))
    assert response.json() == {"id": quick, "status": "COMPLETED"}  # terminal: unchanged

    slow_r = await final(client, slow_queue)
    assert slow_r["delayTime"] >= 450
    assert 100 <= slow_r["executionTime"] < 450

    assert (await status(client, expiring))["status"] == "IN_PROGRESS"
    deadline = time.monotonic() + 15
    while (await client.get(api(f"/status/{expiring}"))).status_code != 404:
        assert time.monotonic() < deadline, "a job past its ttl must disappear"
        await asyncio.sleep(0.1)

    for job_id in (hung, queued):
        cancelled = await status(client, job_id)
        assert cancelled["status"] == "CANCELLED"
        assert "output" not in cancelled
    assert (await admin_job(client, hung))["executions"] == 1
    assert (await admin_job(client, queued))["executions"] == 0
    (cancel_hook,) = await wait_hooks(receiver, h_cancel_hook, 1)
    assert cancel_hook.json()["status"] == "CANCELLED"
    (timeout_hook,) = await wait_hooks(receiver, h_timeout_hook, 1)
    assert timeout_hook.json()["id"] == timed_hook
    assert timeout_hook.json()["status"] == "TIMED_OUT"
    assert receiver.hooks_for(h_cancel) == []
    assert receiver.hooks_for(h_timeout) == []
    assert (await client.post(api("/cancel/nope-u1"))).status_code == 404


async def test_global_faults_purge_and_reset(client: httpx.AsyncClient) -> None:
    assert (await client.post("/admin/reset")).status_code == 200
    response = await client.post("/admin/faults", json={"run_429": 2, "run_500": 1})
    assert response.json()["run_429"] == 2
    assert (await client.post("/admin/faults", json={"bogus": 1})).status_code == 422

    body = {"input": model_input(sim={"queue_s": 5})}
    answers = [await client.post(api("/run"), json=body) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 500, 200]
    assert answers[0].headers["retry-after"] == "1"
    admin = (await client.get("/admin/jobs")).json()
    assert (admin["run_calls"], admin["runs_accepted"], len(admin["jobs"])) == (4, 1, 1)

    await client.post("/admin/faults", json={"status_500": 1})
    job_id = answers[3].json()["id"]
    assert (await client.get(api(f"/status/{job_id}"))).status_code == 500
    assert (await client.get(api(f"/status/{job_id}"))).status_code == 200

    await client.post("/admin/faults", json={"hang_run_s": 0.5})
    started = time.monotonic()
    slow_id = await submit(client, model_input(sim={"queue_s": 5}))
    assert time.monotonic() - started >= 0.5
    await client.post("/admin/faults", json={"hang_run_s": 0})
    other_id = await submit(client, model_input(sim={"queue_s": 5}))

    health = (await client.get(api("/health"))).json()
    assert health["jobs"]["inQueue"] == 3
    assert set(health["workers"]) == {"idle", "running"}
    response = await client.post(api("/purge-queue"))
    assert response.json() == {"removed": 3, "status": "completed"}
    for gone in (job_id, slow_id, other_id):
        assert (await client.get(api(f"/status/{gone}"))).status_code == 404

    kept = await submit(client, model_input(sim={"duration_s": 0.05, "queue_s": 0.05}))
    assert (await final(client, kept))["status"] == "COMPLETED"
    health = (await client.get(api("/health"))).json()
    assert health["jobs"]["completed"] == 1
    assert (await client.post("/admin/reset")).status_code == 200
    admin = (await client.get("/admin/jobs")).json()
    assert (admin["run_calls"], admin["jobs"]) == (0, [])
    assert (await client.get(api(f"/status/{kept}"))).status_code == 404


async def test_retention_expires_results() -> None:
    port = free_port()
    settings = SimSettings(
        api_key=API_KEY, port=port, retention_s=0.4, default_queue_s=0.05, default_duration_s=0.1
    )
    async with (
        serve(create_app(settings), port),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": API_KEY}
        ) as sim,
    ):
        job_id = await submit(sim, model_input(num_frames=7))
        done = await final(sim, job_id)
        assert done["status"] == "COMPLETED"
        file_url = done["output"]["result"]
        assert file_url.startswith(f"http://127.0.0.1:{port}/files/")
        assert (await sim.get(file_url)).status_code == 200
        await asyncio.sleep(0.6)
        assert (await sim.get(api(f"/status/{job_id}"))).status_code == 404
        assert (await sim.get(file_url)).status_code == 404


# --- the worker pool: cold starts, scale to zero, long queues, ttl in the queue ---------------


def pool_sim(port: int, **settings: Any) -> SimSettings:
    return SimSettings(
        api_key=API_KEY,
        port=port,
        default_queue_s=0.02,
        default_duration_s=0.1,
        progress_steps=1,
        **settings,
    )


@asynccontextmanager
async def own_sim(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process simulator of its own, so pool settings affect no other test."""
    port = free_port()
    async with (
        serve(create_app(pool_sim(port, **settings)), port),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": API_KEY}, timeout=10
        ) as sim,
    ):
        yield sim


async def test_cold_start_warm_reuse_and_scale_to_zero() -> None:
    async with own_sim(cold_start_s=0.6, idle_timeout_s=0.5) as sim:
        small = model_input(num_frames=7, width=64, height=64)
        # The first job finds no worker: it stays IN_QUEUE while one boots. The boot is queue
        # time, not execution time: an executionTimeout shorter than the boot is not hit.
        first_id = await submit(sim, small, policy={"executionTimeout": 500})
        first_trace = await trace(sim, first_id)
        first = first_trace[-1]
        assert first["status"] == "COMPLETED", first
        assert first["delayTime"] >= 600
        assert first["executionTime"] < 500
        assert {s["status"] for s in first_trace[:3]} == {"IN_QUEUE"}
        health = (await sim.get(api("/health"))).json()
        assert health["workers"] == {"idle": 1, "running": 0}

        # Right after it, the warm worker takes the next job at once.
        second = await final(sim, await submit(sim, small))
        assert second["delayTime"] < 400, second
        assert second["workerId"] == first["workerId"]

        # Idle past the timeout, the endpoint scales to zero and the next job cold-starts.
        await asyncio.sleep(0.7)
        health = (await sim.get(api("/health"))).json()
        assert health["workers"] == {"idle": 0, "running": 0}
        third = await final(sim, await submit(sim, small))
        assert third["delayTime"] >= 600, third
        assert third["workerId"] != first["workerId"]

        # A per-job knob forces a cold start even with a warm worker there.
        forced = await final(sim, await submit(sim, model_input(sim={"cold_start_s": 0.8})))
        assert forced["delayTime"] >= 800, forced


async def test_limited_workers_make_a_long_queue_and_ttl_expires_in_it() -> None:
    async with own_sim() as sim:
        assert (await sim.post("/admin/workers", json={"bogus": 1})).status_code == 422
        answer = await sim.post("/admin/workers", json={"max_workers": 1})
        assert answer.json()["max_workers"] == 1
        jobs = [await submit(sim, model_input(sim={"duration_s": 0.4})) for _ in range(3)]
        await trace(sim, jobs[0], until={"IN_PROGRESS"})
        health = (await sim.get(api("/health"))).json()
        assert (health["jobs"]["inProgress"], health["jobs"]["inQueue"]) == (1, 2)
        results = [await final(sim, job_id) for job_id in jobs]
        assert [r["status"] for r in results] == ["COMPLETED"] * 3
        # Each waited for the ones before it; the wait is reported as delayTime.
        assert results[1]["delayTime"] >= 350, results
        assert results[2]["delayTime"] >= 750, results
        assert results[2]["delayTime"] > results[1]["delayTime"] > results[0]["delayTime"]

        # Behind a job that never ends, a queued job's ttl runs out: RunPod deletes it.
        blocker = await submit(sim, model_input(sim={"hang": True}))
        await trace(sim, blocker, until={"IN_PROGRESS"})
        queued = await submit(sim, model_input(), policy={"ttl": 600})
        assert (await status(sim, queued))["status"] == "IN_QUEUE"
        await asyncio.sleep(0.3)
        assert (await status(sim, queued))["status"] == "IN_QUEUE"
        await asyncio.sleep(0.5)
        assert (await sim.get(api(f"/status/{queued}"))).status_code == 404
        assert (await sim.post(api(f"/cancel/{blocker}"))).json()["status"] == "CANCELLED"

        # More workers at run time let the queue drain in parallel.
        await sim.post("/admin/workers", json={"max_workers": 3})
        parallel = [await submit(sim, model_input(sim={"duration_s": 0.5})) for _ in range(3)]
        done = [await final(sim, j) for j in parallel]
        assert [r["status"] for r in done] == ["COMPLETED"] * 3
        assert max(r["delayTime"] for r in done) < 350, done  # none waited behind another
        # /admin/reset restores the configured pool.
        await sim.post("/admin/reset")
        assert (await sim.get("/admin/workers")).json()["max_workers"] == 8


async def test_retention_knob_forgets_one_job_result(client: httpx.AsyncClient) -> None:
    short = await submit(client, model_input(num_frames=7, sim={"retention_s": 0.3}))
    kept = await submit(client, model_input(num_frames=7))
    assert (await final(client, short))["status"] == "COMPLETED"
    assert (await final(client, kept))["status"] == "COMPLETED"
    await asyncio.sleep(0.5)
    assert (await client.get(api(f"/status/{short}"))).status_code == 404
    assert (await status(client, kept))["status"] == "COMPLETED"


async def test_a_job_cancelled_on_runpods_side_sends_no_webhook(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = name()
    job_id = await submit(
        client,
        model_input(sim={"hang": True, "cancel_after_s": 0.5}),
        webhook=f"{receiver.url}/hook/{hook}",
    )
    seen = await trace(client, job_id)
    assert seen[-1]["status"] == "CANCELLED"
    assert "IN_PROGRESS" in {s["status"] for s in seen}
    assert (await admin_job(client, job_id))["cancel_requests"] == 0  # nobody called /cancel
    await asyncio.sleep(0.3)
    assert receiver.hooks_for(hook) == []
