"""Storage end to end: a worker that leaves its result at a URL (the simulator's `result_url`
knob, applied through a scenario matched on the prompt) still ends with a completed video whose
file is in our bucket; deleting it removes the file."""

import uuid

import httpx
import pytest
from minio.error import S3Error

from openv_localstack.stack import BUCKET, LocalStack
from tests.e2e.support import SMALL, Auth, poll

pytestmark = pytest.mark.e2e


def test_a_result_left_at_a_url_is_imported_into_our_bucket_and_deleted_with_the_video(
    api: httpx.Client, auth: Auth, stack: LocalStack
) -> None:
    marker = f"[storage-import-{uuid.uuid4().hex[:8]}]"
    scenario = httpx.post(
        f"{stack.sim_url}/admin/scenarios",
        json={"prompt_contains": marker, "sim": {"result_url": True}},
        timeout=30,
    )
    assert scenario.is_success, scenario.text

    user = f"importer-{uuid.uuid4()}"
    headers = auth(user)
    created = api.post(
        "/v1/videos", json={"prompt": f"a heron at dawn {marker}", **SMALL}, headers=headers
    )
    assert created.status_code == 202, created.text
    video_id = created.json()["id"]

    done = poll(api, video_id, headers, lambda v: v["status"] in {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["error"] is None

    # The worker did not upload: its file is at the simulator, and a copy is now ours.
    jobs = httpx.get(f"{stack.sim_url}/admin/jobs", timeout=30).json()["jobs"]
    [job] = [j for j in jobs if marker in str(j["input"].get("positive_prompt"))]
    result_url = job["output"]["result"]
    assert result_url.startswith(stack.sim_url)
    original = httpx.get(result_url, timeout=30).content
    assert original[4:8] == b"ftyp"

    key = f"videos/{user}/{video_id}/video.mp4"
    s3 = stack.s3.client()
    stored = s3.get_object(BUCKET, key)
    try:
        assert stored.read() == original
    finally:
        stored.close()
        stored.release_conn()
    file = done["video"]
    assert file["size_bytes"] == len(original)
    assert file["content_type"] == "video/mp4"
    assert httpx.get(file["url"], timeout=30).content == original  # played from our bucket
    # An imported file gets its poster too (both ways end in VideoCompleted).
    with_poster = poll(api, video_id, headers, lambda v: v["poster_url"] is not None)
    assert httpx.get(with_poster["poster_url"], timeout=30).content.startswith(b"\xff\xd8\xff")

    deleted = api.delete(f"/v1/videos/{video_id}", params={"wait": 20}, headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["file_deleted"] is True
    with pytest.raises(S3Error) as missing:
        s3.stat_object(BUCKET, key)
    assert missing.value.code == "NoSuchKey"
    assert list(s3.list_objects(BUCKET, prefix=f"videos/{user}/", recursive=True)) == []
