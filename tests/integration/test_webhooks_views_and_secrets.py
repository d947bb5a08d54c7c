"""The webhooks service against a real Postgres and real HTTP: a video's view read from the
jobs service after a gap in its events (a real `JobsApi` against a small jobs server on
127.0.0.1), and deliveries signed during and after a secret rotation's overlap (checked with
the `standardwebhooks` reference library)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from openv_contracts import Envelope
from openv_contracts.events import VideoRunning, video_stream_id
from openv_contracts.queries import JobsUnavailable, VideoView, decided_view
from openv_contracts.video import VideoStatus
from openv_localstack.ports import free_port
from openv_localstack.servers import EmbeddedPostgres
from tests.integration.support import eventually, serve
from tests.integration.test_webhooks_service import events, make_settings, running

pytestmark = pytest.mark.integration


@dataclass
class Captured:
    """A receiver that keeps every request as it came (and answers 200)."""

    got: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.got.append((await request.body(), dict(request.headers)))
            return Response(status_code=200)

        return app


@dataclass
class Jobs:
    """The jobs service's view route: each video's view, or 503 while `down`."""

    views: dict[UUID, VideoView] = field(default_factory=dict)
    down: bool = False
    asked: list[tuple[UUID, int | None]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/videos/{video_id}")
        async def video(video_id: UUID, version: int | None = None) -> Response:
            self.asked.append((video_id, version))
            if self.down:
                return Response(status_code=503)
            found = self.views.get(video_id)
            if found is None:
                return Response(status_code=404)
            return Response(found.model_dump_json(), media_type="application/json")

        return app


@asynccontextmanager
async def jobs_server(jobs: Jobs) -> AsyncIterator[str]:
    port = free_port()
    async with serve(jobs.app(), port):
        yield f"http://127.0.0.1:{port}"


def after_a_gap(accepted: Envelope, version: int) -> tuple[Envelope, VideoView]:
    """A `VideoRunning` at `version` (events between are missing), and the video then."""
    queued = decided_view(accepted)
    assert queued is not None
    running_at = Envelope.wrap(
        VideoRunning(video_id=queued.id, progress=40),
        user_id=queued.user_id,
        stream_id=video_stream_id(queued.id),
        stream_version=version,
    )
    view = queued.model_copy(
        update={
            "status": VideoStatus.RUNNING,
            "progress": 40,
            "started_at": running_at.occurred_at,
            "updated_at": running_at.occurred_at,
            "version": version,
        }
    )
    return running_at, view


async def test_after_a_gap_the_view_is_read_from_the_jobs_service(
    postgres: EmbeddedPostgres,
) -> None:
    jobs, receiver, port = Jobs(), Captured(), free_port()
    async with jobs_server(jobs) as jobs_url, serve(receiver.app(), port):
        settings = await make_settings(postgres, jobs_url=jobs_url)
        async with running(settings) as webhooks:
            secret = (await webhooks.secrets.view("u")).secret
            video = uuid4()
            [accepted] = events(video, "u", f"http://127.0.0.1:{port}/hook")
            gap, view = after_a_gap(accepted, version=3)  # held 1, next 3
            jobs.views[video] = view
            await webhooks.recorder.on_events([accepted, gap])
            await eventually(lambda: len(receiver.got) == 2, "both deliveries")
            page = await webhooks.deliveries.deliveries(video)
    assert jobs.asked == [(video, 3)]
    assert [(d.event, d.version, d.state) for d in page.data] == [
        ("queued", 1, "delivered"),
        ("started", 3, "delivered"),
    ]
    body, headers = receiver.got[1]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "video.started"
    assert (payload["data"]["status"], payload["data"]["progress"]) == ("running", 40)
    assert headers["webhook-id"] == "msg_" + gap.event_id.hex


async def test_a_gap_while_the_jobs_service_is_down_records_nothing_and_is_retried(
    postgres: EmbeddedPostgres,
) -> None:
    jobs = Jobs(down=True)
    async with jobs_server(jobs) as jobs_url:
        settings = await make_settings(postgres, jobs_url=jobs_url)
        async with running(settings) as webhooks:
            video = uuid4()
            [accepted] = events(video, "u", "http://127.0.0.1:9/hook")
            gap, view = after_a_gap(accepted, version=3)
            jobs.views[video] = view
            await webhooks.recorder.on_events([accepted])
            with pytest.raises(JobsUnavailable):
                await webhooks.recorder.on_events([gap])  # the consumer reads it again
            assert [d.version for d in (await webhooks.deliveries.deliveries(video)).data] == [1]
            assert jobs.asked == [(video, 3)]

            jobs.down = False  # back: the batch read again records the delivery
            await webhooks.recorder.on_events([gap])
            page = await webhooks.deliveries.deliveries(video)
    assert [(d.event, d.version) for d in page.data] == [("queued", 1), ("started", 3)]


def verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


async def test_a_rotated_secret_signs_alongside_the_new_one_for_the_overlap_only(
    postgres: EmbeddedPostgres,
) -> None:
    settings = await make_settings(postgres, client_webhook_secret_overlap_s=1.0)
    receiver, port = Captured(), free_port()
    url = f"http://127.0.0.1:{port}/hook"
    async with serve(receiver.app(), port), running(settings) as webhooks:
        old = (await webhooks.secrets.view("u")).secret
        rotated = await webhooks.secrets.rotate("u")
        new = rotated.secret
        assert new != old and rotated.previous_expires_at is not None
        await webhooks.recorder.on_events(events(uuid4(), "u", url))
        await eventually(lambda: len(receiver.got) == 1, "a delivery during the overlap")
        during: Any = receiver.got[0]

        overlap_end = rotated.previous_expires_at
        await eventually(lambda: datetime.now(UTC) > overlap_end, "the overlap's end", 5)
        assert (await webhooks.secrets.view("u")).previous_expires_at is None
        await webhooks.recorder.on_events(events(uuid4(), "u", url))
        await eventually(lambda: len(receiver.got) == 2, "a delivery after the overlap")
        after: Any = receiver.got[1]
    assert verifies(new, *during) and verifies(old, *during)
    assert len(during[1]["webhook-signature"].split()) == 2
    assert verifies(new, *after)
    assert not verifies(old, *after)
    assert len(after[1]["webhook-signature"].split()) == 1
