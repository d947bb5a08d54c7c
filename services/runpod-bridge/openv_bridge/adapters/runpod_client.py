"""HTTP client for RunPod Serverless: its endpoints (`/run`, `/status`, `/cancel`, `/health`);
the call machinery (timeouts, retries, rate limits) is `runpod_http`'s.

`/run` is not idempotent (RunPod has no idempotency key), so it is only retried when RunPod
cannot have created a job. When the job may exist but its answer is lost (a timeout or a dropped
connection after the request was sent, a gateway's 502/504, an answer without a job id) it
raises `RunPodAnswerLost`, and the bridge waits for that job before sending the video again
(see `domain.ambiguity`).

Every path segment is percent-encoded and job ids must be RunPod ids: an id such as
`../purge-queue` from a webhook must never turn a cancel into another call.
"""

from typing import Any

from openv_bridge.adapters.runpod_http import RunPodHttp, segment
from openv_bridge.domain.reports import is_job_id
from openv_bridge.domain.runpod_errors import InvalidJobId, RunPodAnswerLost, RunPodError, RunSend


class RunPodClient(RunPodHttp):
    async def run(
        self,
        job_input: dict[str, Any],
        webhook: str,
        execution_timeout_ms: int,
        ttl_ms: int,
        send: RunSend | None = None,
    ) -> str:
        """The new job's id. Raises `RunPodAnswerLost` when a job may exist without its id; a
        caller that cancels the call (its own timeout) finds in `send` whether one may."""
        body = {
            "input": job_input,
            "webhook": webhook,
            "policy": {"executionTimeout": execution_timeout_ms, "ttl": ttl_ms},
        }
        send = send or RunSend()
        try:
            answer = await self._call("POST", "/run", idempotent=False, send=send, json=body)
        except RunPodAnswerLost:
            raise
        except RunPodError as exc:
            if send.maybe_sent:  # a 2xx that is not a JSON object: RunPod may have taken it
                raise RunPodAnswerLost(str(exc)) from exc
            raise
        job_id = answer.get("id")
        if not is_job_id(job_id):
            # A job may exist; the record waits for it (its webhook id is checked the same way).
            raise RunPodAnswerLost(f"/run answered without a valid job id: {answer!r}"[:500])
        assert isinstance(job_id, str)
        return job_id

    async def status(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/status/{_job_segment(job_id)}", job_call=True)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        # Cancelling twice is harmless: RunPod answers with the job's (terminal) status.
        return await self._call("POST", f"/cancel/{_job_segment(job_id)}", job_call=True)

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")


def _job_segment(job_id: str) -> str:
    if not is_job_id(job_id):
        raise InvalidJobId(f"not a RunPod job id: {job_id[:100]!r}")
    return segment(job_id)
