"""The PUT of the MP4 to the presigned URL the bridge gave (S3 or MinIO): what S3 did not
answer (no connection, 5xx, 429) is tried again with backoff until `retry_s` has passed; a
refusal (other 4xx: an expired or wrong signature) fails at once. Messages never carry the URL's
signature."""

import time

import httpx

from openv_contracts.render_job import RenderJobErrorCode
from openv_infra.redact import redact
from openv_mochi.domain.errors import WorkerError

_FIRST_DELAY_S = 0.25
_MAX_DELAY_S = 5.0


class _Unanswered(Exception):
    pass


class HttpUploader:
    def __init__(self, retry_s: float, timeout_s: float) -> None:
        self._retry_s = retry_s
        self._timeout_s = timeout_s

    def put(self, url: str, video: bytes) -> None:
        deadline = time.monotonic() + self._retry_s
        delay = _FIRST_DELAY_S
        with httpx.Client(timeout=self._timeout_s, trust_env=False) as client:
            while True:
                try:
                    self._put_once(client, url, video)
                    return
                except _Unanswered as exc:
                    if time.monotonic() + delay > deadline:
                        raise WorkerError(RenderJobErrorCode.UPLOAD_FAILED, str(exc)) from None
                    time.sleep(delay)
                    delay = min(delay * 2, _MAX_DELAY_S)

    @staticmethod
    def _put_once(client: httpx.Client, url: str, video: bytes) -> None:
        try:
            response = client.put(url, content=video, headers={"Content-Type": "video/mp4"})
        except httpx.HTTPError as exc:
            # httpx puts the request URL in some messages: only the kind of failure is kept.
            raise _Unanswered(f"no answer from storage ({type(exc).__name__})") from None
        if response.is_success:
            return
        body = redact(" ".join(response.text[:300].split()))
        message = f"storage answered HTTP {response.status_code}: {body}".rstrip(": ")
        if response.status_code >= 500 or response.status_code == 429:
            raise _Unanswered(message)
        raise WorkerError(RenderJobErrorCode.UPLOAD_FAILED, message)
