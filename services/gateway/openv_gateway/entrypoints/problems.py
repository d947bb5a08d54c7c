"""Every error is `application/problem+json` with a machine-readable `code`; nothing is a 500."""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openv_gateway.entrypoints.schemas import Problem

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
CHALLENGE = {"WWW-Authenticate": "Bearer"}
UNAVAILABLE_RETRY_AFTER_S = 2

_TITLES = {
    "invalid_parameter": "Invalid parameter",
    "unauthorized": "Unauthorized",
    "not_found": "Not found",
    "concurrency_limit": "Too many videos in progress",
    "quota_exceeded": "Monthly quota exceeded",
    "rate_limited": "Too many requests",
    "conflict": "Conflict",
    "unavailable": "Service unavailable",
    "method_not_allowed": "Method not allowed",
    "payload_too_large": "Request body too large",
    "cors_refused": "Origin not allowed",
}
_HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 409: "conflict"}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors


def problem(
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://openv.dev/problems/{code}",
        "title": _TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def unavailable() -> ApiError:
    return ApiError(
        503,
        "unavailable",
        "a backend service is unavailable; try again",
        {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    if loc and loc[0] == "header" and parts:
        # Header names as clients write them (FastAPI reports them lower-cased).
        parts[0] = "-".join(w.capitalize() for w in parts[0].split("-"))
    return ".".join(parts) or "body"


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the requested path (GET implies HEAD)."""
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, exc.headers, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        return problem(
            422, "invalid_parameter", "the request has invalid parameters", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # A body that is not even JSON (e.g. not UTF-8): the contract's 422 like any other.
            return problem(
                422,
                "invalid_parameter",
                "the request has invalid parameters",
                errors=[{"field": "body", "message": str(exc.detail)}],
            )
        code = _HTTP_CODES.get(exc.status_code, "invalid_parameter")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; list them all.
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return problem(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Dependencies failing in unforeseen ways: say "try again", never a bare 500.
        log.exception("unhandled error")
        return problem(
            503,
            "unavailable",
            "the service cannot answer right now; try again",
            {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )


def header_doc(description: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


RETRY_AFTER = header_doc(
    "Seconds to wait before trying again.", {"type": "integer", "minimum": 1}, True
)
POLL_AFTER = header_doc(
    "While the video is not terminal: suggested seconds until the next poll (or use "
    "`GET /v1/videos/{id}/stream`).",
    {"type": "integer", "minimum": 1},
    False,
)


def problem_response(
    description: str, headers: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        response["headers"] = headers
    return response


UNAUTHORIZED = problem_response(
    "`unauthorized`: missing, invalid or expired token, wrong audience, `alg: none`.",
    {
        "WWW-Authenticate": header_doc(
            "Always `Bearer`.", {"type": "string", "enum": ["Bearer"]}, True
        )
    },
)
NOT_FOUND = problem_response(
    "`not_found`: no such video, or another user's (answered exactly alike)."
)
INVALID = problem_response(
    "`invalid_parameter`: `errors` lists each invalid field (body, query or header), e.g. text "
    "with control characters, or a body nested too deep (field `body`)."
)
RATE_LIMITED = problem_response(
    "`rate_limited`: too many requests from this user (a per-instance token bucket), too many "
    "long-lived requests of this user open at once (streams, `Prefer: wait`, `DELETE ?wait`), "
    "or too many requests without a valid token from this client address.",
    {"Retry-After": RETRY_AFTER},
)
PAYLOAD_TOO_LARGE = problem_response(
    "`payload_too_large`: the body is larger than the route's limit (a create's is a few KB; "
    "routes without a body allow almost none), answered before authentication and before "
    "the body is read; the connection is then closed."
)
UNAVAILABLE = problem_response(
    "`unavailable`: a backend service did not answer; try again.", {"Retry-After": RETRY_AFTER}
)
CONFLICT = problem_response("`conflict`")

#: What every authenticated route may answer besides its own successes.
COMMON: dict[int | str, dict[str, Any]] = {
    401: UNAUTHORIZED,
    413: PAYLOAD_TOO_LARGE,
    422: INVALID,
    429: RATE_LIMITED,
    503: UNAVAILABLE,
}
