"""How the bridge reads RunPod reports and webhook tokens (pure)."""

import base64
import json
from typing import Any
from uuid import uuid4

import pytest

from openv_bridge.domain import outcomes, reports, runpod_texts, worker_outputs
from openv_bridge.domain.tokens import token_valid, webhook_token

KEY = "videos/u/v/video.mp4"


def outcome(body: dict[str, Any]) -> outcomes.Outcome:
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
    assert outcome({"id": "j", "status": "COMPLETED", "output": {"key": KEY}}) == outcomes.Uploaded(
        KEY
    )
    assert outcome({"id": "j", "status": "IN_QUEUE"}) == outcomes.Waiting()
    assert outcome({"id": "j", "status": "IN_PROGRESS", "output": 42}) == outcomes.Running(42)
    assert outcome({"id": "j", "status": "RUNNING", "output": {"percent": 7}}) == outcomes.Running(
        7
    )
    assert outcome(
        {"id": "j", "status": "IN_PROGRESS", "output": {"progress": 0.5}}
    ) == outcomes.Running(50)
    assert outcome({"id": "j", "status": "IN_PROGRESS", "output": "x"}) == outcomes.Running(None)


def test_failures_in_every_disguise() -> None:
    raised = outcome(
        {"id": "j", "status": "FAILED", "error": '{"error_type": "E", "error_message": "OOM"}'}
    )
    assert raised == outcomes.Failed("worker_failed", "OOM")
    keyed = outcome({"id": "j", "status": "COMPLETED", "output": {"error": "bad prompt"}})
    assert keyed == outcomes.Failed("worker_failed", "bad prompt")
    lying = outcome({"id": "j", "status": "COMPLETED", "output": {"result": "FAILED: no GPU"}})
    assert lying == outcomes.Failed("worker_failed", "FAILED: no GPU")
    empty = outcome({"id": "j", "status": "COMPLETED", "output": {"key": "someone-elses"}})
    assert isinstance(empty, outcomes.Failed) and empty.code == "output_missing"
    long = outcome({"id": "j", "status": "FAILED", "error": "x" * 5000})
    assert isinstance(long, outcomes.Failed) and len(long.message) == runpod_texts.MAX_MESSAGE


def test_result_url_cancel_and_timeout() -> None:
    url = "https://cdn.example/v.mp4"
    assert outcome({"id": "j", "status": "COMPLETED", "output": {"result": url}}) == (
        outcomes.ResultUrl(url)
    )
    assert outcome({"id": "j", "status": "CANCELLED"}) == outcomes.Cancelled()
    assert isinstance(outcome({"id": "j", "status": "TIMED_OUT"}), outcomes.TimedOut)


def test_webhook_tokens_are_per_video_and_per_secret() -> None:
    video, other = uuid4(), uuid4()
    token = webhook_token(b"secret", video)
    assert token_valid(b"secret", video, token)
    assert not token_valid(b"secret", other, token)
    assert not token_valid(b"other-secret", video, token)
    assert not token_valid(b"secret", video, "")


REAL_IDS = [
    "60902e6c-08a1-426e-9cb9-9eaec90f5e2b-u1",
    "1f0d1d36-5c1a-4ff8-9b4e-2b1c3d4e5f60-e1",
    "sync-60902e6c-08a1-426e-9cb9-9eaec90f5e2b-u1",
    "j",
]


@pytest.mark.parametrize("job_id", REAL_IDS)
def test_real_runpod_job_ids_are_accepted(job_id: str) -> None:
    assert reports.parse_report({"id": job_id, "status": "IN_QUEUE"}).job_id == job_id


@pytest.mark.parametrize(
    "job_id",
    ["../purge-queue", "..", ".", "a/b", "a%2Fb", "-x", "j\x00", "j\n", "jé", "j" * 129, "a b"],
)
def test_job_ids_outside_runpods_alphabet_are_refused(job_id: str) -> None:
    with pytest.raises(reports.InvalidReport, match="not a RunPod job id"):
        reports.parse_report({"id": job_id, "status": "COMPLETED"})


