"""Free loopback ports for servers started by the local stack and the tests."""

import random
import socket
from pathlib import Path

#: Where we look for ports: below the kernel's ephemeral range (see free_port).
_LOWEST = 20_000
_handed_out: set[int] = set()
_rng = random.Random()  # spreads ports; not a secret


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Chosen below the kernel's ephemeral range, and never twice by this process: a port the
    kernel hands out for `bind(0)` is also where outgoing connections (to Postgres, Kafka, ...)
    get their local ports, so one could take it before our server binds it, or while a test
    restarts the server on it.
    """
    highest = _ephemeral_start() - 1
    if highest - _LOWEST >= 1_000:
        for _ in range(200):
            port = _rng.randint(_LOWEST, highest)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found
