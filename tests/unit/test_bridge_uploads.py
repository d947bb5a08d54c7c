"""Worker upload rules: staging keys, the upload check, and the upload URL's lifetime checked
against the job's at start."""

from uuid import uuid4

import pytest
from pydantic import ValidationError

from openv_bridge.config import SIGV4_MAX_EXPIRY_S, UPLOAD_MARGIN_S, Settings
from openv_bridge.domain.uploads import (
    attempt_of,
    check_order,
    staging_key,
    upload_problem,
)
from openv_contracts.storage_keys import video_output_key, video_prefix, video_uploads_prefix

MP4_HEAD = b"\0\0\0\x20ftypisom"


def test_the_default_upload_url_outlives_a_job_that_starts_at_the_end_of_its_ttl() -> None:
    s = Settings()
    assert s.upload_url_expiry_s >= s.runpod_ttl_s + s.runpod_execution_timeout_s
    assert s.upload_url_expiry_s <= SIGV4_MAX_EXPIRY_S


def test_an_upload_url_shorter_than_ttl_plus_execution_timeout_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match=r"upload_url_expiry_s .* is shorter") as caught:
        Settings(upload_url_expiry_s=7200)  # the old default: a job starting 2 h late lost
    needed = 86_400 + 600 + UPLOAD_MARGIN_S
    assert f"at least {needed}" in str(caught.value)
    Settings(upload_url_expiry_s=needed)  # exactly enough is fine


def test_a_job_lifetime_no_presigned_url_can_cover_is_refused_at_start() -> None:
    # ttl 7 days is allowed by RunPod, but ttl + executionTimeout exceeds SigV4's 7 days.
    with pytest.raises(ValidationError, match="7 days"):
        Settings(runpod_ttl_s=SIGV4_MAX_EXPIRY_S, upload_url_expiry_s=SIGV4_MAX_EXPIRY_S)
    with pytest.raises(ValidationError):
        Settings(upload_url_expiry_s=SIGV4_MAX_EXPIRY_S + 1)


def test_each_attempt_stages_under_the_videos_prefix_and_never_at_its_played_key() -> None:
    video_id = uuid4()
    keys = {staging_key(b"secret", "u1", video_id, attempt) for attempt in (1, 2, 3)}
    assert len(keys) == 3
    for key in keys:
        assert key.startswith(video_uploads_prefix("u1", video_id))
        assert key.startswith(video_prefix("u1", video_id))  # deleting the video removes it
        assert key != video_output_key("u1", video_id)
    assert staging_key(b"secret", "u1", video_id, 2) == staging_key(b"secret", "u1", video_id, 2)
    assert staging_key(b"secret", "u1", uuid4(), 2) not in keys
    assert attempt_of(staging_key(b"secret", "u1", video_id, 7)) == 7


def test_the_recorded_attempts_upload_is_checked_first_then_the_newest() -> None:
    video_id = uuid4()
    one, two, three = (staging_key(b"s", "u", video_id, n) for n in (1, 2, 3))
    assert check_order([one, two, three], 2) == [two, three, one]
    assert check_order([three, one], 5) == [three, one]


@pytest.mark.parametrize(
    ("size", "head", "problem"),
    [
        (0, b"", "empty"),
        (5000, MP4_HEAD, "more than the 4096 accepted"),
        (100, b"<html><body>", "not an MP4"),
        (100, b"\0\0\0", "not an MP4"),
        (100, b"ftypisom\0\0\0\0", "not an MP4"),  # ftyp must be at offset 4
    ],
)
def test_uploads_that_are_not_one_acceptable_mp4_are_refused(
    size: int, head: bytes, problem: str
) -> None:
    found = upload_problem(size, head, 4096)
    assert found is not None and problem in found


def test_an_mp4_within_the_cap_is_accepted() -> None:
    assert upload_problem(4096, MP4_HEAD, 4096) is None


@pytest.mark.parametrize("base_url", ["api.runpod.ai/v2", "ftp://api.runpod.ai/v2", "https://"])
def test_a_runpod_base_url_that_is_not_a_url_is_refused_at_start(base_url: str) -> None:
    with pytest.raises(ValueError, match="runpod_base_url must be an absolute http"):
        Settings(runpod_base_url=base_url)
