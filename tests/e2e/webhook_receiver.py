"""A client app's webhook endpoint for the end-to-end tests: a real HTTP server on 127.0.0.1
that records every request it gets and answers as a test scripts it (a status per attempt,
or hang until released)."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: How a receiver answers the n-th request (1-based) carrying one webhook-id: a status code,
#: or None to hang until `Receiver.release()`.
Script = Callable[[int], int | None]


def always(status: int) -> Script:
    return lambda _attempt: status


@dataclass
class Request:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int | None = None

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    url: str
    script: Script = field(default_factory=lambda: always(200))
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    most_in_flight: int = 0

    def accepted(self) -> list[Request]:
        """The requests answered 2xx, in the order they arrived."""
        with self.lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def all(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def release(self) -> None:
        self.released.set()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            request = Request({k.lower(): v for k, v in self.headers.items()}, body, time.time())
            with receiver.lock:
                receiver.requests.append(request)
                attempt = sum(
                    1
                    for r in receiver.requests
                    if r.headers.get("webhook-id") == request.headers.get("webhook-id")
                )
                receiver.in_flight += 1
                receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
            try:
                status = receiver.script(attempt)
                if status is None:
                    receiver.released.wait(60)
                    return  # the sender timed out long ago: close without an answer
                request.status = status
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            finally:
                with receiver.lock:
                    receiver.in_flight -= 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving(script: Script | None = None) -> Iterator[Receiver]:
    """A receiver on a free loopback port, stopped afterwards."""
    receiver = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/openv"
    if script is not None:
        receiver.script = script
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
