"""One video from prompt to deletion through real Postgres, Tansu, SeaweedFS, the RunPod
simulator and the five services; plus the contract's first error paths."""

import uuid
from typing import Any

import httpx
import pytest
from minio.error import S3Error

from openv_localstack.stack import BUCKET, LocalStack
from tests.e2e.support import SMALL, Auth, poll

pytestmark = pytest.mark.e2e


def test_prompt_to_playable_video_to_deletion(
    api: httpx.Client, auth: Auth, stack: LocalStack
) -> None:
    user = f"user-{uuid.uuid4()}"
    headers = auth(user)
    created = api.post("/v1/videos", json={"prompt": "a red fox in snow", **SMALL}, headers=headers)
    assert created.status_code == 202, created.text
    video = created.json()
    assert video["status"] == "queued"
    assert created.headers["Location"] == f"/v1/videos/{video['id']}"
    assert video["params"]["num_frames"] == 13
    assert video["duration_seconds"] == pytest.approx(13 / 24, abs=0.001)

    done = poll(api, video["id"], headers, lambda v: v["status"] in {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["progress"] == 100
    assert done["error"] is None
    file = done["video"]
    assert file["content_type"] == "video/mp4"
    mp4 = httpx.get(file["url"]).content
    assert mp4[4:8] == b"ftyp"
    assert len(mp4) == file["size_bytes"]

    # The storage service extracts a poster from the file shortly after: a presigned JPEG.
    done = poll(api, video["id"], headers, lambda v: v["poster_url"] is not None)
    poster = httpx.get(done["poster_url"])
    assert poster.status_code == 200
    assert poster.headers["content-type"] == "image/jpeg"
    assert poster.content.startswith(b"\xff\xd8\xff")

    key = f"videos/{user}/{video['id']}/video.mp4"
    s3 = stack.s3.client()
    assert s3.stat_object(BUCKET, key).size == len(mp4)

    deleted = api.delete(f"/v1/videos/{video['id']}", params={"wait": 20}, headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "deleted"
    assert deleted.json()["file_deleted"] is True
    assert deleted.json()["video"] is None
    assert deleted.json()["poster_url"] is None

    after = api.get(f"/v1/videos/{video['id']}", headers=headers).json()
    assert after["status"] == "deleted"
    assert after["file_deleted"] is True
    with pytest.raises(S3Error) as missing:
        s3.stat_object(BUCKET, key)
    assert missing.value.code == "NoSuchKey"
    assert httpx.get(file["url"]).status_code == 404
    assert httpx.get(done["poster_url"]).status_code == 404  # gone with the prefix

    history = api.get(f"/v1/videos/{video['id']}/events", headers=headers).json()["data"]
    types = [e["type"] for e in history]
    assert types[0] == "VideoAccepted"
    assert types[-2:] == ["VideoDeleted", "VideoFileDeleted"]
    assert "VideoCompleted" in types
    assert types.count("VideoPosterAdded") == 1

    # Deleting again is idempotent.
    again = api.delete(f"/v1/videos/{video['id']}", headers=headers)
    assert again.status_code == 200
    assert again.json()["status"] == "deleted"


def test_requests_without_a_valid_token_get_401(api: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}):
        response = api.post("/v1/videos", json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unauthorized"
    assert api.get(f"/v1/videos/{uuid.uuid4()}").status_code == 401


def test_another_users_video_is_a_404(api: httpx.Client, auth: Auth) -> None:
    owner, stranger = auth(f"owner-{uuid.uuid4()}"), auth(f"stranger-{uuid.uuid4()}")
    created = api.post("/v1/videos", json={"prompt": "mine", **SMALL}, headers=owner)
    assert created.status_code == 202
    vid = created.json()["id"]
    missing = api.get(f"/v1/videos/{uuid.uuid4()}", headers=stranger)
    foreign = api.get(f"/v1/videos/{vid}", headers=stranger)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["code"] == missing.json()["code"] == "not_found"
    assert api.delete(f"/v1/videos/{vid}", headers=stranger).status_code == 404
    assert api.get(f"/v1/videos/{vid}/events", headers=stranger).status_code == 404
    assert api.get(f"/v1/videos/{vid}", headers=owner).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 501}, "prompt"),
        ({"prompt": "x", "width": 500}, "width"),
        ({"prompt": "x", "height": 1024}, "height"),
        ({"prompt": "x", "num_frames": 30}, "num_frames"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "steps": 5}, "steps"),
        ({"prompt": "x", "cfg": 25}, "cfg"),
        ({"prompt": "x", "width": "848"}, "width"),
        ({"prompt": "x", "colour": "red"}, "colour"),
    ],
)
def test_invalid_parameters_get_422_problem_json(
    api: httpx.Client, auth: Auth, body: dict[str, Any], field: str
) -> None:
    response = api.post("/v1/videos", json=body, headers=auth("validator"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_parameter"
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]


def test_malformed_json_body_is_a_422_not_a_500(api: httpx.Client, auth: Auth) -> None:
    response = api.post(
        "/v1/videos",
        content=b"{not json",
        headers={**auth("validator"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"


def test_a_fourth_concurrent_video_is_refused_with_concurrency_limit(
    api: httpx.Client, auth: Auth
) -> None:
    headers = auth(f"busy-{uuid.uuid4()}")
    answers = [
        api.post("/v1/videos", json={"prompt": f"clip {i}", **SMALL}, headers=headers)
        for i in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [202, 202, 202]
    refused = answers[3]
    assert refused.status_code == 429
    assert refused.json()["code"] == "concurrency_limit"
    assert int(refused.headers["Retry-After"]) > 0
    usage = api.get("/v1/usage", headers=headers).json()
    assert usage["max_active_jobs"] == 3
    assert usage["used_seconds"] == pytest.approx(3 * 13 / 24, abs=0.01)
