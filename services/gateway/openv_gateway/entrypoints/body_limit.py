"""Bounded request bodies, before anything else reads them (authentication, JSON parsing).

A pure ASGI middleware: BaseHTTPMiddleware would wrap `receive` and streaming responses in
its own machinery. It answers

* 413 `payload_too_large` as soon as a request declares (Content-Length) or has sent
  (chunked) more than its route's limit, without reading the rest; the connection is
  closed, so the server never reads what the client still sends;
* 422 `invalid_parameter` (field `body`) for JSON nested deeper than the limit, before the
  parser recurses into it;

and otherwise hands the application the body it has read (at most the limit, one message).
A GET (HEAD, DELETE, OPTIONS) declaring no body (neither Content-Length nor
Transfer-Encoding, or a zero length) has none under HTTP/1.1 framing: it goes straight through.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openv_gateway.domain.body_limit import BodyLimits, content_length, declares_no_body
from openv_gateway.entrypoints.problems import problem
from openv_infra.json_depth import nesting_exceeds


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: BodyLimits, max_json_depth: int) -> None:
        self.app = app
        self.limits = limits
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or declares_no_body(scope["method"], scope["headers"]):
            # (Most requests, polls: passed on untouched.)
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_request(scope["method"], scope["path"])
        declared = content_length(scope["headers"])
        if declared is not None and declared > limit:
            await _too_large(limit, scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _too_large(limit, scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if body and nesting_exceeds(bytes(body), self.max_json_depth):
            response = problem(
                422,
                "invalid_parameter",
                "the request has invalid parameters",
                errors=[
                    {
                        "field": "body",
                        "message": f"JSON nested deeper than {self.max_json_depth} levels",
                    }
                ],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(bytes(body), receive), send)


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(
        413,
        "payload_too_large",
        f"the request body is larger than this route's limit of {limit} bytes",
        # The rest of the body is never read: the connection cannot carry another request.
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read as one message, then the client's own messages (disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
