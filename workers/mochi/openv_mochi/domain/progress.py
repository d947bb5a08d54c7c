"""Progress of a render: the denoising steps fill 0-95 %; encoding and upload take the rest,
and the job's completion is 100 %. Reported only when the whole percent changes, since each
report is an HTTP request to RunPod."""

#: Share of the job the denoising loop stands for.
DENOISING_PERCENT = 95


def step_percent(done: int, steps: int) -> int:
    """Percent of the job after `done` of `steps` denoising steps."""
    if steps <= 0:
        return DENOISING_PERCENT
    return min(DENOISING_PERCENT, max(0, done) * DENOISING_PERCENT // steps)


class ProgressGate:
    """Lets through each percent once, in increasing order."""

    def __init__(self) -> None:
        self._last = -1

    def news(self, percent: int) -> bool:
        if percent <= self._last:
            return False
        self._last = percent
        return True
