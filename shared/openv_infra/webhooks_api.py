"""The one client of the webhooks service's internal API (the gateway's webhook routes).

Answers are typed by `openv_contracts.webhooks`. As with `jobs_api`: a transport failure, a
status the route does not define, or a body that is not the contract's shape raises
`WebhooksUnavailable`, so a caller never guesses from a half answer. Signing secrets pass
through here: nothing of an answer is logged.
"""

from typing import TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from openv_contracts.segments import path_segment
from openv_contracts.webhooks import WebhookDeliveryPage, WebhookReplayed, WebhookSecretView
from openv_infra.http import async_client

#: Calls in flight at once per client (these are rare: secrets and delivery logs).
CONNECTIONS = 20

Answer = TypeVar("Answer", bound=BaseModel)


class WebhooksUnavailable(Exception):
    """The webhooks service did not answer as its API says (down, slow, or a bad answer)."""


class WebhooksApi:
    def __init__(self, base_url: str, timeout_s: float, connections: int = CONNECTIONS) -> None:
        """`timeout_s` bounds each step of a call (connect, send, each read, a free
        connection)."""
        self.base_url = base_url
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = async_client(
            internal=True,
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=limits,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, answer: type[Answer]) -> Answer:
        try:
            response = await self._http.request(method, path)
        except httpx.HTTPError as exc:
            raise WebhooksUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise WebhooksUnavailable(f"{method} {path}: webhooks answered {response.status_code}")
        try:
            return answer.model_validate_json(response.content)
        except ValidationError:
            # Not the error itself: it would quote the body, which may hold a secret.
            raise WebhooksUnavailable(f"{method} {path}: not a {answer.__name__}") from None

    async def secret(self, user_id: str) -> WebhookSecretView:
        """The user's signing secret (the webhooks service creates it on first use)."""
        path = f"/internal/users/{path_segment(user_id)}/webhook-secret"
        return await self._call("GET", path, WebhookSecretView)

    async def rotate_secret(self, user_id: str) -> WebhookSecretView:
        """A new signing secret; the old one keeps signing alongside for a while."""
        path = f"/internal/users/{path_segment(user_id)}/webhook-secret/rotate"
        return await self._call("POST", path, WebhookSecretView)

    async def deliveries(self, video_id: UUID) -> WebhookDeliveryPage:
        path = f"/internal/videos/{video_id}/webhook-deliveries"
        return await self._call("GET", path, WebhookDeliveryPage)

    async def replay(self, video_id: UUID) -> WebhookReplayed:
        """Every failed delivery of the video back in line."""
        path = f"/internal/videos/{video_id}/webhook-deliveries/replay"
        return await self._call("POST", path, WebhookReplayed)
