"""CORS for the configured origins (`OPENV_CORS_ORIGINS`), so pages on other origins can use
the API from a browser.

Installed as the outermost middleware: preflights are answered before the body limit,
authentication or routing see them, and every answer of the app (problem+json errors, 401,
413, 429 included) carries the CORS headers an allowed origin needs to read it. An unlisted
origin gets no `Access-Control-Allow-Origin`, and its preflight a problem+json 403. Tokens
travel in the `Authorization` header, never in cookies: credentials mode stays off.
"""

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from openv_gateway.entrypoints.problems import problem

ALLOWED_METHODS = ("GET", "POST", "DELETE")
#: Request headers a page may send: the token, JSON bodies, safe retries, waiting, resuming.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Prefer", "Last-Event-ID")
#: Response headers a page may read beyond the CORS-safelisted ones.
EXPOSED_HEADERS = ("Location", "Retry-After", "Preference-Applied", "WWW-Authenticate", "Allow")


class _ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as problem+json like every error,
    and a short way through for requests without an `Origin` (no page on another origin: API
    clients, same-origin pages' GETs, polls), which only get the `Vary: Origin` Starlette adds."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def vary_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if any(name.lower() == b"vary" for name, _ in headers):
                    await self.send(message, send, Headers())  # merged as Starlette does
                    return
                headers.append((b"vary", b"Origin"))
            await send(message)

        await self.app(scope, receive, vary_origin)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode(errors="replace")
        return problem(403, "cors_refused", f"CORS preflight refused: {reason}")


def install(app: FastAPI, origins: list[str], max_age_s: int) -> None:
    """Call after every other middleware (the last added is the outermost); no origins: off."""
    if not origins:
        return
    app.add_middleware(
        _ProblemCORSMiddleware,
        allow_origins=origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=max_age_s,
    )
