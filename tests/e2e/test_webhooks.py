"""Webhooks to client apps, end to end: a create names a webhook on 127.0.0.1 (allowed in local
mode), the whole stack runs the video, and the webhooks service sends its events, signed, to a
real receiver that checks every signature with the Standard Webhooks reference library.

The stack's retries are quick here (conftest.py: first retry after 0.3 s, at most 1 s apart,
10 s per attempt)."""

import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from openv_localstack.stack import LocalStack
from tests.e2e.support import SMALL, Auth, poll, wait_for
from tests.e2e.webhook_receiver import Receiver, Request, receiving

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected"}


def user() -> str:
    return f"hooks-{uuid.uuid4().hex[:8]}"


def secret_of(api: httpx.Client, headers: dict[str, str]) -> str:
    response = api.get("/v1/webhooks/secret", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    secret: str = response.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


def create(
    api: httpx.Client,
    headers: dict[str, str],
    url: str,
    events: list[str] | None = None,
    prompt: str = "a paper boat on a pond",
) -> str:
    body: dict[str, Any] = {"prompt": prompt, **SMALL, "webhook": url}
    if events is not None:
        body["webhook_events_filter"] = events
    response = api.post("/v1/videos", json=body, headers=headers)
    assert response.status_code in (201, 202), response.text
    video_id: str = response.json()["id"]
    return video_id


def rendering_slowly(stack: LocalStack, seconds: float = 4.0) -> str:
    """A prompt whose render the simulator stretches to `seconds`: long enough for the bridge
    to see the worker start (RunPod reports a start only to polls, which come once a job is
    quiet for 1 s; a real render takes minutes, a default simulated one 1 s)."""
    marker = f"slow-{uuid.uuid4().hex[:8]}"
    body = {"prompt_contains": marker, "sim": {"duration_s": seconds}}
    response = httpx.post(f"{stack.sim_url}/admin/scenarios", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return f"a paper boat on a pond {marker}"


def verified(request: Request, *secrets: str) -> dict[str, Any]:
    """The payload, once every secret given verifies the request's signature."""
    for secret in secrets:
        payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
        assert payload == request.payload
    return request.payload


def accepted_for(receiver: Receiver, video_id: str) -> list[Request]:
    return [r for r in receiver.accepted() if r.payload["data"]["id"] == video_id]


def types(requests: list[Request]) -> list[str]:
    return [r.payload["type"] for r in requests]


def deliveries(api: httpx.Client, video_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = api.get(f"/v1/videos/{video_id}/webhook-deliveries", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def all_delivered(api: httpx.Client, video_id: str, headers: dict[str, str]) -> Callable[[], bool]:
    def probe() -> bool:
        found = deliveries(api, video_id, headers)
        return bool(found) and all(d["state"] == "delivered" for d in found)

    return probe


def test_a_create_followed_to_completion_delivers_queued_started_and_completed_signed(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    secret = secret_of(api, headers)
    with receiving() as receiver:
        video_id = create(api, headers, receiver.url, prompt=rendering_slowly(stack))
        video = poll(api, video_id, headers, lambda v: v["status"] in TERMINAL)
        assert video["status"] == "completed"
        wait_for(
            "the completed webhook",
            lambda: "video.completed" in types(accepted_for(receiver, video_id)),
        )
        wait_for("every delivery recorded as delivered", all_delivered(api, video_id, headers))
        got = accepted_for(receiver, video_id)

    sent = types(got)
    # In order, each once: queued, started, any progress, then completed last.
    assert sent[0] == "video.queued" and sent[1] == "video.started", sent
    assert sent[-1] == "video.completed" and sent.count("video.completed") == 1, sent
    assert set(sent[2:-1]) <= {"video.progress"}, sent
    assert len({r.webhook_id for r in got}) == len(got)
    payloads = [verified(request, secret) for request in got]
    assert all(p["data"]["id"] == video_id for p in payloads)
    assert payloads[0]["data"]["status"] == "queued"
    assert payloads[1]["data"]["status"] == "running"
    final = payloads[-1]["data"]
    # The body is the video as GET shows it: the same resource, with its playable file.
    assert final["status"] == "completed" and final["progress"] == 100
    assert final["video"]["url"].startswith("http") and final["video"]["size_bytes"] > 0
    assert final["prompt"] == video["prompt"] and final["params"] == video["params"]
    assert httpx.get(final["video"]["url"], timeout=10).status_code == 200
    # And the log of deliveries says the same, one 2xx attempt each.
    recorded = deliveries(api, video_id, headers)
    assert [f"video.{d['event']}" for d in recorded] == sent
    assert {d["id"] for d in recorded} == {r.webhook_id for r in got}
    for delivery in recorded:
        assert [a["status_code"] for a in delivery["attempts"]] == [200], delivery


def test_a_receiver_failing_twice_gets_exactly_one_accepted_delivery_per_event(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    secret = secret_of(api, headers)
    # 500 on each event's first two attempts, 200 on the third.
    with receiving(lambda attempt: 500 if attempt <= 2 else 200) as receiver:
        video_id = create(api, headers, receiver.url, ["queued", "completed"])
        poll(api, video_id, headers, lambda v: v["status"] in TERMINAL)
        wait_for("both deliveries delivered", all_delivered(api, video_id, headers), 60)
        requests = [r for r in receiver.all() if r.payload["data"]["id"] == video_id]

    accepted = [r for r in requests if r.status == 200]
    assert types(accepted) == ["video.queued", "video.completed"]
    for event_id in {r.webhook_id for r in requests}:
        tries = [r for r in requests if r.webhook_id == event_id]
        # Three tries of the same message (same id), the first two refused, all signed.
        assert [r.status for r in tries] == [500, 500, 200]
        for request in tries:
            verified(request, secret)
    # In order per video: the completed event was not tried before queued was accepted.
    first_completed = min(
        r.received_at for r in requests if r.payload["type"].endswith("completed")
    )
    assert first_completed >= accepted[0].received_at
    recorded = deliveries(api, video_id, headers)
    assert [[a["status_code"] for a in d["attempts"]] for d in recorded] == [[500, 500, 200]] * 2
    assert all(a["latency_ms"] >= 0 for d in recorded for a in d["attempts"])


def test_a_hanging_receiver_does_not_delay_another_users_deliveries(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    hanging_users = [auth(user()) for _ in range(3)]
    other = auth(user())
    with receiving(lambda _attempt: None) as slow, receiving() as fast:
        # Nine videos whose webhooks all hang on one receiver (three users, three each).
        for headers in hanging_users:
            for _ in range(3):
                create(api, headers, slow.url, ["queued"])
        wait_for("the hanging receiver to be called", lambda: slow.in_flight >= 1, 30)
        started = time.monotonic()
        video_id = create(api, other, fast.url, ["queued"])
        wait_for("the other user's webhook", lambda: accepted_for(fast, video_id), 30)
        waited = time.monotonic() - started
        # Sent while the slow receiver's attempts still hang (each for up to 10 s)...
        assert slow.in_flight >= 1
        # ... and the slow receiver never had more than its share of attempts at once.
        assert slow.most_in_flight <= 4
        slow.release()
    # A sender held up by the hanging attempts would have waited for at least one timeout.
    assert waited < 10, f"the other user's webhook took {waited:.1f} s"


def test_the_webhooks_service_killed_mid_backlog_loses_nothing(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    up = False
    with receiving(lambda _attempt: 200 if up else 503) as receiver:
        prompt = rendering_slowly(stack)
        videos = [create(api, headers, receiver.url, prompt=prompt) for _ in range(3)]
        for video_id in videos:
            poll(api, video_id, headers, lambda v: v["status"] in TERMINAL)
        # Each video's first event refused again and again; its later ones wait behind it.
        wait_for("a backlog of refused deliveries", lambda: len(receiver.all()) >= 9, 30)
        process = stack.processes["webhooks"]
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        stack.stop_service("webhooks")  # reaps it; the supervisor leaves it down
        # Events that happen while it is down wait in Kafka.
        late = create(api, headers, receiver.url, ["completed"])
        poll(api, late, headers, lambda v: v["status"] in TERMINAL)
        up = True
        stack.start_service("webhooks")
        for video_id in videos:
            wait_for(f"{video_id}'s deliveries", all_delivered(api, video_id, headers), 60)
        wait_for("the late video's webhook", lambda: accepted_for(receiver, late), 60)

        for video_id in videos:
            sent = types(accepted_for(receiver, video_id))
            assert sent[0] == "video.queued" and sent[-1] == "video.completed", sent
            assert "video.started" in sent
            recorded = deliveries(api, video_id, headers)
            # Every recorded delivery reached the receiver, accepted exactly once.
            accepted_ids = [r.webhook_id for r in accepted_for(receiver, video_id)]
            assert sorted(accepted_ids) == sorted(d["id"] for d in recorded)


def test_a_rotated_secret_signs_alongside_the_old_one(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    old = secret_of(api, headers)
    rotated = api.post("/v1/webhooks/secret/rotate", headers=headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["previous_expires_at"] is not None
    assert secret_of(api, headers) == new
    with receiving() as receiver:
        video_id = create(api, headers, receiver.url, ["queued"])
        (request,) = wait_for("the queued webhook", lambda: accepted_for(receiver, video_id))
    # A receiver still on the old secret and one already on the new both verify it.
    verified(request, old, new)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(secret_of(api, auth(user()))).verify(request.body, request.headers)


def test_webhooks_of_another_users_video_are_not_found(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    owner = auth(user())
    with receiving() as receiver:
        video_id = create(api, owner, receiver.url, ["queued"])
        wait_for("the queued webhook", lambda: accepted_for(receiver, video_id))
    response = api.get(f"/v1/videos/{video_id}/webhook-deliveries", headers=auth(user()))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert len(deliveries(api, video_id, owner)) == 1


def test_a_webhook_on_a_refused_address_is_refused_at_the_door(
    stack: LocalStack, api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    for url, events in [
        ("ftp://127.0.0.1/hook", None),
        ("not a url", None),
        ("http://user:pass@127.0.0.1/hook", None),
        ("http://127.0.0.1/hook", ["finished"]),
        ("http://127.0.0.1/hook", []),
    ]:
        body: dict[str, Any] = {"prompt": "a boat", **SMALL, "webhook": url}
        if events is not None:
            body["webhook_events_filter"] = events
        response = api.post("/v1/videos", json=body, headers=headers)
        assert response.status_code == 422, (url, events, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"], response.text
    no_webhook = {"prompt": "a boat", **SMALL, "webhook_events_filter": ["queued"]}
    response = api.post("/v1/videos", json=no_webhook, headers=headers)
    assert response.status_code == 422, response.text
