"""The services' HTTP transport (openv_infra.http) against a real HTTP/1.1 server on a
socket: keep-alive reuse, a connection the server closed while idle, timeouts, connection
errors, large bodies through the read flow control, and TLS."""

import asyncio
import collections
import contextlib
import inspect
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openv_infra.http import AsyncioBackend, AsyncioTransport, ConnectionPool, async_client

BIG = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """A tiny HTTP/1.1 server: counts connections; paths choose the behaviour."""

    def __init__(self) -> None:
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                if path == "/slow":
                    await asyncio.sleep(5)
                if path == "/pause":
                    await asyncio.sleep(0.2)
                payload = {"/big": BIG, "/echo": body}.get(path, b"hi")
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close_idle(self, stale: bytes = b"") -> None:
        """Close every connection from the server's side (optionally sending bytes first,
        as a server does with a 408 before hanging up)."""
        for writer in self.writers:
            if stale:
                writer.write(stale)
            writer.close()
        self.writers.clear()


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Server]:
    srv = Server()
    srv.server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    try:
        yield srv
    finally:
        srv.server.close()
        srv.close_idle()


#: The services run on uvloop (its transports are not asyncio's classes); tests default to
#: asyncio's own loop. Every scenario runs on both.
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
Scenario = Callable[[], Coroutine[Any, Any, None]]


def on_each_loop(scenario: Callable[..., Coroutine[Any, Any, None]]) -> Any:
    """A test running `scenario` (its arguments: pytest's, e.g. parameters) on each loop."""

    def test(loop: str, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(scenario(**kwargs))

    signature = inspect.signature(scenario)
    loop_parameter = inspect.Parameter("loop", inspect.Parameter.KEYWORD_ONLY, annotation=str)
    test.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), loop_parameter]
    )
    test.__name__ = test.__qualname__ = scenario.__name__
    test.__doc__ = scenario.__doc__
    return pytest.mark.parametrize("loop", list(LOOPS))(test)


def test_the_client_pool_runs_on_the_asyncio_backend() -> None:
    transport = AsyncioTransport()
    assert isinstance(transport._pool, ConnectionPool)
    assert isinstance(transport._pool._backend, AsyncioBackend)
    # With a proxy httpx builds another kind of pool, which stays as it is.
    proxied = AsyncioTransport(proxy="http://127.0.0.1:1")
    assert isinstance(proxied._pool, httpcore.AsyncHTTPProxy)
    assert isinstance(proxied._pool._network_backend, AsyncioBackend)
    client = async_client(internal=False)
    assert isinstance(client._transport, AsyncioTransport)


@on_each_loop
async def test_keep_alive_reuses_one_connection() -> None:
    async with serving() as server, async_client(internal=False, base_url=server.url) as client:
        for _ in range(5):
            response = await client.get("/hello")
            assert response.status_code == 200
            assert response.text == "hi"
        echoed = await client.post("/echo", content=b"x" * 70_000)
        assert echoed.content == b"x" * 70_000
        assert server.connections == 1


@pytest.mark.parametrize("stale", [b"", b"HTTP/1.1 408 Request Timeout\r\n\r\n"])
@on_each_loop
async def test_a_connection_the_server_closed_while_idle_is_not_reused(stale: bytes) -> None:
    async with serving() as server, async_client(internal=False, base_url=server.url) as client:
        assert (await client.get("/hello")).text == "hi"
        server.close_idle(stale)
        await asyncio.sleep(0.05)  # the event loop reads the EOF meanwhile
        response = await client.get("/hello")
        assert response.status_code == 200
        assert response.text == "hi"
        assert server.connections == 2


@on_each_loop
async def test_a_large_body_arrives_whole_through_the_flow_control() -> None:
    async with serving() as server, async_client(internal=False, base_url=server.url) as client:
        async with client.stream("GET", "/big") as response:
            chunks = []
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                await asyncio.sleep(0)  # a slow reader: the buffer fills, reading pauses
        assert b"".join(chunks) == BIG
        assert (await client.get("/hello")).text == "hi"  # the connection is still usable
        assert server.connections == 1


