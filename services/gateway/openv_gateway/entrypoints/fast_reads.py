"""The polls' fast lane: `GET /v1/videos/{id}` answered before FastAPI's routing.

A poll of a video this instance keeps, with a token it has verified before, needs no I/O:
the answer is the video's encoded state (`VideoJson`). What remained of such a request was
FastAPI's route matching and dependency solving, a third of its CPU (cProfile under
benchmarks/gateway_request_path.py). This middleware, innermost of the gateway's own, answers
exactly those polls with the same bytes and headers the route does, after the same checks in
the same order (a remembered token, the video kept here and visible to the principal, the
user's rate), and hands every other request on untouched: a first token, a video to load, a
refusal of any kind (401, 404, 429) is the route's to answer. The outer middleware (CORS,
metrics under the route's own label, the trace context) see both alike.
"""

import time
from uuid import UUID

from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from openv_gateway.entrypoints import routes
from openv_gateway.entrypoints.routes import get_video, poll_headers

PREFIX = "/v1/videos/"
#: A video id in its canonical form (what the API hands out): 36 characters.
_PATH_LENGTH = len(PREFIX) + 36
_BEARER = b"bearer "


class FastReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: Polls answered here (tests and the curious).
        self.answered = 0
        self._route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = self._answer(scope)
            if response is not None:
                self.answered += 1
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        if (
            scope["method"] != "GET"
            or scope["query_string"]
            or len(path) != _PATH_LENGTH
            or not path.startswith(PREFIX)
        ):
            return None
        token = _bearer_token(scope["headers"])
        if token is None:
            return None
        app: FastAPI = scope["app"]
        state = app.state
        principal = state.jwt.remembered(token)
        if principal is None:
            return None
        try:
            video_id = UUID(path[len(PREFIX) :])
        except ValueError:
            return None
        view = state.videos.peek(principal, video_id)
        if view is None:
            return None
        # Last, so that a request handed on was not counted: a refusal takes nothing, and the
        # route, asking again, answers the 429.
        if state.rate_limiter.take(principal.user_id, time.monotonic()) > 0:
            return None
        scope["route"] = self._route or self._find_route()
        return Response(
            state.video_json.encode(view),
            media_type="application/json",
            headers=poll_headers(view.status, state.settings.poll_interval_s),
        )

    def _find_route(self) -> BaseRoute | None:
        """The `getVideo` route, whose label the metrics count these answers under."""
        found = [r for r in routes.router.routes if getattr(r, "endpoint", None) is get_video]
        self._route = found[0] if found else None
        return self._route


def _bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The first Authorization header's bearer token, as FastAPI's HTTPBearer reads it."""
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() != _BEARER:
                return None
            token = value[7:].strip()
            return token.decode("latin-1") if token else None
    return None
