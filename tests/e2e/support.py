"""Helpers the end-to-end tests share."""

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

Auth = Callable[[str], dict[str, str]]
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
