"""Helpers the end-to-end tests share."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from openv_localstack.stack import BrokerStorage, LocalStack, StackOptions

Auth = Callable[[str], dict[str, str]]

#: What every test stack's services share: the bridge polls a job quiet for 1 s and looks
#: every 0.5 s, retries a submission after 1 s (tests wait less); storage imports the
#: simulator's result URLs, which are on loopback.
TEST_SERVICE_ENV = {
    "OPENV_RECONCILE_INTERVAL_S": "0.5",
    "OPENV_RECONCILE_QUIET_S": "1",
    "OPENV_SUBMIT_RETRY_BASE_S": "1",
    "OPENV_IMPORT_ALLOW_PRIVATE_HOSTS": "true",
}


@contextmanager
def running_stack(
    root: Path,
    broker_storage: BrokerStorage,
    service_env: dict[str, str],
    sim_env: dict[str, str] | None = None,
) -> Iterator[LocalStack]:
    """A started local stack for tests (1 s renders; the simulator retries a webhook after
    0.5 s), stopped by pid afterwards; `service_env` adds to TEST_SERVICE_ENV, `sim_env` to
    the simulator's."""
    local = LocalStack(
        StackOptions(
            root=root,
            sim_duration_s=1.0,
            sim_queue_s=0.1,
            broker_storage=broker_storage,
            service_env={**TEST_SERVICE_ENV, **service_env},
            sim_env={"RUNPOD_SIM_WEBHOOK_RETRY_INTERVAL_S": "0.5", **(sim_env or {})},
        )
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


#: Small renders keep the simulator fast.
SMALL = {"width": 384, "height": 384, "num_frames": 13}


def poll(
    api: httpx.Client,
    video_id: str,
    headers: dict[str, str],
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 60.0,
) -> dict[str, Any]:
    """GET the video until `until` holds or `timeout` passes; the last video seen."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/v1/videos/{video_id}", headers=headers)
        assert response.status_code == 200, response.text
        video: dict[str, Any] = response.json()
        if until(video) or time.monotonic() > deadline:
            return video
        time.sleep(0.1)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
