"""The webhooks service's operations against a real Postgres and real HTTP: replaying failed
deliveries (the internal route, and `python -m openv_webhooks replay` as a real process), the
Prometheus metrics on its admin app, and its internal routes. The service's own app
(`create_app`) is served on a loopback port without its lifespan (no Kafka: video events are
handed to the recorder as the subscriber would) and its dispatcher runs in the test's loop."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from openv_infra.admin import create_admin_app
from openv_localstack.ports import free_port
from openv_localstack.servers import EmbeddedPostgres
from openv_webhooks.config import Settings
from openv_webhooks.main import Webhooks, create_app
from tests.integration.support import eventually, serve
from tests.integration.test_webhooks_service import Receiver, events, make_settings

pytestmark = pytest.mark.integration

#: A receiver answers 500 this many times: for the length of a test, always.
ALWAYS = 10**6


@dataclass
class Service:
    webhooks: Webhooks
    api: httpx.AsyncClient  # the internal API, over HTTP
    admin: httpx.AsyncClient  # the admin port (/metrics)
    dispatching: "Dispatching"


@dataclass
class Dispatching:
    """The service's dispatcher loop, which a test may stop and start again."""

    webhooks: Webhooks
    task: "asyncio.Task[None] | None" = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.webhooks.dispatcher.run_forever())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[Service]:
    app = create_app(settings)
    webhooks: Webhooks = app.state.webhooks
    port, admin_port = free_port(), free_port()
    dispatching = Dispatching(webhooks)
    async with (
        serve(app, port, lifespan="off"),
        serve(create_admin_app(app), admin_port, lifespan="off"),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin_port}") as admin,
    ):
        dispatching.start()
        try:
            yield Service(webhooks, api, admin, dispatching)
        finally:
            await dispatching.stop()
            await webhooks.aclose()


@asynccontextmanager
async def receiving(settings: Settings) -> AsyncIterator[tuple[Service, Receiver, str]]:
    """The service and a receiver of user `u`'s deliveries (at the URL yielded)."""
    receiver, port = Receiver(), free_port()
    async with serve(receiver.app("u"), port), service(settings) as svc:
        receiver.secrets["u"] = (await svc.webhooks.secrets.view("u")).secret
        yield svc, receiver, f"http://127.0.0.1:{port}/hook"


async def page(api: httpx.AsyncClient, video: UUID) -> list[dict[str, Any]]:
    response = await api.get(f"/internal/videos/{video}/webhook-deliveries")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def in_state(api: httpx.AsyncClient, video: UUID, state: str) -> Any:
    async def probe() -> dict[str, Any] | None:
        deliveries = await page(api, video)
        return deliveries[0] if deliveries and deliveries[0]["state"] == state else None

    return probe


async def give_up_at(webhooks: Webhooks, video: UUID) -> datetime:
    async with webhooks.engine.connect() as conn:
        found: datetime = (
            await conn.execute(
                sa.text("SELECT give_up_at FROM webhook_deliveries WHERE video_id = :v"),
                {"v": video},
            )
        ).scalar_one()
    return found


async def test_a_given_up_delivery_replayed_by_the_internal_route_is_delivered(
    postgres: EmbeddedPostgres,
) -> None:
    settings = await make_settings(postgres, client_webhook_give_up_s=1.0)
    async with receiving(settings) as (svc, receiver, url):
        video = uuid4()
        stream = events(video, "u", url)
        webhook_id = "msg_" + stream[0].event_id.hex
        receiver.fail_first[webhook_id] = ALWAYS
        await svc.webhooks.recorder.on_events(stream)
        failed = await eventually(in_state(svc.api, video, "failed"), "the delivery given up")
        assert failed["id"] == webhook_id
        assert failed["next_attempt_at"] is None
        assert len(failed["attempts"]) >= 2
        assert {a["status_code"] for a in failed["attempts"]} == {500}

        await svc.dispatching.stop()  # to see the replayed delivery before it is sent
        receiver.fail_first[webhook_id] = 0
        replayed_at = datetime.now(UTC)
        answer = await svc.api.post(f"/internal/videos/{video}/webhook-deliveries/replay")
        assert answer.status_code == 200
        assert answer.json() == {"replayed": 1}
        [pending] = await page(svc.api, video)
        assert (pending["id"], pending["state"]) == (webhook_id, "pending")
        assert pending["next_attempt_at"] is not None
        assert await give_up_at(svc.webhooks, video) >= replayed_at + timedelta(seconds=1)
        again = await svc.api.post(f"/internal/videos/{video}/webhook-deliveries/replay")
        assert again.json() == {"replayed": 0}  # only failed deliveries are replayed

        svc.dispatching.start()
        delivered = await eventually(in_state(svc.api, video, "delivered"), "the replay")
    assert delivered["id"] == webhook_id
    assert delivered["attempts"][-1]["status_code"] == 200
    assert {w for w, *_ in receiver.got} == {webhook_id}  # the same webhook-id throughout
    assert [s for _, _, s, _ in receiver.got if s == 200] == [200]


