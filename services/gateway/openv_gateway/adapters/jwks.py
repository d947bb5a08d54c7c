"""Signing keys from a JWKS URL (Supabase's asymmetric keys), cached and refreshed.

Keys are fetched on first use, trusted for `cache_s`, and fetched again early when a token
names a key id the cache does not know (key rotation). Whatever the reason, a fetch starts at
most once per `min_refresh_s` after the previous one, failed or not, so neither tokens with
made-up key ids nor a JWKS outage can make the gateway hammer the endpoint. One fetch is in
flight at a time: every request that needs it waits for that same fetch, which gives up after
`timeout_s`, so no request waits longer than one fetch. When a refresh fails the keys already
fetched stay in use.
"""

import asyncio
import logging
import time

import httpx
import jwt

from openv_infra.http import async_client

log = logging.getLogger(__name__)

#: Only asymmetric algorithms come from a JWKS; HS256 uses the shared secret.
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or parsed, and no keys were fetched before."""


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
        self.timeout_s = timeout_s
        self._http = client or async_client(internal=False, timeout=timeout_s)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch started, successful or not
        self._inflight: asyncio.Task[None] | None = None
        self.fetches = 0

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        await self._http.aclose()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for `kid` (or the only key when the token names none), or None.

        JwksUnavailable when there are no keys at all (never fetched, or every fetch failed).
        """
        refreshed = False
        if self._fetched_at is None or time.monotonic() - self._fetched_at >= self.cache_s:
            refreshed = await self._refresh()
        found = self._lookup(kid)
        if found is None and kid is not None and not refreshed and self._keys:
            await self._refresh()  # perhaps a key rotation
            found = self._lookup(kid)
        if not self._keys:
            raise JwksUnavailable(f"no signing keys from {self.url}")
        return found

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> bool:
        """Wait for the fetch in flight, or start one if the last started `min_refresh_s` ago
        or more; False when the limit allowed none."""
        task = self._inflight
        if task is None:
            now = time.monotonic()
            if self._attempted_at is not None and now - self._attempted_at < self.min_refresh_s:
                return False
            self._attempted_at = now
            task = self._inflight = asyncio.create_task(self._fetch())
        # Shielded: a request that goes away does not cancel the fetch the others wait for.
        await asyncio.shield(task)
        return True

    async def _fetch(self) -> None:
        """One fetch, bounded as a whole by `timeout_s`; never raises (a failure is logged
        and leaves the keys as they were)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._http.get(self.url)
                response.raise_for_status()
                keys = self._parse(response.json())
        except Exception as exc:  # any failure: the keys we have, or a refused token
            log.warning("JWKS fetch from %s failed: %s %s", self.url, type(exc).__name__, exc)
        else:
            self._keys = keys
            self._fetched_at = time.monotonic()
        finally:
            self.fetches += 1
            self._inflight = None

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
