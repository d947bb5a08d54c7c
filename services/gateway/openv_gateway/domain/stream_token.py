"""Short-lived stream tokens: what lets a browser's `EventSource` (which cannot send an
`Authorization` header) open one video's status stream without a long-lived token in a URL.

A token names one user and one video and expires after a few minutes; it is signed by the
gateway with its own secret (HMAC-SHA256, `OPENV_STREAM_TOKEN_SECRET`), never with the access
tokens' key, and carries its own audience, so neither kind of token is accepted as the other.
Format: `st1.<base64url JSON claims>.<base64url signature>`.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from uuid import UUID

from openv_gateway.domain.principal import Principal

PREFIX = "st1"
AUDIENCE = "openv-stream"


class InvalidStreamToken(Exception):
    """Malformed, forged, expired, or for another video."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: float  # Unix time


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    def __init__(self, secret: str, ttl_s: float) -> None:
        self._key = secret.encode()
        self.ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())

    def issue(self, principal: Principal, video_id: UUID, now: float) -> IssuedToken:
        expires_at = int(now + self.ttl_s)
        claims = {
            "aud": AUDIENCE,
            "sub": principal.user_id,
            "vid": str(video_id),
            "adm": principal.is_admin,
            "exp": expires_at,
        }
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return IssuedToken(f"{PREFIX}.{payload}.{self._sign(payload)}", float(expires_at))

    def verify(self, token: str, video_id: UUID, now: float) -> Principal:
        """The principal the token was issued to, if it is valid for `video_id` at `now`."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise InvalidStreamToken("not a stream token")
        payload, signature = parts[1], parts[2]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidStreamToken("bad signature")
        try:
            claims = json.loads(_unb64(payload))
        except ValueError:
            raise InvalidStreamToken("malformed claims") from None
        if not isinstance(claims, dict) or claims.get("aud") != AUDIENCE:
            raise InvalidStreamToken("wrong audience")
        expires_at = claims.get("exp")
        if not isinstance(expires_at, int) or now >= expires_at:
            raise InvalidStreamToken("expired")
        if claims.get("vid") != str(video_id):
            raise InvalidStreamToken("issued for another video")
        user_id = claims.get("sub")
        if not isinstance(user_id, str) or not user_id:
            raise InvalidStreamToken("no subject")
        return Principal(user_id=user_id, is_admin=claims.get("adm") is True)
