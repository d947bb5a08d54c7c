"""The public OpenAPI document's prose and shape: the API's description, the longer texts of
the create and stream routes, the create's response documentation, and the tidying that
leaves error responses problem+json only. Routes import the texts; `install` sets the
document up on the app."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from openv_contracts.public_video import Video
from openv_contracts.webhooks import WebhookSecretView
from openv_gateway.config import Settings
from openv_gateway.domain import idempotency
from openv_gateway.domain.prefer import MAX_WAIT_S
from openv_gateway.entrypoints.problems import (
    POLL_AFTER,
    PROBLEM_JSON,
    RETRY_AFTER,
    header_doc,
    problem_response,
)

TITLE = "OpenV API"
VERSION = "1.0.0"

DESCRIPTION = """\
Generate videos from prompts on RunPod Serverless; watch them, play them, delete them.

**Authentication**: `Authorization: Bearer <Supabase access token>` on every `/v1` route. A
browser's `EventSource` (which cannot send the header) opens a stream with a short-lived
`stream_token` from `POST /v1/videos/{{id}}/stream-tokens` instead; access tokens are never
accepted in a URL.

**Errors** are `application/problem+json` (RFC 9457) with a machine-readable `code`:
`invalid_parameter` (422, with `errors`), `invalid_webhook` (422, with `errors`: the create's
webhook cannot be used), `unauthorized` (401, with `WWW-Authenticate: Bearer`),
`not_found` (404; another user's video is answered exactly like a missing one), `conflict` (409),
`concurrency_limit`, `quota_exceeded`, `rate_limited` (429, always with `Retry-After`),
`payload_too_large` (413), `unavailable` (503, with `Retry-After`).

**Text**: free text (prompts, cursors) may not hold control characters (tab, line feed and
carriage return excepted), lone surrogates or Unicode non-characters: 422 naming the field.

**Limits**: a few videos in progress per user at once (3 by default) and a monthly quota of video
seconds, decided by the jobs service. Besides, each gateway instance allows every user
{rate:g} requests/s with bursts of {burst} (`rate_limited`), and {open} long-lived requests
open at once (streams, `Prefer: wait`, `DELETE ?wait`; `rate_limited`); requests without a
valid token are limited per client address. A create's body may hold {create_bytes} bytes,
other requests' {other_bytes} (`payload_too_large`); JSON nested deeper than {depth} levels is
`invalid_parameter`. The limits are per instance.

**Live status**: `GET /v1/videos/{{id}}` suggests a poll interval in `Retry-After` while the
video is not terminal; `GET /v1/videos/{{id}}/stream` pushes every change (SSE);
`Prefer: wait=N` on create holds the answer until the video is terminal.
"""

IDEMPOTENCY_DESCRIPTION = f"""\
Makes the create safe to retry (e.g. after a timeout or a dropped connection), at most
{idempotency.MAX_KEY_LENGTH} printable ASCII characters; use a fresh UUID per intended video.

* The same key with the same body returns the same video and makes exactly one job, also when
  retries arrive concurrently (on any gateway instance).
* The same key with a different body is answered `409 conflict`.
* Without a `seed` in the body, the seed is derived from the key, so a retry's body is the same.
* Retention: the key is bound to the video it created for as long as that video's record
  exists (at least the 24 h the contract promises; records are kept after deletion), so a key
  must never be reused for another video. A request refused by a limit is remembered too:
  retrying its key replays the 429; send a new key to try again.
* Keys are scoped per user: two users' identical keys never collide."""

PREFER_DESCRIPTION = f"""\
RFC 7240 preferences. `wait=N` (0 <= N <= {MAX_WAIT_S}) holds the answer until the video is
terminal (completed, failed, cancelled, timed_out, rejected, deleted) or N seconds have passed,
whichever comes first; the answer then carries `Preference-Applied: wait=N`. Other preferences
are ignored; a `wait` that is not a whole number within bounds is a 422."""

CREATE_DESCRIPTION = """\
Publishes the request to the jobs service and waits a bounded time (the gateway's decision
budget, a few seconds) for its decision:

* `202` with status `queued` (or later) and `Location`: accepted.
* `429` `concurrency_limit` / `quota_exceeded` with `Retry-After`: refused by a limit.
* `202` with status `pending`: no decision arrived in time. The request was published and will
  be decided; poll `Location` (this instance answers `pending` until the decision, other
  instances may answer 404 for that short while) or use an Idempotency-Key to retry safely."""

STREAM_DESCRIPTION = """\
Server-Sent Events (`text/event-stream`) of the video's status.

* First a `status` event with the current video (unless `Last-Event-ID` shows the client has
  it), then one `status` event per change. Each event's `data` is the video resource (the
  same JSON as `GET /v1/videos/{id}`), its `id` the video's version (pending: 0). Changes
  that follow each other within milliseconds may arrive as one event with the latest state.
* A comment line (`: keep-alive`) every 15 s while nothing changes.
* Resume: send the last `id` seen as `Last-Event-ID`; only newer states are sent.
* The stream ends after the event that carries a terminal status (completed, failed,
  cancelled, timed_out, rejected, deleted). Resuming after that answers 204, which tells
  EventSource clients to stop reconnecting.
* Authentication: the `Authorization` header, or (for EventSource) `?stream_token=` from
  `POST /v1/videos/{id}/stream-tokens`, valid for this video and user for a few minutes."""

VIDEO_202 = {
    "model": Video,
    "description": "Accepted (status `queued` or later), or `pending` when no decision came "
    "in time.",
    "headers": {
        "Location": header_doc("The video's URL.", {"type": "string"}, True),
        "Retry-After": POLL_AFTER,
        "Preference-Applied": header_doc(
            "`wait=N` when `Prefer: wait=N` was honoured.", {"type": "string"}, False
        ),
    },
}
REFUSED = problem_response(
    "`concurrency_limit` or `quota_exceeded` (refused by the jobs service), or `rate_limited`.",
    {"Retry-After": RETRY_AFTER},
)
CANCEL_CONFLICT = problem_response(
    "`conflict`: the video is already terminal (or not decided yet: then with `Retry-After`)."
)


def describe(settings: Settings) -> str:
    """The API's description with this deployment's limits."""
    return (DESCRIPTION + WEBHOOKS_DESCRIPTION).format(
        rate=settings.rate_limit_per_s,
        burst=settings.rate_limit_burst,
        open=settings.max_open_per_user,
        create_bytes=settings.max_body_bytes_create,
        other_bytes=settings.max_body_bytes_other,
        depth=settings.max_json_depth,
    )


def tidy(document: dict[str, Any]) -> dict[str, Any]:
    """Error responses are problem+json only (FastAPI also lists its default media type)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_JSON in content:
                    content.pop("application/json", None)
                if "text/event-stream" in content:
                    content.pop("application/json", None)
            # FastAPI's own validation error schema is never used: ours is the Problem.
            for status in ("422",):
                response = operation.get("responses", {}).get(status)
                if response is not None and PROBLEM_JSON not in response.get("content", {}):
                    response["content"] = {
                        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
    schemas = document.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def install(app: FastAPI) -> None:
    """Serve the tidied document (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = tidy(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- webhooks (issue #24) ---------------------------------------------------------------------

SECRET_200 = {
    "model": WebhookSecretView,
    "description": "The secret (never cached: `Cache-Control: no-store`).",
    "headers": {
        "Cache-Control": header_doc("Always `no-store`.", {"type": "string"}, True),
    },
}
SIGNING_KEY_DESCRIPTION = """\
The signing secret (`whsec_` + base64) with which every webhook sent for this user's videos is
signed (Standard Webhooks, see the API description's **Webhooks**). Created on first use; the
same until rotated. Keep it on your server: whoever has it can forge webhooks."""
ROTATE_DESCRIPTION = """\
Replaces the signing secret. The previous one keeps signing alongside the new one (both
signatures in `webhook-signature`) until `previous_expires_at` (24 h), so receivers can switch
without losing a delivery."""
DELIVERIES_DESCRIPTION = """\
Every webhook delivery of the video (one per event sent), oldest first, with each attempt:
its time, the receiver's status code (null when no answer came), latency and error. `state`
is `pending` (being tried), `delivered` (a 2xx answer) or `failed` (no 2xx within 24 h)."""
REPLAY_DESCRIPTION = """\
Sends the video's `failed` deliveries again (each with the same `webhook-id`, so a receiver
that did get one drops the duplicate) with a fresh 24 h of retries; `replayed` says how many.
Delivered and pending deliveries are left alone."""

WEBHOOKS_DESCRIPTION = """
**Webhooks**: name `webhook` (an https URL) on create, and optionally `webhook_events_filter`
(`queued`, `started`, `progress`, `completed` = any terminal state; default all). Each matching
change of the video is POSTed as JSON `{{"type": "video.<event>", "timestamp": <when it
happened>, "data": <the video, as GET /v1/videos/{{id}} shows it>}}`, signed as Standard
Webhooks: `webhook-id` (the same on every retry: drop duplicates by it), `webhook-timestamp`
(unix seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`
keyed with the base64-decoded part of `GET /v1/webhooks/secret` after `whsec_`). A 2xx answer
within 10 s counts; anything else (redirects are not followed) is retried after about 5 s,
then doubling with jitter up to 1 h apart, for 24 h; in order per video. Deliveries and their
attempts: `GET /v1/videos/{{id}}/webhook-deliveries`; failed ones are sent again by
`POST /v1/videos/{{id}}/webhook-deliveries/replay`.
"""
