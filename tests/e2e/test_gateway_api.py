"""The gateway's v1 contract on the real local stack: auth, ownership, validation, conflicts,
limits, idempotency, lists, and the OpenAPI document that describes all of it."""

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import LOCAL_JWT_SECRET, make_token
from tests.e2e.support import poll

pytestmark = pytest.mark.e2e

Auth = Callable[[str], dict[str, str]]
SMALL = {"width": 384, "height": 384, "num_frames": 7}
TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}


def user() -> str:
    return f"gw-{uuid.uuid4()}"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


# --- OpenAPI --------------------------------------------------------------------------------


def test_openapi_describes_every_route_error_and_header(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    paths = doc["paths"]
    expected = {
        ("/v1/videos", "post"),
        ("/v1/videos", "get"),
        ("/v1/videos/{video_id}", "get"),
        ("/v1/videos/{video_id}", "delete"),
        ("/v1/videos/{video_id}/events", "get"),
        ("/v1/videos/{video_id}/stream", "get"),
        ("/v1/videos/{video_id}/cancel", "post"),
        ("/v1/usage", "get"),
        ("/healthz", "get"),
    }
    assert expected <= {(p, m) for p, ops in paths.items() for m in ops}
    # Readiness and metrics are on the admin port, not in the public API.
    assert not {"/readyz", "/metrics"} & set(paths)
    for path, ops in paths.items():
        if not path.startswith("/v1"):
            continue
        for method, op in ops.items():
            responses = op["responses"]
            # The stream also takes a short-lived stream token (for EventSource).
            alternatives: list[dict[str, list[str]]] = (
                [{"StreamToken": []}] if path.endswith("/stream") else []
            )
            assert op["security"] == [{"HTTPBearer": []}, *alternatives], (path, method)
            for status in ("401", "422", "429", "503"):
                content = responses[status]["content"]
                assert list(content) == ["application/problem+json"], (path, method, status)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
            assert responses["429"]["headers"]["Retry-After"]["required"] is True
            assert responses["503"]["headers"]["Retry-After"]["required"] is True
            if "{video_id}" in path:
                assert "404" in responses, (path, method)

    create = paths["/v1/videos"]["post"]
    params = {p["name"]: p for p in create["parameters"]}
    assert params["Idempotency-Key"]["in"] == "header"
    assert "Retention" in params["Idempotency-Key"]["description"]
    assert params["Prefer"]["in"] == "header"
    accepted = create["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Video"
    }
    assert {"Location", "Retry-After", "Preference-Applied"} <= accepted["headers"].keys()
    assert "409" in create["responses"]

    stream = paths["/v1/videos/{video_id}/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert "Last-Event-ID" in {p["name"] for p in stream["parameters"]}
    assert "204" in stream["responses"]
    assert "409" in paths["/v1/videos/{video_id}/cancel"]["post"]["responses"]
    delete = paths["/v1/videos/{video_id}"]["delete"]
    assert {"200", "202"} <= delete["responses"].keys()
    assert "Retry-After" in paths["/v1/videos/{video_id}"]["get"]["responses"]["200"]["headers"]

    schemas = doc["components"]["schemas"]
    statuses = set(schemas["VideoStatus"]["enum"])
    assert statuses == TERMINAL | {"pending", "queued", "submitted", "running"}
    video_fields = set(schemas["Video"]["properties"])
    assert {
        "id", "status", "progress", "queue_position", "prompt", "params", "duration_seconds",
        "created_at", "updated_at", "started_at", "completed_at", "video", "error",
        "file_deleted",
    } <= video_fields  # fmt: skip
    assert set(schemas["Usage"]["properties"]) == {
        "active_jobs", "max_active_jobs", "used_seconds", "quota_seconds", "period_start",
        "period_end",
    }  # fmt: skip
    assert "errors" in schemas["Problem"]["properties"]
    assert "HTTPValidationError" not in schemas


# --- 401 ------------------------------------------------------------------------------------


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _token(**changes: object) -> str:
    claims: dict[str, object] = {
        "sub": "someone",
        "aud": "authenticated",
        "exp": int(time.time()) + 60,
    }
    claims.update(changes)
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, LOCAL_JWT_SECRET, algorithm="HS256"
    )


BAD_AUTH = {
    "missing": {},
    "not a jwt": {"Authorization": "Bearer not-a-token"},
    "basic scheme": {"Authorization": "Basic eA=="},
    "bare scheme": {"Authorization": "Bearer"},
    # Beyond the 30 s clock leeway.
    "expired": {"Authorization": f"Bearer {make_token('alice', ttl_s=-120)}"},
    "wrong audience": {"Authorization": f"Bearer {make_token('alice', audience='anon')}"},
    "wrong signature": {
        "Authorization": f"Bearer {make_token('alice', 'another-secret-another-secret-0123456')}"
    },
    "missing sub": {"Authorization": f"Bearer {_token(sub=None)}"},
    "missing exp": {"Authorization": f"Bearer {_token(exp=None)}"},
    "sub with a slash": {"Authorization": f"Bearer {_token(sub='a/b')}"},
    "sub dot-dot": {"Authorization": f"Bearer {_token(sub='..')}"},
    "anonymous user": {"Authorization": f"Bearer {_token(is_anonymous=True)}"},
    "alg none": {
        "Authorization": "Bearer "
        + f"{_b64({'alg': 'none', 'typ': 'JWT'})}."
        + f"{_b64({'sub': 'alice', 'aud': 'authenticated', 'exp': int(time.time()) + 600})}."
    },
    "RS256 without a JWKS": {
        "Authorization": "Bearer "
        + f"{_b64({'alg': 'RS256', 'typ': 'JWT', 'kid': 'x'})}."
        + f"{_b64({'sub': 'alice', 'aud': 'authenticated', 'exp': int(time.time()) + 600})}."
        + "c2lnbmF0dXJl"
    },
}


@pytest.mark.parametrize("case", list(BAD_AUTH))
def test_every_bad_token_gets_401_with_a_bearer_challenge(api: httpx.Client, case: str) -> None:
    headers = BAD_AUTH[case]
    vid = uuid.uuid4()
    for method, path in [
        ("POST", "/v1/videos"),
        ("GET", "/v1/videos"),
        ("GET", f"/v1/videos/{vid}"),
        ("GET", f"/v1/videos/{vid}/events"),
        ("GET", f"/v1/videos/{vid}/stream"),
        ("POST", f"/v1/videos/{vid}/cancel"),
        ("DELETE", f"/v1/videos/{vid}"),
        ("GET", "/v1/usage"),
    ]:
        body = {"prompt": "x"} if method == "POST" else None
        response = api.request(method, path, json=body, headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer", (case, method, path)


# --- 404 and ownership ----------------------------------------------------------------------


def test_another_users_video_is_a_404_on_every_path_and_admins_see_all(
    api: httpx.Client, auth: Auth
) -> None:
    owner_id = user()
    owner, stranger = auth(owner_id), auth(user())
    created = api.post("/v1/videos", json={"prompt": "mine", **SMALL}, headers=owner)
    assert created.status_code == 202, created.text
    vid = created.json()["id"]
    for method, path in [
        ("GET", f"/v1/videos/{vid}"),
        ("GET", f"/v1/videos/{vid}/events"),
        ("GET", f"/v1/videos/{vid}/stream"),
        ("POST", f"/v1/videos/{vid}/cancel"),
        ("DELETE", f"/v1/videos/{vid}"),
    ]:
        foreign = api.request(method, path, headers=stranger)
        missing = api.request(method, path.replace(vid, str(uuid.uuid4())), headers=stranger)
        not_uuid = api.request(method, path.replace(vid, "not-a-uuid"), headers=stranger)
        for response in (foreign, missing, not_uuid):
            assert_problem(response, 404, "not_found")
        assert foreign.json() == missing.json()  # indistinguishable
    listed = api.get("/v1/videos", headers=stranger).json()["data"]
    assert vid not in [v["id"] for v in listed]

    admin = {"Authorization": f"Bearer {make_token(user(), role='admin')}"}
    seen = api.get(f"/v1/videos/{vid}", headers=admin)
    assert seen.status_code == 200 and seen.json()["id"] == vid
    assert api.get(f"/v1/videos/{vid}/events", headers=admin).status_code == 200
    assert vid in [v["id"] for v in api.get("/v1/videos?limit=100", headers=admin).json()["data"]]
    # The admin can act on it too; the owner sees the effect.
    assert api.delete(f"/v1/videos/{vid}", headers=admin).status_code in (200, 202)
    assert api.get(f"/v1/videos/{vid}", headers=owner).json()["status"] == "deleted"


def test_unknown_routes_and_methods_are_problems(api: httpx.Client, auth: Auth) -> None:
    assert_problem(api.get("/v2/nothing"), 404, "not_found")
    response = api.put("/v1/videos", headers=auth(user()))
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["Allow"] == "GET, HEAD, POST"


# --- 422 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "extra", "field"),
    [
        ("GET", "/v1/videos?limit=0", {}, "limit"),
        ("GET", "/v1/videos?limit=101", {}, "limit"),
        ("GET", "/v1/videos?limit=ten", {}, "limit"),
        ("GET", "/v1/videos?status=sleeping", {}, "status"),
        ("GET", "/v1/videos?cursor=bm90LWEtY3Vyc29y", {}, "cursor"),
        ("GET", "/v1/videos?cursor=" + "x" * 600, {}, "cursor"),
        ("DELETE", "/v1/videos/{vid}?wait=31", {}, "wait"),
        ("DELETE", "/v1/videos/{vid}?wait=-1", {}, "wait"),
        ("DELETE", "/v1/videos/{vid}?wait=soon", {}, "wait"),
        ("POST", "/v1/videos", {"Prefer": "wait=61"}, "Prefer"),
        ("POST", "/v1/videos", {"Prefer": "wait=abc"}, "Prefer"),
        ("POST", "/v1/videos", {"Prefer": "respond-async, wait=-5"}, "Prefer"),
        ("POST", "/v1/videos", {"Idempotency-Key": "k" * 256}, "Idempotency-Key"),
        ("POST", "/v1/videos", {"Idempotency-Key": b"cl\xe9"}, "Idempotency-Key"),  # type: ignore[dict-item]
    ],
)
def test_invalid_query_parameters_and_headers_get_422(
    api: httpx.Client, auth: Auth, method: str, path: str, extra: dict[str, str], field: str
) -> None:
    headers = {**auth(user()), **extra}
    body = {"prompt": "valid", **SMALL} if method == "POST" else None
    response = api.request(
        method, path.replace("{vid}", str(uuid.uuid4())), json=body, headers=headers
    )
    problem = assert_problem(response, 422, "invalid_parameter")
    assert field in [e["field"] for e in problem["errors"]], problem


# --- 409 ------------------------------------------------------------------------------------


def test_cancel_in_progress_then_409_once_terminal(api: httpx.Client, auth: Auth) -> None:
    headers = auth(user())
    vid = api.post("/v1/videos", json={"prompt": "stop me", **SMALL}, headers=headers).json()["id"]
    cancelled = api.post(f"/v1/videos/{vid}/cancel", headers=headers)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = api.post(f"/v1/videos/{vid}/cancel", headers=headers)
    body = assert_problem(again, 409, "conflict")
    assert "cancelled" in body["detail"]
    usage = api.get("/v1/usage", headers=headers).json()
    assert usage["active_jobs"] == 0


def test_same_idempotency_key_same_body_is_the_same_video_other_body_is_409(
    api: httpx.Client, auth: Auth
) -> None:
    headers = {**auth(user()), "Idempotency-Key": str(uuid.uuid4())}
    body = {"prompt": "once", **SMALL}
    first = api.post("/v1/videos", json=body, headers=headers)
    second = api.post("/v1/videos", json=body, headers=headers)
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["params"]["seed"] == second.json()["params"]["seed"]
    assert first.headers["Location"] == second.headers["Location"]
    with_seed = {**body, "seed": first.json()["params"]["seed"]}  # the same body, made explicit
    assert (
        api.post("/v1/videos", json=with_seed, headers=headers).json()["id"] == first.json()["id"]
    )
    for other in ({**body, "prompt": "twice"}, {**body, "steps": 11}, {**body, "seed": 1}):
        assert_problem(api.post("/v1/videos", json=other, headers=headers), 409, "conflict")
    # Another user's identical key is another video.
    other_user = {**auth(user()), "Idempotency-Key": headers["Idempotency-Key"]}
    theirs = api.post("/v1/videos", json=body, headers=other_user)
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]


