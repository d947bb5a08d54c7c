"""The job's input against the shared bounds: what the public API refuses, the worker refuses."""

from typing import Any

import pytest

from jobs import job_input
from openv_contracts.render_job import RenderJobErrorCode
from openv_mochi.domain.errors import WorkerError
from openv_mochi.domain.job_input import parse_job_input
from receiver import Receiver

BASE: dict[str, Any] = job_input(Receiver(url="http://s3.test"))


def test_a_valid_input_is_read_with_extra_bookkeeping_ignored() -> None:
    job = parse_job_input({**BASE, "openv_attempt": "x"})
    assert (job.width, job.height, job.num_frames, job.steps) == (384, 384, 7, 10)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"width": 100}, "width"),
        ({"height": 850}, "height"),
        ({"width": 392}, "width"),
        ({"num_frames": 8}, "num_frames"),
        ({"num_frames": 133}, "num_frames"),
        ({"steps": 9}, "steps"),
        ({"cfg": 21}, "cfg"),
        ({"seed": -1}, "seed"),
        ({"positive_prompt": ""}, "positive_prompt"),
        ({"positive_prompt": "x" * 501}, "positive_prompt"),
        ({"width": "wide"}, "width"),
        ({"output_put_url": None}, "output_put_url"),
        ({"output_key": None}, "output_key"),
    ],
)
def test_an_input_out_of_bounds_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(WorkerError) as caught:
        parse_job_input({**BASE, **change})
    assert caught.value.code is RenderJobErrorCode.INVALID_INPUT
    assert caught.value.message.startswith(field)


@pytest.mark.parametrize("raw", [None, [], "a cat", 7])
def test_an_input_that_is_not_an_object_is_refused(raw: Any) -> None:
    with pytest.raises(WorkerError) as caught:
        parse_job_input(raw)
    assert caught.value.code is RenderJobErrorCode.INVALID_INPUT


def test_every_wrong_field_is_named() -> None:
    with pytest.raises(WorkerError) as caught:
        parse_job_input({**BASE, "width": 100, "steps": 99})
    assert "width:" in caught.value.message and "steps:" in caught.value.message
