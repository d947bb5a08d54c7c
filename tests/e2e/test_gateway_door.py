"""The gateway's door on the live stack (issue #18): text with control characters is a 422
naming the field, and bodies are bounded before anything reads them (a raw socket shows the
413 arrives while the client is still sending, without a token)."""

import socket
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from openv_localstack.stack import LocalStack

pytestmark = pytest.mark.e2e

Auth = Callable[[str], dict[str, str]]
FIFTY_MIB = 50 * 2**20


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def test_a_prompt_with_a_nul_is_a_422_naming_the_prompt(api: httpx.Client, auth: Auth) -> None:
    headers = {**auth(f"door-{uuid.uuid4()}"), "Content-Type": "application/json"}
    response = api.post("/v1/videos", content='{"prompt": "a\\u0000b"}', headers=headers)
    body = _problem(response, 422, "invalid_parameter")
    assert [e["field"] for e in body["errors"]] == ["prompt"]
    assert "U+0000" in body["errors"][0]["message"]
    # Lone surrogates never reach the event log either; a multi-line prompt is fine.
    surrogate = api.post("/v1/videos", content='{"prompt": "\\ud800"}', headers=headers)
    assert [e["field"] for e in _problem(surrogate, 422, "invalid_parameter")["errors"]] == [
        "prompt"
    ]
    lines = api.post(
        "/v1/videos",
        json={"prompt": "a fox\nin the snow", "width": 384, "height": 384, "num_frames": 7},
        headers=headers,
    )
    assert lines.status_code == 202, lines.text


def test_deep_json_is_a_422_not_a_crash(api: httpx.Client, auth: Auth) -> None:
    headers = {**auth(f"door-{uuid.uuid4()}"), "Content-Type": "application/json"}
    response = api.post("/v1/videos", content=b"[" * 5000 + b"]" * 5000, headers=headers)
    assert _problem(response, 422, "invalid_parameter")["errors"][0]["field"] == "body"


def _connect(stack: LocalStack) -> socket.socket:
    url = urlsplit(stack.gateway_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and the whole response (headers and a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
         if line.startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return int(head.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


def _send_rest(sock: socket.socket, total: int) -> int:
    """Tries to send `total` more bytes; returns how many the server let through."""
    sent = 0
    block = b"x" * 65536
    try:
        while sent < total:
            sent += sock.send(block[: min(len(block), total - sent)])
    except OSError:  # closed by the server: it reads no more
        pass
    return sent


def test_a_50_mib_post_without_a_token_is_answered_413_before_it_is_sent(
    stack: LocalStack,
) -> None:
    with _connect(stack) as sock:
        sock.sendall(
            b"POST /v1/videos HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(FIFTY_MIB).encode() + b"\r\n\r\n" + b"x" * 1024
        )
        started = time.monotonic()
        status, response = _read_response(sock)  # 1 KiB of 50 MiB sent so far
        assert status == 413, response
        assert b"application/problem+json" in response and b"payload_too_large" in response
        assert time.monotonic() - started < 5
        # The server closed the connection: the rest of the 50 MiB does not go through.
        assert _send_rest(sock, FIFTY_MIB) < FIFTY_MIB


def test_a_chunked_body_past_the_limit_is_answered_413_while_still_streaming(
    stack: LocalStack,
) -> None:
    with _connect(stack) as sock:
        sock.sendall(
            b"POST /v1/videos HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 8192
        for _ in range(3):  # 24 KiB, past the create's 16 KiB, and no final chunk: unfinished
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, response = _read_response(sock)
        assert status == 413, response
        assert b"payload_too_large" in response
