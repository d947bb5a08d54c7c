"""RunPod's webhook: unsigned, so the URL carries a per-video HMAC token.

- A bad token (or a malformed video id) gets the same 404 whether or not the video exists, and
  is decided before any database access (constant-time compare, no timing hint either).
- A body that is not JSON (or nested deeper than `reports.MAX_DEPTH`), lacks fields, names an
  unknown status or a job id outside RunPod's id alphabet: 400, before any RunPod call. Too
  large: 413. A job id that is not the video's recorded job: 409 (an extra job RunPod confirms
  is this video's is cancelled there first). All are logged and change nothing.
- 200 only once the fact is durably published (Kafka acks=all); any failure on the way is a 503
  so RunPod retries. Duplicates and stale reports are answered 200 and change nothing.
"""

import json
import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from openv_bridge.adapters.metrics import WEBHOOKS
from openv_bridge.domain import reports
from openv_bridge.domain.reports import InvalidReport
from openv_bridge.service_layer.bridge import BridgeService, UnknownJob

log = logging.getLogger(__name__)
router = APIRouter()


async def get_bridge(request: Request) -> BridgeService:
    bridge: BridgeService = request.app.state.bridge
    return bridge


def _refuse(status: int, code: str, detail: str) -> JSONResponse:
    WEBHOOKS.labels(code).inc()
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/webhooks/runpod/{video_id}")
async def runpod_webhook(
    video_id: str,
    request: Request,
    bridge: Annotated[BridgeService, Depends(get_bridge)],
    token: Annotated[str, Query(max_length=128)] = "",
) -> JSONResponse:
    try:
        vid = UUID(video_id)
    except ValueError:
        return _refuse(404, "not_found", "unknown webhook")
    if not bridge.token_ok(vid, token):
        log.warning("webhook with a bad token refused", extra={"video_id": vid})
        return _refuse(404, "not_found", "unknown webhook")
    try:
        raw = await _read_body(request, bridge.settings.webhook_max_body_bytes)
    except _TooLarge:
        log.warning("oversized webhook body refused", extra={"video_id": vid})
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
