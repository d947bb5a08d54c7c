"""How a RunPod call can end besides its answer: the errors the bridge tells apart (retry
later, wait for RunPod's rate limit, fix the settings, a refusal for good, a job RunPod forgot,
an answer lost after sending), and whether a `/run` may be on its way (`RunSend`). Raised by
`adapters.runpod_client`, acted on by the service layer.
"""

from dataclasses import dataclass


class RunPodError(Exception):
    """RunPod could not be reached or kept failing; the caller may try again later."""


class RunPodThrottled(RunPodError):
    """RunPod's rate limit (ours, or its 429): nothing was created; try after `retry_in_s`."""

    def __init__(self, message: str, retry_in_s: float) -> None:
        super().__init__(message)
        self.retry_in_s = retry_in_s


class RunPodMisconfigured(RunPodError):
    """RunPod refused our key (401/403) or does not know the endpoint (404 on /run or /health):
    nothing about the request itself; every call fails until the settings are fixed."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"RunPod refused the bridge's key or endpoint ({status_code}): {message}")
        self.status_code = status_code


class RunPodAnswerLost(RunPodError):
    """`/run` was sent and RunPod may have created the job, but its answer (the job id) is lost."""


@dataclass
class RunSend:
    """Whether a `/run` may be on its way to RunPod right now: the caller's own timeout that
    cancels the call then leaves the answer lost, not a job refused (see `RunPodClient.run`)."""

    maybe_sent: bool = False


class RunPodRefused(Exception):
    """RunPod permanently refused the request for its content (400, 413, 422, ...)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"RunPod refused ({status_code}): {message}")
        self.status_code = status_code
        self.message = message


class JobNotFound(Exception):
    """RunPod no longer knows the job (retention or TTL expired), or never did."""


class AnswerTooLarge(RunPodError):
    """RunPod's answer is larger than the client reads (a job's output that big is unusable)."""


class InvalidJobId(ValueError):
    """Not a RunPod job id: never sent to RunPod."""
