"""A loopback HTTP server standing in for S3's presigned PUT and RunPod's progress endpoint:
it records what arrives and answers the status codes a test queues."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str = ""
    puts: dict[str, bytes] = field(default_factory=dict)
    put_attempts: list[str] = field(default_factory=list)
    progress: list[Any] = field(default_factory=list)
    #: Status codes the next PUTs get, in order; 200 once empty.
    put_codes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_PUT(self) -> None:
            body = self._body()
            with receiver.lock:
                receiver.put_attempts.append(self.path)
                code = receiver.put_codes.pop(0) if receiver.put_codes else 200
                if code == 200:
                    receiver.puts[self.path.split("?")[0]] = body
            self.send_response(code)
            payload = b"<Error><Code>AccessDenied</Code></Error>" if code != 200 else b""
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # runpod.serverless.progress_update
            update = json.loads(self._body())
            with receiver.lock:
                receiver.progress.append(update)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
