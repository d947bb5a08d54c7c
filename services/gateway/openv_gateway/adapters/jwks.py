"""Signing keys from a JWKS URL (Supabase's asymmetric keys), cached and refreshed.

Keys are fetched on first use, trusted for `cache_s`, and fetched again early when a token
names a key id the cache does not know (key rotation), at most once per `min_refresh_s` so
tokens with made-up key ids cannot make the gateway hammer the JWKS endpoint.
"""

import asyncio
import logging
import time

import httpx
import jwt

from openv_shared.http import async_client

log = logging.getLogger(__name__)

#: Only asymmetric algorithms come from a JWKS; HS256 uses the shared secret.
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or parsed."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        cache_s: float = 600.0,
        min_refresh_s: float = 30.0,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.cache_s = cache_s
        self.min_refresh_s = min_refresh_s
        self._http = client or async_client(internal=False, timeout=timeout_s)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for `kid` (or the only key when the token names none), or None."""
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at >= self.cache_s:
            await self._refresh(force=True)
        found = self._lookup(kid)
        if found is None and kid is not None:
            await self._refresh(force=False)
            found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, *, force: bool) -> None:
        started = time.monotonic()
        async with self._lock:
            # Another request refreshed while this one waited for the lock: use its result.
            if self._fetched_at is not None and self._fetched_at >= started:
                return
            if (
                not force
                and self._fetched_at is not None
                and started - self._fetched_at < self.min_refresh_s
            ):
                return
            try:
                response = await self._http.get(self.url)
                response.raise_for_status()
                keys = self._parse(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                log.warning("JWKS fetch from %s failed: %s", self.url, exc)
                if not self._keys:
                    raise JwksUnavailable(str(exc)) from exc
                return  # keep serving the keys we have
            finally:
                self.fetches += 1
            self._keys = keys
            self._fetched_at = time.monotonic()

    @staticmethod
    def _parse(document: object) -> dict[str, jwt.PyJWK]:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document")
        keys: dict[str, jwt.PyJWK] = {}
        for index, entry in enumerate(document["keys"]):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:  # an unsupported key type must not hide the others
                log.info("JWKS key %d skipped: %s", index, exc)
                continue
            if key.algorithm_name not in JWKS_ALGORITHMS:
                continue
            keys[str(entry.get("kid", f"#{index}"))] = key
        return keys
