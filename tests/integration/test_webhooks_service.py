"""The webhooks service against a real Postgres and real receivers on 127.0.0.1: signatures
checked with the `standardwebhooks` reference library, retries, a hanging receiver, a
dispatcher replaced mid-backlog, order per video, the private-address guard. Video events are
handed to the recorder as the Kafka subscriber would (its offsets are committed only after
`on_events` returned)."""

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook

from openv_contracts import Envelope
from openv_contracts.events import VideoAccepted, VideoRunning, video_stream_id
from openv_contracts.video import VideoParams
from openv_contracts.webhooks import WebhookEvent, WebhookTarget
from openv_localstack.ports import free_port
from openv_localstack.servers import EmbeddedPostgres
from openv_webhooks.adapters import migrations
from openv_webhooks.config import Settings
from openv_webhooks.main import Webhooks, build
from tests.integration.support import eventually, serve

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """A client app: verifies every signature, answers per its script."""

    secrets: dict[str, str] = field(default_factory=dict)  # user -> secret
    fail_first: Counter[str] = field(default_factory=Counter)  # webhook-id -> 500s to answer
    hang: bool = False
    #: Set to let hanging requests end (uvicorn waits for them when it stops).
    released: asyncio.Event = field(default_factory=asyncio.Event)
    got: list[tuple[str, str, int, float]] = field(default_factory=list)  # id, type, status, t

    def app(self, user: str) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            payload = Webhook(self.secrets[user]).verify(body, headers)
            if self.hang:
                await self.released.wait()
            webhook_id = headers["webhook-id"]
            status = 500 if self.fail_first[webhook_id] > 0 else 200
            self.fail_first[webhook_id] -= 1
            self.got.append((webhook_id, payload["type"], status, time.monotonic()))
            return Response(status_code=status)

        return app


async def make_settings(postgres: EmbeddedPostgres, **overrides: Any) -> Settings:
    name = f"webhooks_{uuid4().hex[:12]}"
    postgres.create_database(name)
    settings = Settings(
        database_url=postgres.dsn_for(name),
        client_webhook_allow_http=True,
        client_webhook_allow_private_hosts=overrides.pop("allow_private", True),
        client_webhook_retry_base_s=0.1,
        client_webhook_retry_max_s=0.2,
        client_webhook_timeout_s=overrides.pop("timeout_s", 3.0),
        client_webhook_poll_s=0.1,
        **overrides,
    )
    await migrations.upgrade(settings)
    return settings


@asynccontextmanager
async def running(settings: Settings, lease_s: float = 1.0) -> AsyncIterator[Webhooks]:
    webhooks = build(settings)
    webhooks.dispatcher.limits = dataclasses.replace(webhooks.dispatcher.limits, lease_s=lease_s)
    task = asyncio.create_task(webhooks.dispatcher.run_forever())
    try:
        yield webhooks
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await webhooks.aclose()


def events(video_id: UUID, user: str, url: str, running_too: bool = False) -> list[Envelope]:
    target = WebhookTarget(url=url, events=frozenset(WebhookEvent))
    accepted = VideoAccepted(
        video_id=video_id, prompt="a cat", params=VideoParams(seed=1), duration_seconds=1.0,
        charged_seconds=1.0, object_prefix="videos/x", webhook=target,
    )  # fmt: skip
    messages: list[Any] = [accepted]
    if running_too:
        messages.append(VideoRunning(video_id=video_id, progress=None))
    return [
        Envelope.wrap(m, user_id=user, stream_id=video_stream_id(video_id), stream_version=n)
        for n, m in enumerate(messages, start=1)
    ]


async def test_500_twice_then_200_is_one_delivery_with_three_attempts(
    postgres: EmbeddedPostgres,
) -> None:
    settings = await make_settings(postgres)
    receiver, port = Receiver(), free_port()
    async with serve(receiver.app("u1"), port), running(settings) as webhooks:
        receiver.secrets["u1"] = (await webhooks.secrets.view("u1")).secret
        video = uuid4()
        stream = events(video, "u1", f"http://127.0.0.1:{port}/hook")
        receiver.fail_first["msg_" + stream[0].event_id.hex] = 2
        await webhooks.recorder.on_events(stream)
        await webhooks.recorder.on_events(stream)  # redelivered by Kafka: recorded once
        await eventually(lambda: any(s == 200 for *_, s, _ in receiver.got), "a 200")
        page = await eventually(
            lambda: _delivered(webhooks, video, 1), "the delivery recorded as delivered"
        )
    [delivery] = page.data
    assert delivery.id == "msg_" + stream[0].event_id.hex
    assert [a.status_code for a in delivery.attempts] == [500, 500, 200]
    assert {webhook_id for webhook_id, *_ in receiver.got} == {delivery.id}
    assert [t for _, t, _, _ in receiver.got] == ["video.queued"] * 3


