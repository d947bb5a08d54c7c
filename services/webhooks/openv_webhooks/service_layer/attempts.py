"""One attempt at a delivery: the body (the public video, links presigned now), signed with
the user's secrets in use, posted to the receiver; what came back."""

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from openv_contracts.public_video import present_with
from openv_infra.webhook_signing import signed_headers
from openv_webhooks.domain.bodies import render_body
from openv_webhooks.domain.deliveries import AttemptResult, attempt_error, webhook_id
from openv_webhooks.service_layer.ports import Due, Presign, Sender
from openv_webhooks.service_layer.secrets import Secrets

HEADERS: Mapping[str, str] = {
    "content-type": "application/json",
    "user-agent": "openv-webhooks/1",
}


class Attempter:
    def __init__(
        self,
        sender: Sender,
        secrets: Secrets,
        presign: Presign,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = sender
        self.secrets = secrets
        self.presign = presign
        self.clock = clock
        self.monotonic = monotonic

    async def attempt(self, due: Due) -> AttemptResult:
        video = present_with(due.view, self.presign(due.view))
        body = render_body(due.event, due.occurred_at, video)
        signing = await self.secrets.in_use(due.user_id)
        at = self.clock()
        headers = {
            **HEADERS,
            **signed_headers(signing, webhook_id(due.id), int(at.timestamp()), body),
        }
        started = self.monotonic()
        status, error = await self.sender.post(due.url, body, headers)
        latency_ms = max(0, round((self.monotonic() - started) * 1000))
        if status is not None and error is None:
            error = attempt_error(status)
        return AttemptResult(at, status, latency_ms, error)
