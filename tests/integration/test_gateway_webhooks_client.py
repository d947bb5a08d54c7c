"""The client of the webhooks service's internal API (openv_infra.webhooks_api) against a real
HTTP server on 127.0.0.1: the paths and methods it calls (a user id is one encoded segment),
the typed answers, and every failure (down, an undefined status, a wrong shape) as
`WebhooksUnavailable` that does not quote the answer (it may hold a secret)."""

import json
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from fastapi import FastAPI, Request, Response

from openv_infra.webhooks_api import WebhooksApi, WebhooksUnavailable
from openv_localstack.ports import free_port
from tests.integration.support import serve

pytestmark = pytest.mark.integration

SECRET = {"secret": "whsec_c2VjcmV0", "created_at": "2030-01-01T00:00:00Z"}
DELIVERY = {
    "id": "msg_00",
    "event": "completed",
    "version": 3,
    "url": "https://hooks.example.com/h",
    "state": "failed",
    "created_at": "2030-01-01T00:00:00Z",
    "next_attempt_at": None,
    "delivered_at": None,
    "attempts": [
        {"at": "2030-01-01T00:00:01Z", "status_code": 500, "latency_ms": 12, "error": "HTTP 500"}
    ],
}


class Server:
    def __init__(self, url: str, calls: list[str], answers: dict[str, object]) -> None:
        self.url, self.calls, self.answers = url, calls, answers


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    calls: list[str] = []
    answers: dict[str, object] = {}
    app = FastAPI()

    @app.api_route("/{anything:path}", methods=["GET", "POST"])
    async def anything(request: Request) -> Response:
        path = request.scope["raw_path"].decode()
        calls.append(f"{request.method} {path}")
        answer = answers.get(path.rsplit("/", 1)[-1], 404)
        if isinstance(answer, int):
            return Response(status_code=answer)
        return Response(json.dumps(answer), media_type="application/json")

    port = free_port()
    async with serve(app, port):
        yield Server(f"http://127.0.0.1:{port}", calls, answers)


async def test_each_call_reaches_its_path_and_reads_its_answer(server: Server) -> None:
    server.answers.update(
        {
            "webhook-secret": SECRET,
            "rotate": {**SECRET, "previous_expires_at": "2030-01-02T00:00:00Z"},
            "webhook-deliveries": {"data": [DELIVERY]},
            "replay": {"replayed": 1},
        }
    )
    video = uuid4()
    client = WebhooksApi(server.url, 5.0)
    try:
        assert (await client.secret("a/b")).secret == "whsec_c2VjcmV0"
        rotated = await client.rotate_secret("..")
        assert rotated.previous_expires_at is not None
        page = await client.deliveries(video)
        assert page.data[0].attempts[0].status_code == 500
        assert (await client.replay(video)).replayed == 1
    finally:
        await client.aclose()
    assert server.calls == [
        "GET /internal/users/a%2Fb/webhook-secret",
        "POST /internal/users/%2E%2E/webhook-secret/rotate",
        f"GET /internal/videos/{video}/webhook-deliveries",
        f"POST /internal/videos/{video}/webhook-deliveries/replay",
    ]


async def test_anything_but_the_contracts_answer_is_unavailable(server: Server) -> None:
    server.answers.update({"webhook-secret": 500, "webhook-deliveries": {"data": "whsec_x"}})
    client = WebhooksApi(server.url, 5.0)
    try:
        with pytest.raises(WebhooksUnavailable, match="answered 500"):
            await client.secret("alice")
        with pytest.raises(WebhooksUnavailable) as wrong:
            await client.deliveries(uuid4())
        assert "whsec" not in str(wrong.value)
    finally:
        await client.aclose()
    down = WebhooksApi(f"http://127.0.0.1:{free_port()}", 1.0)
    try:
        with pytest.raises(WebhooksUnavailable):
            await down.replay(uuid4())
    finally:
        await down.aclose()
