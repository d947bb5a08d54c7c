"""`ConnectionPool`: httpcore's connection-pool contract with O(1) bookkeeping.

httpcore's own pool walks every pooled connection and every queued request twice per request
(assigning requests to connections, then again when the response closes), behind anyio locks:
a sixth of the RunPod bridge's CPU under create load with its 24 connections. This one keeps
each origin's idle connections in a stack instead, so taking and returning one costs the same
whatever the pool's size.
"""

# `_acquire`'s `timeout` is the request's pool timeout, as httpcore names it.
# ruff: noqa: ASYNC109

import asyncio
import contextlib
import ssl
import time
import types
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import cast

import httpcore

from openv_infra.http.network import SocketOption

Key = tuple[bytes, bytes, int | None]


class ConnectionPool:
    """httpcore's pool contract (at most `max_connections` open, at most
    `max_keepalive_connections` of them idle, idle ones closed after `keepalive_expiry`,
    waiting at most the request's pool timeout for a free one) with O(1) bookkeeping: each
    origin's idle connections in a stack (the most recently used first: warm, and the rest
    expire), and requests waiting for a connection in a queue, first come first served."""

    def __init__(
        self,
        network_backend: httpcore.AsyncNetworkBackend,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = 10,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = None,
        retries: int = 0,
        local_address: str | None = None,
        uds: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> None:
        self._backend = network_backend
        self._ssl_context = ssl_context
        self._max_connections = max_connections if max_connections is not None else 2**31
        keepalive = max_keepalive_connections
        self._max_idle = self._max_connections if keepalive is None else keepalive
        self._keepalive_expiry = keepalive_expiry
        self._retries = retries
        self._local_address = local_address
        self._uds = uds
        self._socket_options = socket_options
        self._idle: dict[Key, deque[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections in use or idle: what `max_connections` bounds."""
        return self._in_use + self._idle_count

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if request.url.scheme not in (b"http", b"https"):
            raise httpcore.UnsupportedProtocol(f"unsupported URL scheme {request.url.scheme!r}")
        origin = request.url.origin
        key: Key = (origin.scheme, origin.host, origin.port)  # Origin is not hashable
        timeouts = request.extensions.get("timeout", {})
        while True:
            connection = await self._acquire(key, origin, timeouts.get("pool"))
            try:
                response = await connection.handle_async_request(request)
            except httpcore.ConnectionNotAvailable:
                # An idle connection that could not take the request after all: another.
                await self._release(connection, key)
                continue
            except BaseException:
                await self._release(connection, key)
                raise
            return httpcore.Response(
                status=response.status,
                headers=response.headers,
                content=_Released(response.stream, self, connection, key),
                extensions=response.extensions,
            )

    async def _acquire(
        self, key: Key, origin: httpcore.Origin, timeout: float | None
    ) -> httpcore.AsyncHTTPConnection:
        deadline = None if timeout is None else time.monotonic() + timeout
        waited = False
        while True:
            if self._closed:
                raise RuntimeError("the connection pool is closed")
            connection = await self._take_idle(key)
            if connection is not None:
                return connection
            if self.open_connections >= self._max_connections:
                await self._close_oldest_idle()  # another origin's, to make room
            if self.open_connections < self._max_connections:
                self._in_use += 1
                return httpcore.AsyncHTTPConnection(
                    origin=origin,
                    ssl_context=self._ssl_context,
                    keepalive_expiry=self._keepalive_expiry,
                    retries=self._retries,
                    local_address=self._local_address,
                    uds=self._uds,
                    network_backend=self._backend,
                    socket_options=self._socket_options,
                )
            # Woken, but a request that never waited took the connection: first in line again.
            await self._wait_for_release(deadline, first=waited)
            waited = True

    async def _take_idle(self, key: Key) -> httpcore.AsyncHTTPConnection | None:
        stack = self._idle.get(key)
        while stack:
            connection = stack.pop()
            self._idle_count -= 1
            if connection.is_available() and not connection.has_expired():
                self._in_use += 1
                return connection
            await connection.aclose()  # the server closed it, or it idled too long
            self._wake_one()
        return None

    async def _close_oldest_idle(self) -> None:
        for stack in self._idle.values():
            if stack:
                connection = stack.popleft()
                self._idle_count -= 1
                await connection.aclose()
                return

    async def _wait_for_release(self, deadline: float | None, first: bool) -> None:
        waiter = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            async with asyncio.timeout(remaining):
                await waiter
        except BaseException as exc:  # timed out or cancelled
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # a release woke this one, which leaves: wake the next
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise httpcore.PoolTimeout("no connection became free in time") from None
            raise

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _release(self, connection: httpcore.AsyncHTTPConnection, key: Key) -> None:
        """The request is done with `connection` (to `key`'s origin): keep it idle for
        reuse, or close it."""
        self._in_use -= 1
        if (
            not self._closed
            and connection.is_idle()
            and not connection.has_expired()
            and self._idle_count < self._max_idle
        ):
            self._idle.setdefault(key, deque()).append(connection)
            self._idle_count += 1
            self._wake_one()
            return
        self._wake_one()
        await connection.aclose()

    async def aclose(self) -> None:
        self._closed = True
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        self._idle_count = 0
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # they find the pool closed
        for connection in idle:
            await connection.aclose()

    async def __aenter__(self) -> "ConnectionPool":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        await self.aclose()


class _Released(AsyncIterable[bytes]):
    """A response body that gives its connection back to the pool once read or closed."""

    def __init__(
        self,
        stream: Iterable[bytes] | AsyncIterable[bytes],
        pool: ConnectionPool,
        connection: httpcore.AsyncHTTPConnection,
        key: Key,
    ) -> None:
        self._stream = cast(AsyncIterable[bytes], stream)
        self._pool = pool
        self._connection = connection
        self._key = key
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            closer = getattr(self._stream, "aclose", None)
            if closer is not None:
                await closer()
        finally:
            await self._pool._release(self._connection, self._key)
