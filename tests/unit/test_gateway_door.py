"""The gateway's door (issue #18): text without control characters, bounded bodies and JSON
nesting, at most N long-lived requests per user, and a limit for requests without a token.

The app-level tests run the real app in-process (no lifespan: nothing here reaches Kafka or
the jobs service, every answer is decided at the door)."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from openv_gateway.config import Settings
from openv_gateway.domain import text
from openv_gateway.domain.body_limit import BodyLimits, content_length, declares_no_body
from openv_gateway.domain.long_lived import OpenRequests, TooManyOpen
from openv_gateway.domain.rate_limit import RateLimiter
from openv_gateway.entrypoints.body_limit import BodyLimitMiddleware
from openv_gateway.entrypoints.schemas import CreateVideoRequest
from openv_gateway.main import create_app
from openv_infra.json_depth import nesting_exceeds
from openv_localstack.tokens import make_token

SECRET = "unit-test-door-secret-0123456789abcdef"

# --- text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["\x00", "\x01", "\x1b", "\x0b", "\x7f", "\x85", "\x9f", "\ud800", "\udfff",
            "\ufdd0", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff"],
)  # fmt: skip
def test_control_characters_surrogates_and_non_characters_are_refused(bad: str) -> None:
    reason = text.forbidden_character(f"ok {bad} end")
    assert reason is not None and f"(U+{ord(bad):04X} at position 3)" in reason
    with pytest.raises(ValueError, match="control characters"):
        text.checked(bad)


@pytest.mark.parametrize(
    "good", ["a red fox", "line one\nline two\r\n\tindented", "é ü ß 日本 🦊", "\u00a0\u200b"]
)
def test_ordinary_text_tabs_and_line_breaks_pass(good: str) -> None:
    assert text.forbidden_character(good) is None
    assert text.checked(good) == good


def test_the_reason_names_the_character_and_its_position() -> None:
    assert text.forbidden_character("a\x00b") == (
        "must not contain control characters, lone surrogates or non-characters "
        "(U+0000 at position 1)"
    )


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_the_create_body_refuses_a_nul_in_each_text_field(field: str) -> None:
    body = {"prompt": "fine", field: "a\x00b"}
    with pytest.raises(ValidationError) as caught:
        CreateVideoRequest.model_validate(body)
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_the_openapi_schema_documents_the_rule() -> None:
    prompt = CreateVideoRequest.model_json_schema()["properties"]["prompt"]
    assert prompt["pattern"] == text.CONTROL_FREE_PATTERN
    assert text.RULE in prompt["description"]


# --- bodies ---------------------------------------------------------------------------------


def test_the_create_route_has_its_own_limit() -> None:
    limits = BodyLimits(create_bytes=16384, other_bytes=1024)
    assert limits.for_request("POST", "/v1/videos") == 16384
    assert limits.for_request("GET", "/v1/videos") == 1024
    assert limits.for_request("POST", "/v1/videos/x/cancel") == 1024


def test_content_length_is_read_from_the_headers() -> None:
    assert content_length([(b"host", b"x"), (b"content-length", b" 42 ")]) == 42
    assert content_length([(b"Content-Length", b"7")]) == 7
    assert content_length([(b"content-length", b"-1")]) is None
    assert content_length([]) is None


def test_nesting_depth_counts_brackets_outside_strings_only() -> None:
    assert not nesting_exceeds(b"[" * 32 + b"]" * 32, 32)
    assert nesting_exceeds(b"[" * 33 + b"]" * 33, 32)
    assert nesting_exceeds(b'{"a":' * 33 + b"1" + b"}" * 33, 32)
    assert nesting_exceeds(b"[" * 40, 32)  # unclosed: the parser would still recurse
    # Brackets inside strings (escaped quotes included) are text.
    assert not nesting_exceeds(b'{"prompt": "' + b"[" * 100 + b'\\"[[[["}', 32)
    assert not nesting_exceeds(b'["\\\\", ' + b'"[[["' * 40 + b"]", 32)
    assert not nesting_exceeds(b"[]" * 5000, 32)


def test_nesting_scan_is_linear_on_hostile_strings() -> None:
    loop = asyncio.new_event_loop()
    try:
        started = loop.time()
        for body in (b'"\\"' * 5000 + b"[" * 40, b"[" * 8000 + b"]" * 8000, b"[]" * 8000):
            nesting_exceeds(body, 32)
        assert loop.time() - started < 0.5
    finally:
        loop.close()


class _Chunks:
    """An ASGI receive that streams `count` chunks of `size` bytes and counts what was read."""

    def __init__(self, size: int, count: int) -> None:
        self.size, self.left, self.read_bytes, self.calls = size, count, 0, 0

    async def __call__(self) -> Message:
        self.calls += 1
        if self.left == 0:
            await asyncio.sleep(3600)  # a client still sending: never reached when refused
        self.left -= 1
        self.read_bytes += self.size
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0}


async def _call(
    middleware: BodyLimitMiddleware, receive: Receive, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/videos", "headers": headers}
    await asyncio.wait_for(middleware(scope, receive, send), 5)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), dict(start["headers"])


class _App:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.bodies.append(message["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _middleware(app: _App) -> BodyLimitMiddleware:
    return BodyLimitMiddleware(app, BodyLimits(16384, 1024), max_json_depth=32)


async def test_a_declared_length_over_the_limit_is_answered_without_reading_the_body() -> None:
    app = _App()
    receive = _Chunks(65536, 800)  # 50 MiB
    status, problem, headers = await _call(
        _middleware(app), receive, [(b"content-length", str(50 * 2**20).encode())]
    )
    assert status == 413 and problem["code"] == "payload_too_large"
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"
    assert receive.calls == 0 and app.bodies == []


async def test_a_streamed_body_is_cut_off_once_past_the_limit() -> None:
    app = _App()
    receive = _Chunks(4096, 12800)  # 50 MiB in 4 KiB chunks, no Content-Length (chunked)
    status, problem, _ = await _call(_middleware(app), receive, [])
    assert status == 413 and problem["code"] == "payload_too_large"
    assert receive.read_bytes <= 16384 + 4096 and app.bodies == []


async def test_a_deep_body_is_refused_before_the_app_parses_it() -> None:
    app = _App()
    body = b"[" * 33 + b"]" * 33

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    status, problem, _ = await _call(_middleware(app), receive, [])
    assert status == 422 and problem["code"] == "invalid_parameter"
    assert problem["errors"] == [{"field": "body", "message": "JSON nested deeper than 32 levels"}]
    assert app.bodies == []


async def test_a_body_within_the_limits_reaches_the_app_whole() -> None:
    app = _App()
    receive = _Chunks(4000, 4)  # 16000 bytes in four messages
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/videos", "headers": []}
    await _middleware(app)(scope, receive, send)
    assert app.bodies == [b"x" * 16000]
    assert sent[0]["status"] == 204


# --- long-lived requests --------------------------------------------------------------------


def test_open_requests_are_capped_per_user_and_forgotten_when_closed() -> None:
    opened = OpenRequests(limit=2)
    opened.acquire("a")
    opened.acquire("a")
    with pytest.raises(TooManyOpen):
        opened.acquire("a")
    opened.acquire("b")  # users are counted apart
    opened.release("a")
    opened.acquire("a")
    assert opened.open("a") == 2
    for user in ("a", "a", "b"):
        opened.release(user)
    assert len(opened) == 0  # memory follows open requests only
    with opened.hold("c"), opened.hold("c"):
        with pytest.raises(TooManyOpen), opened.hold("c"):
            pass
        assert opened.open("c") == 2
    assert len(opened) == 0


def test_the_address_limiter_keeps_bounded_state() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2, max_users=100)
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}", float(i) / 1000)
    assert len(limiter) <= 100


# --- the door on the real app ---------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        jwt_secret=SECRET, anonymous_rate_limit_per_s=0.1, anonymous_rate_limit_burst=3
    )
    transport = httpx.ASGITransport(create_app(settings), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def _auth(user: str = "door-user") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(user, SECRET)}"}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"prompt": "a\\u0000b"}', "prompt"),
        ('{"prompt": "ok", "negative_prompt": "\\u001b[2J"}', "negative_prompt"),
        ('{"prompt": "a\\ud800b"}', "prompt"),
        ('{"prompt": "\\u0085"}', "prompt"),
    ],
)
async def test_text_with_control_characters_is_a_422_naming_the_field(
    client: httpx.AsyncClient, raw: str, field: str
) -> None:
    response = await client.post(
        "/v1/videos", content=raw, headers={**_auth(), "Content-Type": "application/json"}
    )
    body = _problem(response, 422, "invalid_parameter")
    assert [e["field"] for e in body["errors"]] == [field]


async def test_a_cursor_with_a_nul_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/videos", params={"cursor": "a\x00b"}, headers=_auth())
    body = _problem(response, 422, "invalid_parameter")
    assert [e["field"] for e in body["errors"]] == ["cursor"]


async def test_deep_json_is_a_422_not_a_crash(client: httpx.AsyncClient) -> None:
    deep = b"[" * 5000 + b"]" * 5000  # fits the 16 KiB limit; would exhaust the parser's stack
    response = await client.post(
        "/v1/videos", content=deep, headers={**_auth(), "Content-Type": "application/json"}
    )
    body = _problem(response, 422, "invalid_parameter")
    assert body["errors"][0]["field"] == "body"


async def test_an_oversized_body_is_a_413_before_authentication(
    client: httpx.AsyncClient,
) -> None:
    body = json.dumps({"prompt": "x" * 20000}).encode()
    response = await client.post("/v1/videos", content=body)  # no token at all
    _problem(response, 413, "payload_too_large")
    small = await client.post("/v1/videos/abc/cancel", content=b"{" + b" " * 2000 + b"}")
    _problem(small, 413, "payload_too_large")


async def test_requests_without_a_valid_token_are_limited_per_address(
    client: httpx.AsyncClient,
) -> None:
    answers = [await client.get("/v1/usage") for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    refused = await client.get("/v1/usage", headers={"Authorization": "Bearer not-a-token"})
    _problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    # Public routes are not counted.
    assert (await client.get("/openapi.json")).status_code == 200


def test_only_a_bodiless_method_declaring_no_body_skips_the_count() -> None:
    assert declares_no_body("GET", [(b"host", b"x")])
    assert declares_no_body("DELETE", [(b"content-length", b"0")])
    assert not declares_no_body("GET", [(b"content-length", b"12")])
    assert not declares_no_body("GET", [(b"transfer-encoding", b"chunked")])
    assert not declares_no_body("POST", [])  # the create route's body is always counted


async def test_a_get_with_a_chunked_body_is_still_bounded() -> None:
    app = _App()
    receive = _Chunks(4096, 12800)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/videos",
        "headers": [(b"transfer-encoding", b"chunked")],
    }
    await asyncio.wait_for(_middleware(app)(scope, receive, send), 5)
    assert sent[0]["status"] == 413 and app.bodies == []
    assert receive.read_bytes <= 1024 + 4096