def test_nesting_is_measured_without_parsing_and_ignores_brackets_in_strings() -> None:
    limit = reports.MAX_DEPTH
    assert not reports.too_deep(b"[" * limit + b"]" * limit)
    assert reports.too_deep(b"[" * (limit + 1) + b"]" * (limit + 1))
    assert reports.too_deep(b'{"a":' * 100_000)  # unterminated, far too deep: still an answer
    in_strings = b'{"x": "' + b"[{" * 1000 + b'", "y": "\\"[[[["}'
    assert not reports.too_deep(in_strings)
    assert not reports.too_deep(b"[1, [2], [3], [[4]]]" * 100)


def test_text_is_cleaned_of_controls_and_lone_surrogates_and_bounded() -> None:
    dirty = "a\x00b\x1b[31mc\x7fd\x85e\ud800f\tg\nh"
    assert runpod_texts.clean_text(dirty, 100) == "a\ufffdb\ufffd[31mc\ufffdd\ufffde\ufffdf\tg\nh"
    assert runpod_texts.clean_text(dirty, 100, keep_newlines=False).count("\ufffd") == 7
    assert runpod_texts.clean_text("x" * 50, 10) == "x" * 10


@pytest.mark.parametrize(
    "body",
    [
        {"id": "j", "status": "FAILED", "error": "out of memory\x00\ud800"},
        {"id": "j", "status": "FAILED", "error": '{"error_message": "OOM\\u0000"}'},
        {"id": "j", "status": "COMPLETED", "output": {"error": {"message": "bad\x00"}}},
        {"id": "j", "status": "COMPLETED", "output": {"result": "FAILED: \x00\udcff"}},
        {"id": "j", "status": "TIMED_OUT", "error": "queue\x00expired"},
    ],
)
def test_text_from_runpod_is_safe_before_it_becomes_a_fact(body: dict[str, Any]) -> None:
    result = outcome(body)
    assert isinstance(result, outcomes.Failed | outcomes.TimedOut)
    text = result.message if isinstance(result, outcomes.Failed) else result.reason
    assert "\x00" not in text and "\ufffd" in text
    text.encode()  # valid UTF-8: no lone surrogate left


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://cdn.example/" + "v" * 4096, "characters long"),
        ("ftp://cdn.example/v.mp4", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("DONE", "not an http(s) URL"),
        ("https://cdn.example/v\x00.mp4", "control characters"),
        ("https://cdn.example/a b.mp4", "control characters or spaces"),
        ("https://cdn.example/\ud800.mp4", "control characters"),
        ("https:///v.mp4", "no host"),
        ("http://[::1/v.mp4", "cannot be parsed"),
    ],
)
def test_an_unusable_result_url_fails_the_video_as_invalid_output(url: str, why: str) -> None:
    result = outcome({"id": "j", "status": "COMPLETED", "output": {"result": url}})
    assert isinstance(result, outcomes.Failed) and result.code == "invalid_output"
    assert why in result.message
    assert "\x00" not in result.message and len(result.message) <= runpod_texts.MAX_MESSAGE


def test_a_result_url_up_to_the_facts_bound_is_handed_on() -> None:
    url = "https://cdn.example/" + "v" * (4096 - len("https://cdn.example/"))
    assert outcome({"id": "j", "status": "COMPLETED", "output": url}) == outcomes.ResultUrl(url)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_progress_that_is_not_a_finite_number_is_no_progress(value: float) -> None:
    assert outcome({"id": "j", "status": "IN_PROGRESS", "output": value}) == outcomes.Running(None)
    assert reports.progress_of({"progress": value}) is None


@pytest.mark.parametrize("token", ["é" * 64, "\u2603", "\ud800", "0" * 64 + "\x00"])
def test_a_token_with_any_characters_is_just_wrong(token: str) -> None:
    assert not token_valid(b"secret", uuid4(), token)


# --------------------------------------------------------------------------- real output shapes

MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 64
URL = "https://utfs.io/f/abc.mp4"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("status", ["SUCCESS", "DONE", "success"])
def test_the_openv_workers_result_url_is_imported(status: str) -> None:
    body = {"id": "j", "status": "COMPLETED", "output": {"result": URL, "status": status}}
    assert outcome(body) == outcomes.ResultUrl(URL)


