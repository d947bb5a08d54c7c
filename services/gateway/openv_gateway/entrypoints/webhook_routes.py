"""The public webhook routes: the caller's signing secret (read, rotate), a video's webhook
deliveries (read, replay); and the create's webhook check, answered as 422 `invalid_webhook`.
Texts of the OpenAPI document: `openapi_docs`."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from openv_contracts.queries import JobsUnavailable
from openv_contracts.webhooks import (
    WebhookDeliveryPage,
    WebhookReplayed,
    WebhookSecretView,
    WebhookTarget,
)
from openv_gateway.domain.webhook_url import WebhookRefused
from openv_gateway.entrypoints import openapi_docs as docs
from openv_gateway.entrypoints.auth import CurrentPrincipal
from openv_gateway.entrypoints.dependencies import (
    VideoId,
    Webhooks,
    not_found,
    parse_video_id,
)
from openv_gateway.entrypoints.problems import COMMON, NOT_FOUND, ApiError, unavailable
from openv_gateway.entrypoints.schemas import CreateVideoRequest
from openv_gateway.service_layer.videos import VideoNotFound
from openv_gateway.service_layer.webhook_targets import WebhookTargets
from openv_infra.webhooks_api import WebhooksUnavailable

router = APIRouter(prefix="/v1", tags=["webhooks"])

#: A backend did not answer: 503 `unavailable`.
BACKEND_DOWN = (WebhooksUnavailable, JobsUnavailable)
#: Secrets are never kept by a cache or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


async def checked_webhook(
    targets: WebhookTargets, body: CreateVideoRequest
) -> WebhookTarget | None:
    """The create's webhook, checked; 422 `invalid_webhook` naming the field when unusable."""
    try:
        return await targets.target(body.webhook, body.webhook_events_filter)
    except WebhookRefused as exc:
        raise ApiError(
            422,
            "invalid_webhook",
            f"the webhook cannot be used: {exc}",
            errors=[{"field": exc.field, "message": str(exc)}],
        ) from None


def _secret(view: WebhookSecretView) -> JSONResponse:
    return JSONResponse(view.model_dump(mode="json"), headers=NO_STORE)


@router.get(
    "/webhooks/secret",
    operation_id="getWebhookSecret",
    response_model=WebhookSecretView,
    responses={**COMMON, 200: docs.SECRET_200},
    summary="My webhook signing secret",
    description=docs.SIGNING_KEY_DESCRIPTION,
)
async def webhook_secret(principal: CurrentPrincipal, webhooks: Webhooks) -> JSONResponse:
    try:
        return _secret(await webhooks.secret(principal))
    except WebhooksUnavailable as exc:
        raise unavailable() from exc


@router.post(
    "/webhooks/secret/rotate",
    operation_id="rotateWebhookSecret",
    response_model=WebhookSecretView,
    responses={**COMMON, 200: docs.SECRET_200},
    summary="Replace my webhook signing secret",
    description=docs.ROTATE_DESCRIPTION,
)
async def rotate_webhook_secret(principal: CurrentPrincipal, webhooks: Webhooks) -> JSONResponse:
    try:
        return _secret(await webhooks.rotate_secret(principal))
    except WebhooksUnavailable as exc:
        raise unavailable() from exc


@router.get(
    "/videos/{video_id}/webhook-deliveries",
    operation_id="getWebhookDeliveries",
    response_model=WebhookDeliveryPage,
    responses={**COMMON, 404: NOT_FOUND},
    summary="A video's webhook deliveries and their attempts",
    description=docs.DELIVERIES_DESCRIPTION,
)
async def webhook_deliveries(
    video_id: VideoId, principal: CurrentPrincipal, webhooks: Webhooks
) -> WebhookDeliveryPage:
    try:
        return await webhooks.deliveries(principal, parse_video_id(video_id))
    except VideoNotFound:
        raise not_found() from None
    except BACKEND_DOWN as exc:
        raise unavailable() from exc


@router.post(
    "/videos/{video_id}/webhook-deliveries/replay",
    operation_id="replayWebhookDeliveries",
    status_code=202,
    response_model=WebhookReplayed,
    responses={**COMMON, 404: NOT_FOUND},
    summary="Send a video's failed webhook deliveries again",
    description=docs.REPLAY_DESCRIPTION,
)
async def replay_webhook_deliveries(
    video_id: VideoId, principal: CurrentPrincipal, webhooks: Webhooks
) -> WebhookReplayed:
    try:
        return await webhooks.replay(principal, parse_video_id(video_id))
    except VideoNotFound:
        raise not_found() from None
    except BACKEND_DOWN as exc:
        raise unavailable() from exc
