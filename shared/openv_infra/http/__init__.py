"""The services' HTTP client transport: httpx over plain asyncio sockets (`network`), with a
connection pool whose bookkeeping does not grow with its size (`pool`), put together as an
httpx transport and client (`client`). Services import `async_client` from here."""

from openv_infra.http.client import AsyncioTransport, async_client
from openv_infra.http.network import AsyncioBackend
from openv_infra.http.pool import ConnectionPool

__all__ = ["AsyncioBackend", "AsyncioTransport", "ConnectionPool", "async_client"]
