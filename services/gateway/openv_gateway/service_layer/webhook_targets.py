"""The webhook a create names, checked: the URL's form and literal address (domain rules),
then, for a host name, the addresses it resolves to now. A name that cannot be resolved now is
accepted: the webhooks service checks the addresses again at every connection."""

from collections.abc import Sequence

from openv_contracts.webhooks import WebhookTarget
from openv_gateway.domain.webhook_url import Allows, check_addresses, check_events, check_url
from openv_gateway.service_layer.ports import HostResolver


class WebhookTargets:
    def __init__(self, resolver: HostResolver, allows: Allows, allow_http: bool) -> None:
        self.resolver = resolver
        self.allows = allows
        self.allow_http = allow_http

    async def target(self, url: str | None, events: Sequence[str] | None) -> WebhookTarget | None:
        """The request's webhook (None when it names none); `WebhookRefused` when unusable."""
        chosen = check_events(events, url)
        if url is None:
            return None
        host = check_url(url, self.allow_http, self.allows)
        if host.name is not None:
            addresses = await self.resolver.addresses(host.name, host.port)
            check_addresses(host.name, addresses or [], self.allows)
        return WebhookTarget(url=url, events=chosen)
