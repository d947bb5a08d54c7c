"""RunPod's webhook: unsigned, so the URL carries a per-video HMAC token.

- A bad token (or a malformed video id) gets the same 404 whether or not the video exists, and
  is decided before any database access (constant-time compare, no timing hint either).
- A body that is not JSON (or nested deeper than `reports.MAX_DEPTH`), lacks fields, names an
  unknown status or a job id outside RunPod's id alphabet: 400, before any RunPod call. Too
  large (a worker's inline base64 video): answered 200 unread, and the recorded job's report is
  read from `/status` instead (RunPod would retry a 413 twice and give up); but read in full
  (up to RunPod's largest answer the bridge accepts) while the record does not know its job
  yet (the /run answer is being recorded, or was lost): only the body tells which job it is,
  and it is handled like any webhook that comes before the record (RunPod's retries, 0.5 s
  apart in the tests, could all come before a batch records its jobs). A job id that is not
  the video's recorded job: 409 (an extra job RunPod confirms is this video's is cancelled
  there first). All are logged and change nothing.
- 200 only once the fact is durably published (Kafka acks=all); any failure on the way is a 503
  so RunPod retries. Duplicates and stale reports are answered 200 and change nothing.
"""

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import JSONResponse

from openv_bridge.adapters.metrics import WEBHOOKS
from openv_bridge.domain import reports
from openv_bridge.domain.record import Submission
from openv_bridge.domain.reports import InvalidReport
from openv_bridge.service_layer import outputs
from openv_bridge.service_layer.bridge import BridgeService
from openv_bridge.service_layer.job_reports import UnknownJob

log = logging.getLogger(__name__)
router = APIRouter()


async def get_bridge(request: Request) -> BridgeService:
    bridge: BridgeService = request.app.state.bridge
    return bridge


def _refuse(status: int, code: str, detail: str) -> JSONResponse:
    WEBHOOKS.labels(code).inc()
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


class _TooLarge(Exception):
    """The body passed the limit; `read` is what was read of it (the rest is unread)."""

    def __init__(self, read: list[bytes]) -> None:
        super().__init__("body too large")
        self.read = read


async def _read_body(
    request: Request, chunks: AsyncIterator[bytes], limit: int, read: list[bytes] | None = None
) -> bytes:
    """The body, read from `chunks` (continuing after `read`) up to `limit` bytes."""
    kept = list(read or [])
    size = sum(len(chunk) for chunk in kept)
    declared = request.headers.get("content-length", "")
    if not kept and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(kept)
    async for chunk in chunks:
        size += len(chunk)
        kept.append(chunk)
        if size > limit:
            raise _TooLarge(kept)
    return b"".join(kept)


@router.post("/webhooks/runpod/{video_id}")
async def runpod_webhook(
    video_id: str,
    request: Request,
    bridge: Annotated[BridgeService, Depends(get_bridge)],
    background: BackgroundTasks,
    token: Annotated[str, Query(max_length=128)] = "",
) -> JSONResponse:
    try:
        vid = UUID(video_id)
    except ValueError:
        return _refuse(404, "not_found", "unknown webhook")
    if not bridge.token_ok(vid, token):
        log.warning("webhook with a bad token refused", extra={"video_id": vid})
        return _refuse(404, "not_found", "unknown webhook")
    chunks = request.stream()
    try:
        raw = await _read_body(request, chunks, bridge.settings.webhook_max_body_bytes)
    except _TooLarge as large:
        try:
            sub = await bridge.submissions.get(vid)
        except Exception:
            log.exception("oversized webhook could not be handled", extra={"video_id": vid})
            return _refuse(503, "unavailable", "try again")
        if not outputs.waits_for_its_job(sub):
            return _read_from_status(vid, sub, bridge, background)
        # The record does not know its job yet (its /run answer is being recorded, or was
        # lost): only this body can tell which job it reports, so it is read after all, to
        # RunPod's largest answer the bridge accepts, and handled like any early webhook.
        try:
            raw = await _read_body(
                request, chunks, bridge.settings.runpod_answer_max_bytes, large.read
            )
        except _TooLarge:
            log.warning("webhook body over every limit refused", extra={"video_id": vid})
            return _refuse(413, "too_large", "body too large")
    if reports.too_deep(raw):
        log.warning("deeply nested webhook body refused", extra={"video_id": vid})
        return _refuse(400, "invalid_body", "body is nested too deeply")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        log.warning("non-JSON webhook body refused: %r", raw[:200], extra={"video_id": vid})
        return _refuse(400, "invalid_body", "body is not JSON")
    try:
        await bridge.on_report(vid, body)
    except InvalidReport as exc:
        log.warning("invalid webhook refused: %s", exc, extra={"video_id": vid})
        return _refuse(400, "invalid_body", str(exc))
    except UnknownJob as exc:
        log.warning("webhook refused: %s", exc, extra={"video_id": vid})
        return _refuse(409, "unknown_job", "the job is not this video's RunPod job")
    except Exception:
        log.exception("webhook could not be recorded", extra={"video_id": vid})
        return _refuse(503, "unavailable", "try again")
    WEBHOOKS.labels("accepted").inc()
    return JSONResponse({"ok": True})


def _read_from_status(
    vid: UUID, sub: Submission | None, bridge: BridgeService, background: BackgroundTasks
) -> JSONResponse:
    """A body over the limit, left unread: the recorded job's /status says the same."""
    try:
        to_read = outputs.job_to_read(sub, vid)
    except outputs.NoSubmission as exc:
        log.warning("oversized webhook refused: %s", exc, extra={"video_id": vid})
        return _refuse(409, "unknown_job", "the job is not this video's RunPod job")
    if to_read is not None:
        log.info(
            "oversized webhook body: reading the job's report from /status", extra={"video_id": vid}
        )
        background.add_task(outputs.read_from_status, bridge.poll, to_read)
    WEBHOOKS.labels("read_from_status").inc()
    return JSONResponse({"ok": True})
