"""DNS lookups of webhook hosts at create (`service_layer.ports.HostResolver`), bounded by a
short timeout: a name that does not resolve in time is not refused (the webhooks service
checks the addresses again on every connection), only one that resolves to a refused address."""

import asyncio

from openv_infra.addresses import IPAddress
from openv_infra.guarded_network import Resolver, system_resolver

#: The longest a create waits for a webhook host's addresses.
TIMEOUT_S = 2.0


class HostResolver:
    def __init__(self, resolver: Resolver = system_resolver, timeout_s: float = TIMEOUT_S) -> None:
        self.resolver = resolver
        self.timeout_s = timeout_s

    async def addresses(self, host: str, port: int) -> list[IPAddress] | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.resolver(host, port)
        except (TimeoutError, OSError, ValueError, UnicodeError):
            return None
