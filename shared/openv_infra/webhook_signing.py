"""Standard Webhooks signatures (https://www.standardwebhooks.com), as OpenV signs the webhooks
it sends to client apps (issue #24): a secret `whsec_<base64 key>` per user, and on every
delivery the headers `webhook-id` (the same on every retry of one delivery, so a receiver can
drop duplicates), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret in use, separated by
spaces (while a rotated-out secret still signs alongside the new one, a receiver holding either
accepts). Pure: no I/O, no clock (the caller passes the time). tests/unit/test_webhook_signing.py
checks every signature with the reference implementation."""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
#: Bytes of a new signing key (the reference implementation accepts any length).
KEY_BYTES = 32


class InvalidSecret(ValueError):
    """Not a `whsec_` secret with a non-empty base64 key."""


def new_secret() -> str:
    """A fresh signing secret, as `GET /v1/webhooks/secret` shows it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("a signing secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError as exc:
        raise InvalidSecret("a signing secret's key is base64") from exc
    if not key:
        raise InvalidSecret("a signing secret's key is not empty")
    return key


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `<id>.<timestamp>.<body>` with the secret's key."""
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(
    secrets_in_use: Sequence[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of one delivery attempt, signed with every secret in use (the
    current one first)."""
    if not secrets_in_use:
        raise InvalidSecret("at least one signing secret")
    if not webhook_id or any(c in webhook_id for c in " ,.\r\n"):
        raise ValueError("a webhook id is one token without spaces, commas or dots")
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, webhook_id, timestamp, body) for s in secrets_in_use
        ),
    }
