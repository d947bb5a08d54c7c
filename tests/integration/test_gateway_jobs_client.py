"""The gateway's client of the jobs API puts a user id into a URL as exactly one segment,
whatever the id (a real HTTP server records the path it receives)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openv_gateway.adapters.jobs_client import JobsClient

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
def jobs() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            body = json.dumps(USAGE).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", paths
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_a_user_id_is_one_encoded_segment_of_the_usage_url(
    jobs: tuple[str, list[str]],
) -> None:
    url, paths = jobs
    client = JobsClient(url, 5.0)
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
