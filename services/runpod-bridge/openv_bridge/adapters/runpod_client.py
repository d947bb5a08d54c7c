"""HTTP client for RunPod Serverless (`/run`, `/status`, `/cancel`, `/health`).

Transient trouble (connection errors, 5xx, 429) is retried with exponential backoff and jitter,
honouring Retry-After, a bounded number of times; a 4xx refusal is permanent.
"""

import asyncio
import logging
import random
from typing import Any

import httpx

log = logging.getLogger(__name__)


class RunPodError(Exception):
    """RunPod could not be reached or kept failing; the caller may try again later."""


class RunPodRefused(Exception):
    """RunPod permanently refused the request (a 4xx other than 429)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"RunPod refused ({status_code}): {message}")
        self.status_code = status_code
        self.message = message


class JobNotFound(Exception):
    """RunPod no longer knows the job (retention or TTL expired)."""


class RunPodClient:
    def __init__(
        self,
        base_url: str,
        endpoint_id: str,
        api_key: str,
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/{endpoint_id}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
        )
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(
        self, job_input: dict[str, Any], webhook: str, execution_timeout_ms: int, ttl_ms: int
    ) -> str:
        body = {
            "input": job_input,
            "webhook": webhook,
            "policy": {"executionTimeout": execution_timeout_ms, "ttl": ttl_ms},
        }
        answer = await self._call("POST", "/run", json=body)
        job_id = answer.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise RunPodError(f"/run answered without a job id: {answer!r}"[:500])
        return job_id

    async def status(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/status/{job_id}")

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/cancel/{job_id}")

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(1, self.max_attempts + 1):
            delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 404:
                    raise JobNotFound(path)
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                    delay = max(delay, _retry_after(response))
                elif response.status_code >= 400:
                    raise RunPodRefused(response.status_code, response.text[:500])
                else:
                    try:
                        data = response.json()
                    except ValueError:
                        raise RunPodError(f"{path}: answer is not JSON") from None
                    if not isinstance(data, dict):
                        raise RunPodError(f"{path}: answer is not a JSON object")
                    return data
            if attempt == self.max_attempts:
                raise RunPodError(f"{method} {path} failed after {attempt} attempts: {problem}")
            log.warning("RunPod %s %s: %s; retrying in %.2f s", method, path, problem, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(30.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0