def test_the_openv_workers_error_fails_the_video_with_its_message() -> None:
    # runpod-python moves the output's `error` to the job's: FAILED, output {"status": "ERROR"}.
    failed = {"id": "j", "status": "FAILED", "output": {"status": "ERROR"}, "error": "bad seed"}
    assert outcome(failed) == outcomes.Failed("worker_failed", "bad seed")
    kept = {"id": "j", "status": "COMPLETED", "output": {"status": "ERROR", "error": "no VRAM"}}
    assert outcome(kept) == outcomes.Failed("worker_failed", "no VRAM")
    # An ERROR whose `error` RunPod did not pass on is still a failure, not a missing output.
    bare = outcome({"id": "j", "status": "COMPLETED", "output": {"status": "ERROR"}})
    assert bare == outcomes.Failed("worker_failed", "the worker reported ERROR")


def test_a_failed_result_without_an_error_is_a_failure() -> None:
    body = {"id": "j", "status": "COMPLETED", "output": {"result": "FAILED: CUDA error"}}
    assert outcome(body) == outcomes.Failed("worker_failed", "FAILED: CUDA error")


@pytest.mark.parametrize("key", ["videos", "images"])
def test_a_comfyui_s3_url_is_imported(key: str) -> None:
    entry = {"filename": "ComfyUI_00001_.mp4", "type": "s3_url", "data": URL}
    body = {"id": "j", "status": "COMPLETED", "output": {key: [entry]}}
    assert outcome(body) == outcomes.ResultUrl(URL)


def test_the_first_video_like_entry_is_picked_over_preview_images() -> None:
    preview = {"filename": "preview.png", "type": "s3_url", "data": "https://x.example/p.png"}
    clip = {"filename": "clip.MP4", "type": "s3_url", "data": URL}
    unnamed = {"type": "s3_url", "data": "https://x.example/other"}
    output = {"images": [preview, unnamed], "videos": [clip]}
    assert outcome({"id": "j", "status": "COMPLETED", "output": output}) == outcomes.ResultUrl(URL)
    only_images = {"images": [preview]}
    result = outcome({"id": "j", "status": "COMPLETED", "output": only_images})
    assert result == outcomes.Failed("invalid_output", "the worker returned images but no video")


def test_a_comfyui_base64_video_is_handed_on_and_decodes_to_the_mp4() -> None:
    data = b64(MP4)
    body = {
        "id": "j",
        "status": "COMPLETED",
        "output": {"videos": [{"type": "base64", "data": data}]},
    }
    assert outcome(body) == outcomes.InlineVideo(data)
    assert worker_outputs.decode_video(data, 1024) == MP4
    # Line breaks and a data URI header are tolerated.
    wrapped = "data:video/mp4;base64," + "\n".join(
        data[i : i + 76] for i in range(0, len(data), 76)
    )
    assert worker_outputs.decode_video(wrapped, 1024) == MP4


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b64(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "not an MP4"),
        ("not base64 at all!", "not valid base64"),
        (b64(MP4 + b"\x00" * 2000), "larger than 1024 bytes"),
        ("A" * 10_000_000, "larger than 1024 bytes"),  # refused before decoding
    ],
)
def test_an_unusable_inline_video_is_refused(data: str, why: str) -> None:
    with pytest.raises(worker_outputs.InvalidVideo, match=why):
        worker_outputs.decode_video(data, 1024)


@pytest.mark.parametrize(
    "entry",
    [{"type": "base64"}, {"type": "s3_url", "data": ""}, {"type": "tempfile", "data": "x"}],
)
def test_a_comfyui_entry_without_usable_data_is_invalid_output(entry: dict[str, Any]) -> None:
    body = {"id": "j", "status": "COMPLETED", "output": {"videos": [entry]}}
    result = outcome(body)
    assert isinstance(result, outcomes.Failed) and result.code == "invalid_output"


@pytest.mark.parametrize("output", [None, {}, [], "", {"videos": []}, {"status": "SUCCESS"}])
def test_completed_without_output_is_output_missing(output: object) -> None:
    result = outcome({"id": "j", "status": "COMPLETED", "output": output})
    assert isinstance(result, outcomes.Failed) and result.code == "output_missing"


