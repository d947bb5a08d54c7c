"""How the bridge reads RunPod reports and webhook tokens (pure)."""

from typing import Any
from uuid import uuid4

import pytest

from openv_bridge.domain import reports
from openv_bridge.domain.tokens import token_valid, webhook_token

KEY = "videos/u/v/video.mp4"


def outcome(body: dict[str, Any]) -> reports.Outcome:
    return reports.interpret(reports.parse_report(body), KEY)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"status": "COMPLETED"},
        {"id": "j", "status": "DONE"},
        {"id": 5, "status": "FAILED"},
    ],
)
def test_malformed_reports_are_refused(body: object) -> None:
    with pytest.raises(reports.InvalidReport):
        reports.parse_report(body)


def test_upload_convention_and_progress_shapes() -> None:
    assert outcome({"id": "j", "status": "COMPLETED", "output": {"key": KEY}}) == reports.Uploaded(
        KEY
    )
    assert outcome({"id": "j", "status": "IN_QUEUE"}) == reports.Waiting()
    assert outcome({"id": "j", "status": "IN_PROGRESS", "output": 42}) == reports.Running(42)
    assert outcome({"id": "j", "status": "RUNNING", "output": {"percent": 7}}) == reports.Running(7)
    assert outcome(
        {"id": "j", "status": "IN_PROGRESS", "output": {"progress": 0.5}}
    ) == reports.Running(50)
    assert outcome({"id": "j", "status": "IN_PROGRESS", "output": "x"}) == reports.Running(None)


def test_failures_in_every_disguise() -> None:
    raised = outcome(
        {"id": "j", "status": "FAILED", "error": '{"error_type": "E", "error_message": "OOM"}'}
    )
    assert raised == reports.Failed("worker_failed", "OOM")
    keyed = outcome({"id": "j", "status": "COMPLETED", "output": {"error": "bad prompt"}})
    assert keyed == reports.Failed("worker_failed", "bad prompt")
    lying = outcome({"id": "j", "status": "COMPLETED", "output": {"result": "FAILED: no GPU"}})
    assert lying == reports.Failed("worker_failed", "FAILED: no GPU")
    empty = outcome({"id": "j", "status": "COMPLETED", "output": {"key": "someone-elses"}})
    assert isinstance(empty, reports.Failed) and empty.code == "output_missing"
    long = outcome({"id": "j", "status": "FAILED", "error": "x" * 5000})
    assert isinstance(long, reports.Failed) and len(long.message) == reports.MAX_MESSAGE


def test_result_url_cancel_and_timeout() -> None:
    url = "https://cdn.example/v.mp4"
    assert outcome({"id": "j", "status": "COMPLETED", "output": {"result": url}}) == (
        reports.ResultUrl(url)
    )
    assert outcome({"id": "j", "status": "CANCELLED"}) == reports.Cancelled()
    assert isinstance(outcome({"id": "j", "status": "TIMED_OUT"}), reports.TimedOut)


def test_webhook_tokens_are_per_video_and_per_secret() -> None:
    video, other = uuid4(), uuid4()
    token = webhook_token(b"secret", video)
    assert token_valid(b"secret", video, token)
    assert not token_valid(b"secret", other, token)
    assert not token_valid(b"other-secret", video, token)
    assert not token_valid(b"secret", video, "")
