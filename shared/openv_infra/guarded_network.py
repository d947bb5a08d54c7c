"""Connecting to a URL a user named without letting it reach inside our network.

Every TCP connection an HTTP client makes through `GuardedBackend.connect_tcp` is checked: the
host is resolved once, every address it resolves to must be allowed by the `AddressPolicy`, and
the socket is opened to one of those very addresses (never to the name, which a rebinding DNS
server could answer differently the second time). TLS still verifies the certificate against
the URL's host name (httpcore passes it as the server name). `guarded_client` is the HTTP
client built on it: no redirects followed (each hop is the caller's decision) and no
environment proxies (a proxy would connect on our behalf, past the guard).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from openv_infra.addresses import AddressPolicy, IPAddress
from openv_infra.http import AsyncioBackend, AsyncioTransport, async_client

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address the policy does not allow."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (in the resolver's order, without duplicates)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to checked addresses."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or AsyncioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except (OSError, ValueError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        refused = [address for address in addresses if not self.policy.allows(address)]
        if refused:
            shown = host if host == str(refused[0]) else f"{host} ({refused[0]})"
            raise AddressRefused(f"host {shown} is not a public address")
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_client(
    policy: AddressPolicy,
    *,
    limits: httpx.Limits,
    resolver: Resolver = system_resolver,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An HTTP client for URLs users name: every connection through `GuardedBackend`,
    redirects not followed, environment proxies and CA bundles ignored. Other arguments
    (timeout, headers) as for httpx.AsyncClient."""
    return async_client(
        internal=False,
        transport=AsyncioTransport(
            GuardedBackend(policy, resolver),
            verify=httpx.create_ssl_context(trust_env=False),
            trust_env=False,
            limits=limits,
        ),
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )
