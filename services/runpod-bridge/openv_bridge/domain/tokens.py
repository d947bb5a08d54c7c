"""Per-video webhook tokens: RunPod does not sign webhooks, so the URL carries proof."""

import hashlib
import hmac
from uuid import UUID


def webhook_token(secret: bytes, video_id: UUID) -> str:
    return hmac.new(secret, f"runpod-webhook:{video_id}".encode(), hashlib.sha256).hexdigest()


def token_valid(secret: bytes, video_id: UUID, token: str) -> bool:
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    expected = webhook_token(secret, video_id).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", "replace"))


def webhook_url(base_url: str, secret: bytes, video_id: UUID) -> str:
    """Where RunPod reports on the video's job: the bridge's webhook with the video's token."""
    base = base_url.rstrip("/")
    return f"{base}/webhooks/runpod/{video_id}?token={webhook_token(secret, video_id)}"
