"""`status` and `down` for a data folder's stack, and the stale-stack check `up` runs first.

They work from the folder alone (its `stack.json`, and Postgres's postmaster.pid), whether the
process that started the stack is alive or not.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from openv_localstack.servers import postgres_data_location
from openv_localstack.state import (
    RecordedProcess,
    orphan_postmaster,
    read_state,
    remove_state,
    stop_processes,
)

# `up` stops services one by one, each given up to 10 s: allow that before forcing it.
_OWNER_STOP_TIMEOUT_S = 60.0


class StackRunningError(RuntimeError):
    """`up` in a folder whose stack is running (its `up` process is alive)."""


def _postmaster(root: Path) -> RecordedProcess | None:
    return orphan_postmaster(postgres_data_location(root / "postgres"))


def stop_stack(root: Path, log: Callable[[str], None]) -> bool:
    """Stop the stack of `root` by pid: its owner (which stops the rest) if alive, then whatever
    is left. True if anything was running."""
    state = read_state(root)
    found = False
    if state is not None:
        owner = state.owner
        if owner.alive:
            found = True
            log(f"stopping the stack's owner process (pid {owner.pid}), which stops the rest")
            stop_processes([owner], log=lambda _: None, timeout=_OWNER_STOP_TIMEOUT_S)
        left = [proc for proc in state.processes if proc.alive]
        if left:
            found = True
            log("stopping what is left of the stack:")
            stop_processes(left, log=lambda line: log(f"  {line}"))
    postmaster = _postmaster(root)
    if postmaster is not None:
        found = True
        log(f"stopping an orphan postgres (pid {postmaster.pid}) holding {root / 'postgres'}")
        stop_processes([postmaster], log=lambda _: None)
    remove_state(root)
    return found


def stop_stale_stack(root: Path, log: Callable[[str], None]) -> None:
    """Before `up`: refuse if the folder's stack runs; stop what a dead `up` left behind."""
    state = read_state(root)
    if state is not None and state.owner.alive:
        raise StackRunningError(
            f"a stack is already running in {root} (pid {state.owner.pid}, "
            f"{state.gateway_url}); stop it with `python3 dev.py down`"
        )
    has_leftovers = state is not None and any(proc.alive for proc in state.processes)
    if has_leftovers or _postmaster(root) is not None:
        log(f"found a stale stack in {root} (its `up` process is gone); stopping it by pid")
        stop_stack(root, lambda line: log(f"  {line}"))
    else:
        remove_state(root)


def _healthy(url: str | None) -> str:
    if url is None:
        return "-"
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        with socket.socket() as sock:
            sock.settimeout(1.0)
            ok = sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 0)) == 0
        return "accepts" if ok else "refused"
    try:
        code = httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    return "healthy" if code == 200 else f"HTTP {code}"


def status_lines(root: Path) -> tuple[bool, list[str]]:
    """(is a stack running, the report `status` prints)."""
    state = read_state(root)
    if state is None:
        postmaster = _postmaster(root)
        if postmaster is not None:
            return True, [f"no stack.json in {root}, but postgres pid {postmaster.pid} holds it"]
        return False, [f"no stack running in {root}"]
    owner = "running" if state.owner.alive else "gone (a stale stack: `dev.py down` stops it)"
    lines = [
        f"stack in {root}",
        f"  owner process: pid {state.owner.pid}, {owner}",
        f"  gateway:       {state.gateway_url}",
        f"  {'process':<14} {'state':<8} {'pid':>7} {'restarts':>8}  health",
    ]
    for proc in state.processes:
        alive = proc.alive
        health = _healthy(proc.health) if alive else "-"
        lines.append(
            f"  {proc.name:<14} {'running' if alive else 'down':<8} {proc.pid:>7} "
            f"{proc.restarts:>8}  {health}"
        )
    running = state.owner.alive or any(proc.alive for proc in state.processes)
    return running, lines