def test_concurrent_idempotent_retries_make_exactly_one_job(
    api: httpx.Client, stack: LocalStack, auth: Auth
) -> None:
    headers = {**auth(user()), "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    body = {"prompt": "a storm of retries", **SMALL}

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/v1/videos", json=body, headers=headers) for _ in range(8))
            )

    answers = asyncio.run(storm())
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    vid = ids.pop()
    done = poll(api, vid, headers, lambda v: v["status"] in TERMINAL)
    assert done["status"] == "completed", done
    events = api.get(f"/v1/videos/{vid}/events", headers=headers).json()
    assert [e["type"] for e in events["data"]].count("VideoAccepted") == 1
    jobs = httpx.get(f"{stack.sim_url}/admin/jobs").json()["jobs"]
    mine = [j for j in jobs if vid in j["input"].get("output_key", "")]
    assert len(mine) == 1, mine


# --- 429 ------------------------------------------------------------------------------------


def test_a_fourth_active_video_is_refused_with_concurrency_limit(
    api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    answers = [
        api.post(
            "/v1/videos", json={"prompt": f"clip {i}", **SMALL, "num_frames": 127}, headers=headers
        )
        for i in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [202, 202, 202]
    body = assert_problem(answers[3], 429, "concurrency_limit")
    assert "3" in body["detail"]
    assert int(answers[3].headers["Retry-After"]) >= 1
    # Retrying an idempotent refusal replays it (the key's video is the rejected one).
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    refused = api.post("/v1/videos", json={"prompt": "five", **SMALL}, headers=keyed)
    assert_problem(refused, 429, "concurrency_limit")
    assert_problem(
        api.post("/v1/videos", json={"prompt": "five", **SMALL}, headers=keyed),
        429,
        "concurrency_limit",
    )
    for answer in answers[:3]:
        api.post(f"/v1/videos/{answer.json()['id']}/cancel", headers=headers)


def test_a_burst_beyond_the_per_user_rate_is_refused_with_rate_limited(
    stack: LocalStack, auth: Auth
) -> None:
    headers = auth(user())

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
            return await asyncio.gather(
                *(client.get("/v1/videos/not-a-video", headers=headers) for _ in range(150))
            )

    answers = asyncio.run(burst())
    limited = [a for a in answers if a.status_code == 429]
    assert limited, "150 requests at once were all allowed"
    assert {a.status_code for a in answers} == {404, 429}
    for answer in limited[:5]:
        assert_problem(answer, 429, "rate_limited")
        assert int(answer.headers["Retry-After"]) >= 1
    # Other users are not affected.
    assert httpx.get(f"{stack.gateway_url}/v1/usage", headers=auth(user())).status_code == 200


# --- reads ----------------------------------------------------------------------------------


def test_list_pages_are_stable_under_concurrent_inserts_and_filter_by_status(
    api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    first_batch = []
    for i in range(5):
        r = api.post("/v1/videos", json={"prompt": f"old {i}", **SMALL}, headers=headers)
        assert r.status_code in (202, 429)
        first_batch.append(r)
    listed = api.get("/v1/videos", params={"limit": 100}, headers=headers).json()["data"]
    expected = [v["id"] for v in listed]
    assert len(expected) == 5

    page1 = api.get("/v1/videos", params={"limit": 2}, headers=headers).json()
    assert [v["id"] for v in page1["data"]] == expected[:2]
    assert page1["next_cursor"]
    # New videos arrive while the client pages: they are newer, so no page shifts.
    for i in range(3):
        api.post("/v1/videos", json={"prompt": f"new {i}", **SMALL}, headers=headers)
    seen = [v["id"] for v in page1["data"]]
    cursor = page1["next_cursor"]
    while cursor:
        page = api.get("/v1/videos", params={"limit": 2, "cursor": cursor}, headers=headers)
        assert page.status_code == 200, page.text
        seen += [v["id"] for v in page.json()["data"]]
        cursor = page.json()["next_cursor"]
    assert seen == expected  # no repeats, no gaps, newest first

    everything = api.get("/v1/videos", params={"limit": 100}, headers=headers).json()["data"]
    assert len(everything) == 8
    created = [v["created_at"] for v in everything]
    assert created == sorted(created, reverse=True)
    for status in {v["status"] for v in everything}:
        only = api.get("/v1/videos", params={"status": status, "limit": 100}, headers=headers)
        assert only.status_code == 200, only.text
        assert {v["status"] for v in only.json()["data"]} <= {status}
        ids = {v["id"] for v in only.json()["data"]}
        assert ids <= {v["id"] for v in everything}
        if status in TERMINAL:  # those cannot have moved on between the two reads
            assert {v["id"] for v in everything if v["status"] == status} <= ids
    for video in everything:
        if video["status"] not in TERMINAL:
            api.post(f"/v1/videos/{video['id']}/cancel", headers=headers)


def test_get_suggests_a_poll_interval_only_while_not_terminal(
    api: httpx.Client, auth: Auth
) -> None:
    headers = auth(user())
    created = api.post("/v1/videos", json={"prompt": "tick", **SMALL}, headers=headers)
    vid = created.json()["id"]
    assert int(created.headers["Retry-After"]) >= 1
    running = api.get(f"/v1/videos/{vid}", headers=headers)
    if running.json()["status"] not in TERMINAL:
        assert int(running.headers["Retry-After"]) >= 1
    done = poll(api, vid, headers, lambda v: v["status"] in TERMINAL)
    assert done["status"] == "completed"
    assert "Retry-After" not in api.get(f"/v1/videos/{vid}", headers=headers).headers


def test_usage_and_event_history(api: httpx.Client, auth: Auth) -> None:
    headers = auth(user())
    usage = api.get("/v1/usage", headers=headers)
    assert usage.status_code == 200
    body = usage.json()
    assert body["active_jobs"] == 0 and body["used_seconds"] == 0
    assert body["max_active_jobs"] >= 1 and body["quota_seconds"] > 0
    assert body["period_start"] < body["period_end"]
    vid = api.post("/v1/videos", json={"prompt": "history", **SMALL}, headers=headers).json()["id"]
    poll(api, vid, headers, lambda v: v["status"] in TERMINAL)
    history = api.get(f"/v1/videos/{vid}/events", headers=headers).json()["data"]
    types = [e["type"] for e in history]
    assert types[0] == "VideoAccepted"
    # The status history ends at the completion; the poster may follow it (or come later).
    assert [t for t in types if t != "VideoPosterAdded"][-1] == "VideoCompleted", types
    assert types[-1] in ("VideoCompleted", "VideoPosterAdded"), types
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))
    assert api.get("/v1/usage", headers=headers).json()["used_seconds"] == pytest.approx(
        7 / 24, abs=0.01
    )


def test_delete_waits_for_the_files_and_is_idempotent(api: httpx.Client, auth: Auth) -> None:
    headers = auth(user())
    vid = api.post("/v1/videos", json={"prompt": "bye", **SMALL}, headers=headers).json()["id"]
    poll(api, vid, headers, lambda v: v["status"] in TERMINAL)
    quick = api.delete(f"/v1/videos/{vid}", headers=headers)
    assert quick.status_code in (200, 202) and quick.json()["status"] == "deleted"
    waited = api.delete(f"/v1/videos/{vid}", params={"wait": 20}, headers=headers)
    assert waited.status_code == 200, waited.text
    assert waited.json()["file_deleted"] is True
    assert api.delete(f"/v1/videos/{vid}", headers=headers).status_code == 200


def test_health_and_readiness(api: httpx.Client, stack: LocalStack) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 404  # on the admin port only
    ready = httpx.get(f"{stack.admin_url_of('gateway')}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"jobs": True, "kafka": True, "live_feed": True}
