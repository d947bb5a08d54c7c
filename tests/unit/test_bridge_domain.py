"""The bridge's pure decisions: routing reports, retry delays, progress news, the worker input,
fact ids, reports RunPod sends in odd shapes, and the settings' guard rails."""

from uuid import uuid4

import pytest
from pydantic import ValidationError

from openv_bridge.config import Settings
from openv_bridge.domain import outcomes, reports
from openv_bridge.domain.submissions import (
    FactIds,
    Route,
    SubmissionState,
    job_input,
    progress_is_news,
    retry_delay,
    route_report,
    runpod_says_ours,
)
from openv_contracts.events import VideoAccepted
from openv_contracts.video import VideoParams

S = SubmissionState
VIDEO, OTHER = uuid4(), uuid4()
KEY = "videos/u/v/video.mp4"


@pytest.mark.parametrize(
    ("state", "recorded", "reported", "owner", "route"),
    [
        # The recorded job of a job in flight: a fact.
        (S.SUBMITTED, "j1", "j1", VIDEO, Route.APPLY),
        # The recorded job after the end, or after a cancel: acknowledged, nothing else.
        (S.FINISHED, "j1", "j1", VIDEO, Route.SETTLED),
        (S.CANCELLING, "j1", "j1", VIDEO, Route.SETTLED),
        (S.CANCELLED, "j1", "j1", VIDEO, Route.SETTLED),
        # A job reporting before its attempt recorded it (lost /run answer): adopt.
        (S.SUBMITTING, None, "j0", None, Route.ADOPT),
        # An extra job: another attempt was recorded, or the video is over: cancel it.
        (S.SUBMITTED, "j2", "j1", None, Route.ORPHAN),
        (S.FINISHED, "j2", "j1", None, Route.ORPHAN),
        (S.FINISHED, None, "j1", None, Route.ORPHAN),
        (S.CANCELLED, None, "j1", None, Route.ORPHAN),
        # Another video's job: never cancelled from here, whatever this record says.
        (S.SUBMITTED, "j2", "j9", OTHER, Route.FOREIGN),
        (S.SUBMITTING, None, "j9", OTHER, Route.FOREIGN),
    ],
)
def test_reports_are_routed_by_the_record(
    state: SubmissionState, recorded: str | None, reported: str, owner: object, route: Route
) -> None:
    owner_id = owner if owner is None else (VIDEO if owner is VIDEO else OTHER)
    assert route_report(state, recorded, reported, owner_id, VIDEO) is route


def test_submission_retries_back_off_exponentially_up_to_a_cap() -> None:
    assert [retry_delay(n, 5, 120) for n in range(1, 7)] == [5, 10, 20, 40, 80, 120]
    assert retry_delay(1, 0, 120) == 0


def test_progress_is_news_only_when_it_says_something_new() -> None:
    assert progress_is_news(None, None, "IN_PROGRESS", None)  # first sign of running
    assert progress_is_news("IN_QUEUE", None, "IN_PROGRESS", 0)
    assert progress_is_news("IN_PROGRESS", 20, "IN_PROGRESS", 40)
    assert not progress_is_news("IN_PROGRESS", 40, "IN_PROGRESS", 40)
    assert not progress_is_news("IN_PROGRESS", 40, "RUNNING", None)


def test_the_worker_input_is_the_reference_workers() -> None:
    params = VideoParams(seed=11, width=480, height=848, num_frames=31, steps=30, cfg=4.5)
    accepted = VideoAccepted(
        video_id=VIDEO,
        prompt="a fox",
        params=params.model_copy(update={"negative_prompt": "blur"}),
        duration_seconds=31 / 24,
        charged_seconds=31 / 24,
        object_prefix="videos/u/v/",
    )
    assert job_input(accepted) == {
        "positive_prompt": "a fox",
        "negative_prompt": "blur",
        "width": 480,
        "height": 848,
        "seed": 11,
        "steps": 30,
        "cfg": 4.5,
        "num_frames": 31,
    }


