"""The services' HTTP client transport: httpx over plain asyncio sockets.

httpx's default network layer is anyio's, and before every request (and after every response)
httpcore asks each pooled connection whether the server closed it, which the anyio layer
answers with a `select` system call per connection. Under create load that check and anyio's
wrappers were a fifth of the RunPod bridge's CPU. Here an asyncio protocol keeps each
connection's received bytes and EOF (the event loop reads every open socket anyway), so the
check is an attribute read.

httpcore's connection pool, in turn, walks every pooled connection and every queued request
twice per request (assigning requests to connections, then again when the response closes),
behind anyio locks: a sixth of the bridge's CPU under create load with its 24 connections.
`ConnectionPool` keeps each origin's idle connections in a stack instead, so taking and
returning one costs the same whatever the pool's size. HTTP/1.1 itself, connecting, TLS,
timeouts and errors remain httpcore's and httpx's own.
"""

# The `timeout` parameters below are httpcore's network-stream interface.
# ruff: noqa: ASYNC109

import asyncio
import contextlib
import socket
import ssl
import time
import types
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, cast

import httpcore
import httpx

from openv_infra import telemetry

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

#: Reading pauses when this much is buffered unread (a large download into a slow upload)...
_HIGH_WATER = 256 * 1024
#: ...and resumes when the reader has taken it below this.
_LOW_WATER = 64 * 1024


class _Protocol(asyncio.Protocol):
    """One connection's received bytes, EOF and loss, and write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost: Exception | None = None
        self.closed = False
        self.reading_paused = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (the services' loop) are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def taken(self) -> None:
        """The reader took bytes from the buffer: resume reading once it is low again."""
        if self.reading_paused and len(self.buffer) < _LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport: HTTP/1.1 never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self._wake_reader()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    async def wait_readable(self) -> None:
        self._readable = asyncio.get_running_loop().create_future()
        try:
            await self._readable
        finally:
            self._readable = None

    async def wait_writable(self) -> None:
        if self._writable is not None:
            await asyncio.shield(self._writable)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    @property
    def _transport(self) -> asyncio.Transport:
        assert self._protocol.transport is not None
        return self._protocol.transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not (protocol.eof or protocol.closed):
            try:
                async with asyncio.timeout(timeout):
                    await protocol.wait_readable()
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading") from None
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            protocol.taken()
            return data
        if protocol.lost is not None:
            raise httpcore.ReadError(str(protocol.lost)) from protocol.lost
        return b""  # EOF: httpcore turns it into its own "server disconnected" error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.closed or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        try:
            async with asyncio.timeout(timeout):
                await protocol.wait_writable()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing") from None
        if protocol.lost is not None:
            raise httpcore.WriteError(str(protocol.lost)) from protocol.lost

    async def aclose(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        self._protocol.transport = cast(asyncio.Transport, transport)
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Asked of idle connections: anything received, or EOF, means the server is done
            # with it. The event loop has already read whatever arrived.
            protocol = self._protocol
            return bool(protocol.buffer) or protocol.eof or protocol.closed
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        return await _open(
            lambda protocol: loop.create_connection(lambda: protocol, host, port, local_addr=local),
            f"{host}:{port}",
            timeout,
            socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        return await _open(
            lambda protocol: loop.create_unix_connection(lambda: protocol, path),
            path,
            timeout,
            socket_options,
        )

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _open(
    connect: Callable[[_Protocol], Awaitable[object]],
    where: str,
    timeout: float | None,
    socket_options: Iterable[SocketOption] | None,
) -> _Stream:
    """A connection made by `connect` for a fresh protocol, httpcore's errors on failure."""
    protocol = _Protocol()
    try:
        async with asyncio.timeout(timeout):
            await connect(protocol)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"timed out connecting to {where}") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    _apply(protocol, socket_options)
    return _Stream(protocol)


def _apply(protocol: _Protocol, options: Iterable[SocketOption] | None) -> None:
    # asyncio sets TCP_NODELAY itself; these are the caller's extra options, if any.
    if protocol.transport is None:
        return
    sock: socket.socket | None = protocol.transport.get_extra_info("socket")
    for option in options or ():
        if sock is not None:
            sock.setsockopt(*option)  # type: ignore[call-overload]


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


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on `ConnectionPool` over `network_backend` (`AsyncioBackend` unless
    given, e.g. one that vets addresses first); other arguments as httpx's."""

    def __init__(
        self, network_backend: httpcore.AsyncNetworkBackend | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # httpx offers no argument for the pool; it built httpcore's from the arguments
        # (limits, TLS, retries, ...), which ours takes over. With a proxy it built another
        # kind of pool (a subclass of httpcore's), kept as it is but on our network backend.
        built = self._pool
        backend = network_backend or AsyncioBackend()
        if type(built) is not httpcore.AsyncConnectionPool or built._http2:
            built._network_backend = backend
        else:
            # httpx calls only handle_async_request, aclose, __aenter__ and __aexit__.
            self._pool = ConnectionPool(  # type: ignore[assignment]
                backend,
                ssl_context=built._ssl_context,
                max_connections=built._max_connections,
                max_keepalive_connections=built._max_keepalive_connections,
                keepalive_expiry=built._keepalive_expiry,
                retries=built._retries,
                local_address=built._local_address,
                uds=built._uds,
                socket_options=built._socket_options,
            )


def async_client(
    *, internal: bool, limits: httpx.Limits | None = None, **kwargs: Any
) -> httpx.AsyncClient:
    """An httpx.AsyncClient on `AsyncioTransport` (unless a `transport` is given, as tests
    do), traced as `telemetry.instrument_http_client` says: `internal` for calls to another
    OpenV service. Other arguments as for httpx.AsyncClient."""
    if kwargs.get("transport") is None:
        kwargs["transport"] = AsyncioTransport(
            limits=limits or httpx.Limits(), trust_env=kwargs.get("trust_env", True)
        )
    client = httpx.AsyncClient(**kwargs)
    telemetry.instrument_http_client(client, internal=internal)
    return client
