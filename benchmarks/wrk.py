"""Running `wrk` for the gateway benchmarks: its Lua scripts (benchmarks/gateway_*.lua) print
one JSON line of rate, latency percentiles and statuses, which `run_wrk` returns."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CREATE_LUA = HERE / "gateway_create.lua"
GET_LUA = HERE / "gateway_get.lua"


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(
            "wrk not found. Install it: `apt-get install -y wrk` (Debian/Ubuntu), "
            "`brew install wrk` (macOS), or build it from its source."
        )
    return wrk


def run_wrk(
    wrk: str, url: str, duration_s: int, connections: int, script: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Run wrk with a Lua script whose done() prints one JSON line; return it."""
    argv = [
        wrk,
        "-t2",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, env={**os.environ, **env}
    ).stdout
    line = next(x for x in reversed(out.splitlines()) if x.startswith("{"))
    result: dict[str, Any] = json.loads(line)
    return result


def fmt(result: dict[str, Any]) -> str:
    return (
        f"{result['rps']:>9,.0f} req/s   p50 {result['p50_ms']:7.2f} ms   "
        f"p99 {result['p99_ms']:7.2f} ms   statuses {result.get('statuses', {})}"
    )
