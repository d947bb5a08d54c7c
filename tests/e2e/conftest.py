"""The real local stack for end-to-end tests: every server and service a real process on
free loopback ports, stopped by pid when the session ends."""

from collections.abc import Callable, Iterator

import httpx
import pytest

from openv_localstack.stack import LocalStack, StackOptions
from openv_localstack.tokens import make_token


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(
        StackOptions(root=tmp_path_factory.mktemp("stack"), sim_duration_s=1.0, sim_queue_s=0.1)
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30.0) as client:
        yield client


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    def headers(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user_id)}"}

    return headers
