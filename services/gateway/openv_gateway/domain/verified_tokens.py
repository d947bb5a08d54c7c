"""Access tokens already verified, remembered for their remaining lifetime.

Verifying a token (a signature, the claims) costs more than the rest of a cached read, and
a polling client sends the same token every time. So a verified token's principal is kept
until the token's `exp` plus the verifier's leeway, keyed by the SHA-256 of the token (the
token itself is never stored), at most `size` of them (least recently used go first).
Only tokens that passed verification are remembered; past its `exp` (+ leeway) an entry is
dropped and the token goes through verification again, which refuses it exactly as it
refuses a token never seen. Revocation is what it was: a token is valid until it expires.
"""

import hashlib
from collections import OrderedDict

from openv_gateway.domain.principal import Principal


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokens:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, tuple[Principal, str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, now: float) -> tuple[Principal, str] | None:
        """The principal of a token verified before and still valid at `now` (before
        `valid_until`), and the algorithm it was verified with; None for any other token."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, algorithm, valid_until = entry
        if now >= valid_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return principal, algorithm

    def put(self, key: bytes, principal: Principal, algorithm: str, valid_until: float) -> None:
        if self.size <= 0:
            return
        self._entries[key] = (principal, algorithm, valid_until)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
