"""RunPod's webhook: unsigned, so the URL carries a per-video HMAC token.

200 only once the fact is durably published; 503 otherwise so RunPod retries.
A bad token or id gets the same 404 whether or not the video exists.
"""

import json
import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from openv_bridge.domain.reports import InvalidReport
from openv_bridge.service_layer.bridge import BridgeService, UnknownJob

log = logging.getLogger(__name__)
router = APIRouter()


def get_bridge(request: Request) -> BridgeService:
    bridge: BridgeService = request.app.state.bridge
    return bridge


def _refuse(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


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
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        log.warning("non-JSON webhook body refused", extra={"video_id": vid})
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
    return JSONResponse({"ok": True})
