"""A create the jobs service refused is a 429 whose Retry-After comes from the jobs service:
the quota's reset its refusal carries, or the configured pause for the concurrency limit."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from openv_contracts.queries import VideoErrorView
from openv_contracts.video import VideoStatus
from openv_gateway.config import Settings
from openv_gateway.entrypoints.routes import _refused
from tests.unit.test_gateway_create import FastJobs, service
from tests.unit.test_gateway_live import view


async def test_retry_after_of_a_refusal_is_the_jobs_services_word() -> None:
    videos = service(FastJobs())
    settings = Settings(concurrency_retry_after_s=7)
    refused = view(uuid4(), 1, VideoStatus.REJECTED)
    resets = datetime.now(UTC) + timedelta(hours=2)
    quota = refused.model_copy(
        update={"error": VideoErrorView(code="quota_exceeded", message="m", retry_at=resets)}
    )
    busy = refused.model_copy(
        update={"error": VideoErrorView(code="concurrency_limit", message="m")}
    )
    over_quota = await _refused(quota, videos, settings)
    assert (over_quota.status, over_quota.code) == (429, "quota_exceeded")
    assert 7190 <= int(over_quota.headers["Retry-After"]) <= 7200
    too_many = await _refused(busy, videos, settings)
    assert (too_many.code, too_many.headers["Retry-After"]) == ("concurrency_limit", "7")
    past = quota.model_copy(
        update={
            "error": VideoErrorView(
                code="quota_exceeded", message="m", retry_at=resets - timedelta(days=1)
            )
        }
    )
    assert (await _refused(past, videos, settings)).headers["Retry-After"] == "1"
