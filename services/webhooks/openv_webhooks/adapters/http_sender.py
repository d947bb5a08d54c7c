"""Posting a webhook to a receiver without letting its URL reach inside our network.

Every connection goes through the shared guard (`openv_infra.guarded_network`: resolved once,
every address checked against the policy, the socket opened to a checked address). No
redirects (a 3xx is a failed attempt), no environment proxies (a proxy would connect past the
guard), http only when allowed, one timeout for the whole attempt, and the answer's body read
no further than a few KB."""

import asyncio
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import httpx

from openv_infra.addresses import AddressPolicy
from openv_infra.guarded_network import AddressRefused, Resolver, guarded_client, system_resolver

#: Bytes of an answer read at most (its body is not used; reading a little lets the
#: connection be reused).
ANSWER_MAX_BYTES: Final = 4096


class HttpSender:
    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout_s: float,
        allow_http: bool,
        max_connections: int,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.timeout_s = timeout_s
        self.allow_http = allow_http
        self._client = guarded_client(
            policy,
            resolver=resolver,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=httpx.Timeout(timeout_s),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str | None]:
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            return None, f"cannot send: invalid URL: {exc}"
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            return None, f"{scheme or 'a URL without a scheme'} is not allowed (https only)"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._client.stream(
                    "POST", url, content=body, headers=dict(headers)
                ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= ANSWER_MAX_BYTES:
                            break
                    return response.status_code, None
        except TimeoutError:
            return None, f"no answer within {self.timeout_s:g} s"
        except AddressRefused as exc:
            return None, f"refused: {exc}"
        except httpx.TimeoutException:
            return None, f"no answer within {self.timeout_s:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except (httpx.InvalidURL, ValueError, OverflowError, OSError) as exc:
            # A URL httpx cannot use, or a socket error outside httpx's own: a failed attempt
            # like any other (so the give-up applies), never a crash retried forever.
            return None, f"cannot send: {type(exc).__name__}: {exc}"
