"""Internal HTTP API for the gateway (not exposed to the internet): signing secrets,
deliveries of a video, replays."""

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from openv_contracts.webhooks import (
    WebhookDeliveryPage,
    WebhookReplayed,
    WebhookSecretView,
)
from openv_webhooks.service_layer.ports import DeliveryQueue
from openv_webhooks.service_layer.replaying import Replayer
from openv_webhooks.service_layer.secrets import Secrets

router = APIRouter(prefix="/internal")
#: The server routes the percent-decoded path, where a user id's encoded `/` is a `/` again:
#: the `path` convertor keeps such an id one parameter instead of an unknown route.
USER = "/users/{user_id:path}"


@dataclass(frozen=True)
class Api:
    secrets: Secrets
    deliveries: DeliveryQueue
    replayer: Replayer


async def get_api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


ApiDep = Annotated[Api, Depends(get_api)]


@router.get(USER + "/webhook-secret", response_model=WebhookSecretView)
async def secret(user_id: str, api: ApiDep) -> WebhookSecretView:
    return await api.secrets.view(user_id)


@router.post(USER + "/webhook-secret/rotate", response_model=WebhookSecretView)
async def rotate(user_id: str, api: ApiDep) -> WebhookSecretView:
    return await api.secrets.rotate(user_id)


@router.get("/videos/{video_id}/webhook-deliveries", response_model=WebhookDeliveryPage)
async def deliveries(video_id: UUID, api: ApiDep) -> WebhookDeliveryPage:
    return await api.deliveries.deliveries(video_id)


@router.post("/videos/{video_id}/webhook-deliveries/replay", response_model=WebhookReplayed)
async def replay(video_id: UUID, api: ApiDep) -> WebhookReplayed:
    return await api.replayer.video(video_id)
