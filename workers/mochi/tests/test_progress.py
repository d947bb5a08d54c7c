"""Progress per denoising step, each whole percent once."""

from openv_mochi.domain.progress import DENOISING_PERCENT, ProgressGate, step_percent


def test_denoising_fills_the_job_up_to_its_share() -> None:
    assert [step_percent(done, 10) for done in (0, 1, 5, 10)] == [0, 9, 47, DENOISING_PERCENT]
    assert step_percent(99, 10) == DENOISING_PERCENT


def test_each_percent_passes_the_gate_once_and_never_backwards() -> None:
    gate = ProgressGate()
    passed = [p for p in (0, 1, 1, 3, 2, 3, 95) if gate.news(p)]
    assert passed == [0, 1, 3, 95]


def test_sixty_five_steps_report_at_most_once_per_step() -> None:
    gate = ProgressGate()
    reported = [p for done in range(1, 66) if gate.news(p := step_percent(done, 65))]
    assert len(reported) <= 65
    assert reported[-1] == DENOISING_PERCENT
    assert reported == sorted(reported)