@on_each_loop
async def test_a_read_timeout_is_httpx_read_timeout() -> None:
    async with (
        serving() as server,
        async_client(internal=False, base_url=server.url, timeout=0.2) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")


@on_each_loop
async def test_a_refused_connection_is_httpx_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with async_client(internal=False, timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for `localhost` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@on_each_loop
async def test_https_through_start_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = Server()
    tls = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=server_context)
    port = tls.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context(cafile=str(cert))
    try:
        async with async_client(
            internal=False, transport=AsyncioTransport(verify=client_context), timeout=5
        ) as client:
            response = await client.get(f"https://localhost:{port}/hello")
            assert response.text == "hi"
            assert (await client.get(f"https://localhost:{port}/big")).content == BIG
        with contextlib.suppress(httpx.ConnectError):  # an untrusted certificate: refused
            async with async_client(internal=False, timeout=5) as untrusting:
                await untrusting.get(f"https://localhost:{port}/hello")
            pytest.fail("a certificate no CA vouches for was accepted")
    finally:
        tls.close()
        server.close_idle()


def pool_of(client: httpx.AsyncClient) -> ConnectionPool:
    transport = client._transport
    assert isinstance(transport, AsyncioTransport)
    assert isinstance(transport._pool, ConnectionPool)
    return transport._pool


@on_each_loop
async def test_the_pool_opens_at_most_max_connections_and_queues_the_rest() -> None:
    async with serving() as srv:
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with async_client(internal=False, base_url=srv.url, limits=limits) as client:
            pool = pool_of(client)
            seen: list[int] = []

            async def one() -> int:
                response = await client.get("/pause")
                seen.append(pool.open_connections)
                return response.status_code

            statuses = await asyncio.gather(*(one() for _ in range(6)))
            assert statuses == [200] * 6
            assert srv.connections == 2
            assert max(seen) <= 2
            assert pool.open_connections == 2  # both kept alive


@on_each_loop
async def test_keep_alive_keeps_at_most_max_keepalive_connections() -> None:
    async with serving() as srv:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=1)
        async with async_client(internal=False, base_url=srv.url, limits=limits) as client:
            await asyncio.gather(*(client.get("/pause") for _ in range(4)))
            assert srv.connections == 4
            assert pool_of(client).open_connections == 1
            assert (await client.get("/")).status_code == 200
            assert srv.connections == 4  # the kept one was reused


def single_connection(srv: Server, pool_timeout: float) -> httpx.AsyncClient:
    """A client that may open one connection and waits `pool_timeout` for it when taken."""
    return async_client(
        internal=False,
        base_url=srv.url,
        limits=httpx.Limits(max_connections=1),
        timeout=httpx.Timeout(10.0, pool=pool_timeout),
    )


@on_each_loop
async def test_waiting_longer_than_the_pool_timeout_is_httpx_pool_timeout() -> None:
    async with serving() as srv, single_connection(srv, pool_timeout=0.05) as client:
        busy = asyncio.create_task(client.get("/pause"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/")
        assert (await busy).status_code == 200
        assert (await client.get("/")).status_code == 200  # the slot came back


@on_each_loop
async def test_a_cancelled_request_gives_its_connection_slot_back() -> None:
    async with serving() as srv, single_connection(srv, pool_timeout=1.0) as client:
        stuck = asyncio.create_task(client.get("/slow"))
        waiting = asyncio.create_task(client.get("/"))  # queued behind it
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pool_of(client)._waiters == collections.deque()  # no longer queued
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert (await client.get("/")).status_code == 200
        assert pool_of(client).open_connections == 1


@on_each_loop
async def test_a_response_closed_unread_closes_its_connection() -> None:
    async with serving() as srv, async_client(internal=False, base_url=srv.url) as client:
        async with client.stream("GET", "/big") as response:
            assert response.status_code == 200
            first = await anext(response.aiter_raw())
            assert first
        # Unread bytes left on it: not reusable.
        assert pool_of(client).open_connections == 0
        assert (await client.get("/big")).content == BIG
        assert srv.connections == 2


@on_each_loop
async def test_a_connection_idle_past_keepalive_expiry_is_replaced() -> None:
    async with serving() as srv:
        limits = httpx.Limits(keepalive_expiry=0.05)
        async with async_client(internal=False, base_url=srv.url, limits=limits) as client:
            assert (await client.get("/")).status_code == 200
            await asyncio.sleep(0.15)
            assert (await client.get("/")).status_code == 200
            assert srv.connections == 2
            assert pool_of(client).open_connections == 1
