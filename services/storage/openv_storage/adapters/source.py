"""Fetching a result from an external URL without letting the URL reach inside our network.

Every TCP connection the HTTP client makes goes through the shared guard
(`openv_infra.guarded_network`: resolved once, every address checked, the socket opened to a
checked address). Redirects are followed here, hop by
hop (scheme checked; the next connection passes the same guard), and environment proxies are
ignored (a proxy would connect on our behalf, past the guard).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import httpx

from openv_infra.addresses import AddressPolicy
from openv_infra.guarded_network import (
    AddressRefused,
    Resolver,
    guarded_client,
    system_resolver,
)
from openv_storage.domain.imports import ImportRefused, check_url, declared_size_too_large

CHUNK_BYTES: Final = 64 * 1024
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


class SourceUnavailable(Exception):
    """The source failed in a way that may pass (network error, 5xx, 429): retry later."""


class UrlSource:
    """Opens result URLs as streamed responses, through the guard."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_redirects: int,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.max_redirects = max_redirects
        self._client = guarded_client(
            policy,
            resolver=resolver,
            # One import, one connection: nothing to reuse.
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=0),
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            # Raw bytes as stored: no compressed transfer to inflate (no zip bombs either).
            headers={"Accept-Encoding": "identity", "User-Agent": "openv-storage/1"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @contextlib.asynccontextmanager
    async def open(self, url: str, deadline: float | None = None) -> AsyncIterator[httpx.Response]:
        """The 200 response of `url` (after redirects), body not yet read, by `deadline`
        (event-loop time).

        ImportRefused: not allowed or not there (4xx, bad scheme, too many redirects, a
        non-public address, past the deadline). SourceUnavailable: worth another try later.
        """
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._follow(url)
        except TimeoutError:
            raise ImportRefused("the result URL did not answer in the time allowed") from None
        try:
            yield response
        finally:
            await response.aclose()

    async def _follow(self, url: str) -> httpx.Response:
        current = url
        for _ in range(self.max_redirects + 1):
            host = check_url(current)
            try:
                request = self._client.build_request("GET", current)
                response = await self._client.send(request, stream=True)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise ImportRefused(f"invalid result URL: {exc}") from exc
            except AddressRefused as exc:
                raise ImportRefused(f"the result URL's {exc}") from exc
            except httpx.TransportError as exc:
                raise SourceUnavailable(f"fetching from {host}: {type(exc).__name__}") from exc
            if response.is_redirect:
                location = response.headers["location"]
                await response.aclose()
                try:
                    current = str(response.url.join(location))
                except httpx.InvalidURL as exc:
                    raise ImportRefused(f"invalid redirect from {host}: {exc}") from exc
                continue
            if response.status_code == 200:
                return response
            await response.aclose()
            status = response.status_code
            if status in _RETRYABLE_STATUS or status >= 500:
                raise SourceUnavailable(f"{host} answered HTTP {status}")
            raise ImportRefused(f"{host} answered HTTP {status}")
        raise ImportRefused(f"more than {self.max_redirects} redirects")


class CappedBody:
    """A response body read in pieces, refusing more than `max_bytes` or than the deadline
    (loop time) allows. Feeds `Bucket.put_stream` (a `ChunkSource`)."""

    def __init__(self, response: httpx.Response, max_bytes: int, deadline: float) -> None:
        if declared_size_too_large(response.headers.get("content-length"), max_bytes):
            raise ImportRefused(f"the result is larger than the {max_bytes}-byte limit")
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.received = 0
        self._chunks = response.aiter_raw(CHUNK_BYTES)
        self._buffer = bytearray()
        self._eof = False

    async def _fill(self, size: int) -> None:
        while len(self._buffer) < size and not self._eof:
            try:
                async with asyncio.timeout_at(self.deadline):
                    chunk = await anext(self._chunks, None)
            except TimeoutError:
                raise ImportRefused("the download took longer than allowed") from None
            except httpx.TransportError as exc:
                raise SourceUnavailable(f"download broke off: {type(exc).__name__}") from exc
            if chunk is None:
                self._eof = True
                return
            self.received += len(chunk)
            if self.received > self.max_bytes:
                raise ImportRefused(f"the result is larger than the {self.max_bytes}-byte limit")
            self._buffer += chunk

    async def peek(self, size: int) -> bytes:
        """The first `size` bytes (fewer at the end), left in place for `read`."""
        await self._fill(size)
        return bytes(self._buffer[:size])

    async def read(self, max_bytes: int) -> bytes:
        await self._fill(max_bytes)
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        return data
