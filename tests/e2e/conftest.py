"""The real local stack for end-to-end tests: every server and service a real process on
free loopback ports, stopped by pid when the session ends."""

from collections.abc import Callable, Iterator

import httpx
import pytest

from openv_localstack.stack import LocalStack, StackOptions
from openv_localstack.tokens import make_token


# Package scope: stopped after the last e2e test, so its idle consumers do not take the
# machine's cores from the tests that follow (the fault suite starts a stack of its own).
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(
        StackOptions(
            root=tmp_path_factory.mktemp("stack"),
            sim_duration_s=1.0,
            sim_queue_s=0.1,
            # The memory broker: no test here restarts it (the fault suite, tests/faults, runs
            # on the durable one), and on S3 every hop is tens of ms slower.
            broker_storage="memory",
            service_env={
                # runpod-bridge: poll jobs quiet for 1 s, look every 0.5 s (tests wait less).
                "OPENV_RECONCILE_INTERVAL_S": "0.5",
                "OPENV_RECONCILE_QUIET_S": "1",
                "OPENV_SUBMIT_RETRY_BASE_S": "1",
                # storage: the simulator serves result URLs on loopback.
                "OPENV_IMPORT_ALLOW_PRIVATE_HOSTS": "true",
                # gateway: the suite sends many requests without a valid token from one
                # address (schemathesis probes every operation's auth); the address limit is
                # tested on a gateway of its own (test_gateway_isolated.py).
                "OPENV_ANONYMOUS_RATE_LIMIT_PER_S": "1000",
                "OPENV_ANONYMOUS_RATE_LIMIT_BURST": "10000",
            },
            sim_env={"RUNPOD_SIM_WEBHOOK_RETRY_INTERVAL_S": "0.5"},
        )
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="package")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30.0) as client:
        yield client


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    def headers(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user_id)}"}

    return headers
