"""The services' httpx client: `AsyncioTransport` (httpx's transport on `ConnectionPool` over
`AsyncioBackend`) and `async_client`, which every service's outgoing HTTP goes through."""

from typing import Any

import httpcore
import httpx

from openv_infra import telemetry
from openv_infra.http.network import AsyncioBackend
from openv_infra.http.pool import ConnectionPool


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
