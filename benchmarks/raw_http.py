"""Hand-written HTTP/1.1 for the benchmarks' clients: prebuilt request bytes on keep-alive
asyncio sockets. httpx cost a load generator about a millisecond of CPU per request, taken
from the stack it measures on the same two cores."""

import asyncio
import json
from typing import Any

BODY = {"prompt": "a red fox running through snow", "width": 384, "height": 384, "num_frames": 7}


class Connection:
    """One keep-alive HTTP/1.1 connection: the answer is read by its Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one prebuilt request; its status and body."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def request(
    method: str, host: str, path: str, token: str, body: dict[str, Any] | None = None
) -> bytes:
    """The bytes of one request with a Bearer token (and a JSON body when given)."""
    data = b"" if body is None else json.dumps(body).encode()
    kind = "Content-Type: application/json\r\n" if body is not None else ""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"{kind}Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def create_request(host: str, token: str) -> bytes:
    return request("POST", host, "/v1/videos", token, BODY)
