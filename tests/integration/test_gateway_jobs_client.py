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


async def test_a_burst_beyond_the_pool_queues_for_a_connection_instead_of_failing() -> None:
    """300 reads at once over 100 connections to a jobs service answering each in 0.2 s: the
    last ones wait ~0.4 s for a connection. Within the queue bound all succeed; with a bound
    shorter than that wait, the late ones fail as JobsUnavailable (the 503 it prevents)."""
    import asyncio
    from uuid import uuid4

    from openv_contracts.queries import JobsUnavailable

    app = FastAPI()

    @app.get("/{anything:path}")
    async def usage() -> dict[str, object]:
        await asyncio.sleep(0.2)
        return USAGE

    port = free_port()
    async with serve(app, port):
        url = f"http://127.0.0.1:{port}"

        async def burst(queue_s: float) -> list[BaseException | None]:
            client = JobsApi(url, 5.0, queue_s=queue_s)
            try:
                users = [str(uuid4()) for _ in range(300)]
                answers = await asyncio.gather(
                    *(client.usage(u) for u in users), return_exceptions=True
                )
            finally:
                await client.aclose()
            return [a if isinstance(a, BaseException) else None for a in answers]

        assert not [e for e in await burst(queue_s=10.0) if e is not None]
        failed = [e for e in await burst(queue_s=0.1) if e is not None]
        assert failed and all(isinstance(e, JobsUnavailable) for e in failed)
