"""httpcore's network layer on plain asyncio sockets: `AsyncioBackend` and its streams.

httpx's default network layer is anyio's, and before every request (and after every response)
httpcore asks each pooled connection whether the server closed it, which the anyio layer
answers with a `select` system call per connection. Under create load that check and anyio's
wrappers were a fifth of the RunPod bridge's CPU. Here an asyncio protocol keeps each
connection's received bytes and EOF (the event loop reads every open socket anyway), so the
check is an attribute read. HTTP/1.1 itself, connecting, TLS, timeouts and errors remain
httpcore's own.
"""

# The `timeout` parameters below are httpcore's network-stream interface.
# ruff: noqa: ASYNC109

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import httpcore

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