async def run_replay(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "OPENV_DATABASE_URL": settings.database_url.get_secret_value(),
        "OPENV_CLIENT_WEBHOOK_GIVE_UP_S": "30",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "openv_webhooks", "replay", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_replay_command_replays_failed_since_a_time_and_one_video(
    postgres: EmbeddedPostgres,
) -> None:
    settings = await make_settings(postgres, client_webhook_give_up_s=1.0)
    async with receiving(settings) as (svc, receiver, url):
        early, *later = videos = [uuid4() for _ in range(3)]
        streams = [events(video, "u", url) for video in videos]
        for stream in streams:
            receiver.fail_first["msg_" + stream[0].event_id.hex] = ALWAYS
        await svc.webhooks.recorder.on_events(streams[0])
        await eventually(in_state(svc.api, early, "failed"), "the first video given up")
        since = datetime.now(UTC)
        for stream in streams[1:]:
            await svc.webhooks.recorder.on_events(stream)
        for video in later:
            await eventually(in_state(svc.api, video, "failed"), "the later ones given up")
        receiver.fail_first.clear()  # the receiver is back

        code, out, err = await run_replay(settings, "--failed-since", since.isoformat())
        assert (code, out.strip()) == (0, '{"replayed":2}'), err
        for video in later:
            await eventually(in_state(svc.api, video, "delivered"), "the replayed ones")
        assert (await page(svc.api, early))[0]["state"] == "failed"  # failed before `since`

        code, out, err = await run_replay(settings, "--video", str(early))
        assert (code, out.strip()) == (0, '{"replayed":1}'), err
        await eventually(in_state(svc.api, early, "delivered"), "the replayed video")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "exactly one of --video"),
        (("--video", str(uuid4()), "--failed-since", "2024-01-01T00:00:00Z"), "exactly one"),
        (("--video", "not-a-uuid"), "badly formed hexadecimal UUID string"),
        (("--failed-since", "yesterday"), "Invalid isoformat string"),
    ],
)
async def test_the_replay_command_refuses_bad_arguments_clearly(
    postgres: EmbeddedPostgres, args: tuple[str, ...], says: str
) -> None:
    settings = await make_settings(postgres)
    code, out, err = await run_replay(settings, *args)
    assert code != 0
    assert says in err
    assert "Traceback" not in err and out == ""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(admin: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await admin.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


def value(metrics: dict[Any, float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_deliveries_attempts_and_the_backlog(
    postgres: EmbeddedPostgres,
) -> None:
    settings = await make_settings(postgres, client_webhook_give_up_s=2.0)
    async with receiving(settings) as (svc, receiver, url):
        before = await scrape(svc.admin)
        videos = [uuid4() for _ in range(3)]
        dead, retried, fine = (events(video, "u", url) for video in videos)
        receiver.fail_first["msg_" + dead[0].event_id.hex] = ALWAYS
        receiver.fail_first["msg_" + retried[0].event_id.hex] = 1
        for stream in (dead, retried, fine):
            await svc.webhooks.recorder.on_events(stream)
        pending = await eventually(
            lambda: _scraped_if(svc.admin, lambda m: value(m, "openv_webhooks_backlog") >= 1),
            "a backlog while the dead receiver's delivery is pending",
        )
        assert value(pending, "openv_webhooks_backlog") <= 3
        after = await eventually(
            lambda: _scraped_if(
                svc.admin,
                lambda m: (
                    value(m, "openv_webhooks_backlog") == 0
                    and _delta(m, before, "openv_webhooks_deliveries_total", outcome="failed") == 1
                ),
            ),
            "an empty backlog once every delivery is finished",
        )
        attempts = [a for v in videos for d in await page(svc.api, v) for a in d["attempts"]]
    failed_attempts = sum(1 for a in attempts if a["status_code"] != 200)
    assert _delta(after, before, "openv_webhooks_deliveries_total", outcome="delivered") == 2
    assert _delta(after, before, "openv_webhooks_attempts_total", result="delivered") == 2
    assert _delta(after, before, "openv_webhooks_attempts_total", result="failed") == (
        failed_attempts
    )
    assert failed_attempts >= 3  # the dead receiver's (at least two) and the retried one's
    assert value(after, "openv_webhooks_oldest_pending_seconds") == 0


async def _scraped_if(admin: httpx.AsyncClient, wanted: Any) -> Any:
    metrics = await scrape(admin)
    return metrics if wanted(metrics) else None


def _delta(after: dict[Any, float], before: dict[Any, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_the_internal_routes(postgres: EmbeddedPostgres) -> None:
    settings = await make_settings(postgres)
    async with service(settings) as svc:
        unknown = await svc.api.get(f"/internal/videos/{uuid4()}/webhook-deliveries")
        assert (unknown.status_code, unknown.json()) == (200, {"data": []})
        replayed = await svc.api.post(f"/internal/videos/{uuid4()}/webhook-deliveries/replay")
        assert (replayed.status_code, replayed.json()) == (200, {"replayed": 0})
        bad = await svc.api.get("/internal/videos/not-a-uuid/webhook-deliveries")
        assert bad.status_code == 422

        secrets = {}
        for user in ("plain", "auth0|abc 123", "org/team/user", "a b|c/d", "x/webhook-secret"):
            path = f"/internal/users/{quote(user, safe='')}/webhook-secret"
            first, second = await svc.api.get(path), await svc.api.get(path)
            assert first.status_code == 200, (user, first.text)
            assert first.json()["secret"] == second.json()["secret"]
            assert first.json()["secret"].startswith("whsec_")
            secrets[user] = first.json()["secret"]
            assert (await svc.webhooks.secrets.view(user)).secret == secrets[user]
            rotated = await svc.api.post(path + "/rotate")
            assert rotated.status_code == 200, (user, rotated.text)
            assert rotated.json()["secret"] != secrets[user]
            assert (await svc.api.get(path)).json()["secret"] == rotated.json()["secret"]
        assert len(set(secrets.values())) == len(secrets)  # one secret per user