def test_fact_ids_are_deterministic_per_video_kind_and_job() -> None:
    ids = FactIds(VIDEO)
    assert ids.of("final", "j1") == FactIds(VIDEO).of("final", "j1")
    assert len({ids.of("final", "j1"), ids.of("final", "j2"), ids.of("submitted", "j1")}) == 3
    assert ids.of("running", "j1", 20) != ids.of("running", "j1", 40)
    assert ids.of("running", "j1", 0) != ids.of("running", "j1", None)
    assert FactIds(OTHER).of("final", "j1") != ids.of("final", "j1")


def outcome(body: dict[str, object]) -> outcomes.Outcome:
    return reports.interpret(reports.parse_report(body), KEY)


def test_reports_in_odd_shapes() -> None:
    # RunPod puts a worker's {"error": ...} into `error`; some put it in the output.
    in_output = outcome({"id": "j", "status": "FAILED", "output": {"error": "bad seed"}})
    assert in_output == outcomes.Failed("worker_failed", "bad seed")
    assert outcome({"id": "j", "status": "FAILED"}) == outcomes.Failed(
        "worker_failed", "worker failed"
    )
    # A bare string as output.
    assert outcome({"id": "j", "status": "COMPLETED", "output": "https://x/v.mp4"}) == (
        outcomes.ResultUrl("https://x/v.mp4")
    )
    assert outcome({"id": "j", "status": "COMPLETED", "output": "FAILED: oom"}) == (
        outcomes.Failed("worker_failed", "FAILED: oom")
    )
    assert outcome({"id": "j", "status": "COMPLETED"}) == outcomes.Failed(
        "output_missing", "the job completed without a usable output"
    )
    timed_out = outcome(
        {"id": "j", "status": "TIMED_OUT", "error": "job exceeded executionTimeout of 5000 ms"}
    )
    assert isinstance(timed_out, outcomes.TimedOut)
    assert timed_out.reason.endswith(": job exceeded executionTimeout of 5000 ms")


def test_which_outcomes_end_the_job() -> None:
    assert not outcomes.is_final(outcomes.Waiting())
    assert not outcomes.is_final(outcomes.Running(5))
    finals: list[outcomes.Outcome] = [
        outcomes.Uploaded(KEY),
        outcomes.ResultUrl("https://x"),
        outcomes.Failed("worker_failed", "x"),
        outcomes.Cancelled(),
        outcomes.TimedOut("x"),
    ]
    assert all(outcomes.is_final(o) for o in finals)
    assert "404" in reports.job_gone_reason("j1") and "j1" in reports.job_gone_reason("j1")


def test_settings_refuse_a_lease_shorter_than_an_attempt_and_policies_runpod_refuses() -> None:
    with pytest.raises(ValidationError, match="submit_lease_s"):
        Settings(submit_timeout_s=60, submit_lease_s=30)
    with pytest.raises(ValidationError):
        Settings(runpod_execution_timeout_s=1)  # RunPod's minimum is 5 s
    with pytest.raises(ValidationError):
        Settings(runpod_ttl_s=8 * 24 * 3600)  # and its maximum ttl 7 days
    defaults = Settings()
    assert defaults.submit_lease_s > defaults.submit_timeout_s


def test_only_runpods_own_answer_naming_the_videos_key_shows_a_job_is_ours() -> None:
    says = runpod_says_ours
    assert says({"id": "j1", "status": "IN_QUEUE", "input": {"output_key": KEY}}, "j1", KEY)
    assert says({"id": "j1", "status": "COMPLETED", "output": {"key": KEY}}, "j1", KEY)
    # Another job's answer, another video's key, or nothing that names a key: no evidence.
    assert not says({"id": "j2", "status": "COMPLETED", "output": {"key": KEY}}, "j1", KEY)
    assert not says({"id": "j1", "status": "COMPLETED", "output": {"key": "other"}}, "j1", KEY)
    assert not says({"id": "j1", "status": "IN_PROGRESS", "output": 40}, "j1", KEY)
    assert not says({"id": "j1", "status": "FAILED", "error": KEY}, "j1", KEY)
    assert not says([], "j1", KEY)
