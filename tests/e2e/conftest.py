"""The real local stack for end-to-end tests: every server and service a real process on
free loopback ports, stopped by pid when the session ends."""

from collections.abc import Callable, Iterator

import httpx
import pytest

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import make_token
from tests.e2e.support import running_stack

#: The origin of a browser frontend on another origin, allowed by the stack's gateway.
FRONTEND_ORIGIN = "http://frontend.test:5173"


# Package scope: stopped after the last e2e test, so its idle consumers do not take the
# machine's cores from the tests that follow (the fault suite starts a stack of its own).
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # The memory broker: no test here restarts it (the fault suite, tests/faults, runs on the
    # durable one), and on S3 every hop is tens of ms slower.
    with running_stack(
        tmp_path_factory.mktemp("stack"),
        "memory",
        {
            # gateway: the suite sends many requests without a valid token from one address
            # (schemathesis probes every operation's auth); the address limit is tested on a
            # gateway of its own (test_gateway_isolated.py).
            "OPENV_ANONYMOUS_RATE_LIMIT_PER_S": "1000",
            "OPENV_ANONYMOUS_RATE_LIMIT_BURST": "10000",
            # A page on another origin may use the API (test_gateway_browser_api.py).
            "OPENV_CORS_ORIGINS": FRONTEND_ORIGIN,
            # Client webhooks retried quickly (test_webhooks.py): 0.3 s, then at most 1 s apart.
            "OPENV_CLIENT_WEBHOOK_RETRY_BASE_S": "0.3",
            "OPENV_CLIENT_WEBHOOK_RETRY_MAX_S": "1",
            "OPENV_CLIENT_WEBHOOK_TIMEOUT_S": "10",
            # runpod-bridge: RunPod's limits per 3 s, not 10 s, so a route resting after a
            # 429 (test_runpod_limits.py, test_runpod_bridge.py's run_429_burst) rests 3-5 s.
            "OPENV_RUNPOD_RATE_WINDOW_S": "3",
        },
    ) as local:
        yield local


@pytest.fixture(scope="package")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30.0) as client:
        yield client


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    def headers(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user_id)}"}

    return headers
