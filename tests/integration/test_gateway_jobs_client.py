"""The client of the jobs API (the gateway's and storage's) puts a user id into a URL as
exactly one segment, whatever the id (a real HTTP server records the path it receives)."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request

from openv_infra.jobs_api import JobsApi
from openv_localstack.ports import free_port
from tests.integration.support import serve

pytestmark = pytest.mark.integration

USAGE = {
    "active_jobs": 0,
    "max_active_jobs": 3,
    "used_seconds": 0.0,
    "quota_seconds": 600.0,
    "period_start": "2025-01-01T00:00:00Z",
    "period_end": "2025-02-01T00:00:00Z",
}


@pytest.fixture
async def jobs() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in jobs API that records each request's path as it came over the wire."""
    paths: list[str] = []
    app = FastAPI()

    @app.get("/{anything:path}")
    async def usage(request: Request) -> dict[str, object]:
        paths.append(request.scope["raw_path"].decode())
        return USAGE

    port = free_port()
    async with serve(app, port):
        yield f"http://127.0.0.1:{port}", paths


async def test_a_user_id_is_one_encoded_segment_of_the_usage_url(
    jobs: tuple[str, list[str]],
) -> None:
    url, paths = jobs
    client = JobsApi(url, 5.0)
    try:
        for user_id in ["alice", "..", "a/b", "a%2Fb", "x?y#z"]:
            await client.usage(user_id)
    finally:
        await client.aclose()
    assert paths == [
        "/internal/users/alice/usage",
        "/internal/users/%2E%2E/usage",  # not /internal/usage
        "/internal/users/a%2Fb/usage",
        "/internal/users/a%252Fb/usage",
        "/internal/users/x%3Fy%23z/usage",
    ]