async def _delivered(webhooks: Webhooks, video: UUID, count: int) -> Any:
    page = await webhooks.deliveries.deliveries(video)
    done = [d for d in page.data if d.state == "delivered"]
    return page if len(done) == count else None


async def test_a_hanging_receiver_does_not_delay_another_users(
    postgres: EmbeddedPostgres,
) -> None:
    # Fewer slots in all than A has deliveries: only the per-receiver bound leaves B some.
    settings = await make_settings(postgres, timeout_s=6.0, client_webhook_concurrency=8)
    hanging, healthy = Receiver(hang=True), Receiver()
    port_a, port_b = free_port(), free_port()
    async with (
        serve(hanging.app("a"), port_a),
        serve(healthy.app("b"), port_b),
        running(settings, lease_s=30) as webhooks,
    ):
        hanging.secrets["a"] = (await webhooks.secrets.view("a")).secret
        healthy.secrets["b"] = (await webhooks.secrets.view("b")).secret
        for _ in range(12):  # more than the per-receiver slots: A's fill its own
            await webhooks.recorder.on_events(
                events(uuid4(), "a", f"http://127.0.0.1:{port_a}/hook")
            )
        await asyncio.sleep(0.5)  # A's attempts are hanging now
        started = time.monotonic()
        for _ in range(5):
            await webhooks.recorder.on_events(
                events(uuid4(), "b", f"http://127.0.0.1:{port_b}/hook")
            )
        try:
            await eventually(lambda: len(healthy.got) == 5, "B's deliveries", wait_s=2.5)
            assert max(t for *_, t in healthy.got) - started < 2.5
            assert webhooks.dispatcher.in_flight[f"http://127.0.0.1:{port_a}"] == 4
            assert hanging.got == []
        finally:
            hanging.released.set()


async def test_a_dispatcher_replaced_mid_backlog_loses_nothing(
    postgres: EmbeddedPostgres,
) -> None:
    settings = await make_settings(postgres)
    receiver, port = Receiver(), free_port()
    url = f"http://127.0.0.1:{port}/hook"
    async with serve(receiver.app("u"), port):
        async with running(settings) as first:
            receiver.secrets["u"] = (await first.secrets.view("u")).secret
            ids = set()
            for _ in range(30):
                stream = events(uuid4(), "u", url)
                ids.add("msg_" + stream[0].event_id.hex)
                await first.recorder.on_events(stream)
            await eventually(lambda: len(receiver.got) >= 3, "some deliveries")
        # The first instance is gone mid-backlog (its leased attempts abandoned).
        assert len({w for w, *_ in receiver.got}) < 30
        async with running(settings):
            await eventually(
                lambda: {w for w, _, s, _ in receiver.got if s == 200} == ids,
                "every delivery",
            )


async def test_a_videos_next_event_waits_for_the_previous(postgres: EmbeddedPostgres) -> None:
    settings = await make_settings(postgres)
    receiver, port = Receiver(), free_port()
    async with serve(receiver.app("u"), port), running(settings) as webhooks:
        receiver.secrets["u"] = (await webhooks.secrets.view("u")).secret
        stream = events(uuid4(), "u", f"http://127.0.0.1:{port}/hook", running_too=True)
        first, second = ("msg_" + e.event_id.hex for e in stream)
        receiver.fail_first[first] = 3
        await webhooks.recorder.on_events(stream)
        await eventually(lambda: any(w == second for w, *_ in receiver.got), "event 2")
    order = [(w, s) for w, _, s, _ in receiver.got]
    assert order == [(first, 500)] * 3 + [(first, 200), (second, 200)]


async def test_a_private_address_is_refused_without_sending(postgres: EmbeddedPostgres) -> None:
    settings = await make_settings(postgres, allow_private=False)
    receiver, port = Receiver(), free_port()
    async with serve(receiver.app("u"), port), running(settings) as webhooks:
        receiver.secrets["u"] = (await webhooks.secrets.view("u")).secret
        video = uuid4()
        await webhooks.recorder.on_events(events(video, "u", f"http://localhost:{port}/hook"))

        async def refused() -> Any:
            page = await webhooks.deliveries.deliveries(video)
            return page.data and page.data[0].attempts

        attempts = await eventually(refused, "a refused attempt")
    assert attempts[0].status_code is None
    assert "not a public address" in (attempts[0].error or "")
    assert receiver.got == []
