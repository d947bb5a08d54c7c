"""Webhook delivery the way RunPod does it: POST JSON, expect 200, retry a few times."""

import asyncio
import json
import logging
import time
from typing import Any

import httpx

from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.jobs import Job, JobStatus, WebhookRecord

log = logging.getLogger(__name__)

NON_JSON_BODY = b"<html>oops</html>"


class WebhookSender:
    def __init__(self, settings: SimSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client

    async def send_final(self, job: Job, payload: dict[str, Any]) -> None:
        """Deliver a finished job's payload, applying the job's webhook knobs."""
        knobs = job.knobs
        if job.webhook is None or knobs.drop_webhook:
            return
        if knobs.webhook_delay_s:
            await asyncio.sleep(knobs.webhook_delay_s)
        for _ in range(1 + knobs.duplicate_webhook):
            await self.deliver(job, job.webhook, payload)
        if knobs.progress_after_complete:
            # A stale progress event arriving after the terminal one: ordering guards must hold.
            late = {**payload, "status": str(JobStatus.IN_PROGRESS), "output": 50}
            late.pop("error", None)
            await self.deliver(job, job.webhook, late)

    async def deliver(self, job: Job, url: str, payload: dict[str, Any]) -> bool:
        """One delivery with up to `webhook_attempts` POSTs; True once one got HTTP 200."""
        if job.knobs.non_json_webhook:
            content, content_type = NON_JSON_BODY, "text/html"
        else:
            content, content_type = json.dumps(payload).encode(), "application/json"
        attempts = max(1, self._settings.webhook_attempts)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._settings.webhook_retry_interval_s)
            record = WebhookRecord(
                at=time.time(), status=str(payload.get("status")), http_status=None
            )
            try:
                response = await self._client.post(
                    url,
                    content=content,
                    headers={"Content-Type": content_type},
                    timeout=self._settings.webhook_timeout_s,
                )
            except httpx.HTTPError as exc:
                record.error = f"{type(exc).__name__}: {exc}"
                log.info("webhook for %s failed: %s", job.id, record.error)
                job.webhook_log.append(record)
                continue
            record.http_status = response.status_code
            # Logged once answered, so a reader never sees an attempt still in flight.
            job.webhook_log.append(record)
            if response.status_code == 200:
                return True
            log.info("webhook for %s answered %s", job.id, response.status_code)
        return False