@pytest.mark.parametrize(
    "error",
    [
        "job exceeded executionTimeout of 600000 ms",
        "Execution timeout exceeded",
        "Job timed out",
        '{"error_type": "ExecutionTimeout", "error_message": "stopped"}',
        '{"error_type": "<class \'Exception\'>", "error_message": "exceeded the 600 s timeout"}',
    ],
)
def test_an_execution_timeout_arriving_as_failed_is_a_timeout(error: str) -> None:
    result = outcome({"id": "j", "status": "FAILED", "error": error})
    assert isinstance(result, outcomes.TimedOut), result
    assert result.code == "execution_timeout"
    assert "execution timeout" in result.reason


def test_a_timed_out_job_says_which_timeout_when_it_can() -> None:
    execution = outcome({"id": "j", "status": "TIMED_OUT", "error": "exceeded executionTimeout"})
    assert isinstance(execution, outcomes.TimedOut) and execution.code == "execution_timeout"
    queue = outcome({"id": "j", "status": "TIMED_OUT"})
    assert isinstance(queue, outcomes.TimedOut) and queue.code == "timed_out"


@pytest.mark.parametrize(
    "error",
    [
        "HTTPSConnectionPool(host='utfs.io', port=443): Read timed out. (read timeout=30)",
        '{"error_type": "<class \'TimeoutError\'>", "error_message": "model download timed out"}',
    ],
)
def test_a_workers_own_timeout_is_a_worker_failure(error: str) -> None:
    result = outcome({"id": "j", "status": "FAILED", "error": error})
    assert isinstance(result, outcomes.Failed) and result.code == "worker_failed"


def test_a_raised_error_gives_its_message_never_its_traceback() -> None:
    raised = {
        "error_type": "<class 'RuntimeError'>",
        "error_message": "CUDA out of memory",
        "error_traceback": 'Traceback (most recent call last):\n  File "/handler.py", line 9',
        "hostname": "abc",
    }
    result = outcome({"id": "j", "status": "FAILED", "error": json.dumps(raised)})
    assert result == outcomes.Failed("worker_failed", "CUDA out of memory")
    no_message = outcome(
        {"id": "j", "status": "FAILED", "error": json.dumps(raised | {"error_message": ""})}
    )
    assert isinstance(no_message, outcomes.Failed)
    assert "Traceback" not in no_message.message and "handler.py" not in no_message.message
    assert "RuntimeError" in no_message.message
    dirty = outcome(
        {
            "id": "j",
            "status": "FAILED",
            "error": json.dumps(raised | {"error_message": "x\x00" * 900}),
        }
    )
    assert isinstance(dirty, outcomes.Failed)
    assert len(dirty.message) == runpod_texts.MAX_MESSAGE and "\x00" not in dirty.message


@pytest.mark.parametrize(
    "output",
    [
        {"result": "STAGING", "status": "SUCCESS"},
        {"videos": [{"type": "s3_url", "data": "STAGING", "filename": "v.mp4"}]},
    ],
)
def test_a_worker_handing_back_its_upload_url_is_judged_by_the_upload(
    output: dict[str, Any],
) -> None:
    """The presigned PUT URL the worker was given carries our signature: it must never become
    a fact (RunPodJobOutputAtUrl), and the staged upload is what counts."""
    key = "videos/alice/0b7d6a4e-3b53-4a0e-9b4f-0d3d2f1f3a55/video.mp4"
    staging = (
        "http://s3.example/openv-videos/videos/alice/0b7d6a4e-3b53-4a0e-9b4f-0d3d2f1f3a55/"
        "uploads/1-abc.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef"
    )
    filled = json.loads(json.dumps(output).replace("STAGING", staging))
    outcome = reports.interpret(reports.Report("job-1", "COMPLETED", output=filled), key)
    assert outcome == outcomes.Uploaded(key)
    # Somebody else's bucket is imported as before.
    other = json.loads(json.dumps(output).replace("STAGING", "https://cdn.example/v.mp4"))
    assert reports.interpret(reports.Report("job-1", "COMPLETED", output=other), key) == (
        outcomes.ResultUrl("https://cdn.example/v.mp4")
    )
