"""Which webhook URLs a create may name: the form of the URL and, for a host that is an address
or a name that resolves, whether the address may be reached (the SSRF rules). Pure: the caller
resolves names and passes the address policy's `allows` in.

The rules are checked at the door so a client hears of a mistake at once; the webhooks service
checks every address again when it connects (a name may resolve elsewhere later).
"""

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from openv_contracts.webhooks import ALL_EVENTS, WebhookEvent

MAX_URL_LENGTH: Final = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Allows = Callable[[IPAddress], bool]


class WebhookRefused(Exception):
    """The webhook cannot be used; `field` names the request field, `str()` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class WebhookHost:
    """Where the URL points: `name` to resolve (None when the host is an address)."""

    name: str | None
    port: int


def _refused(reason: str) -> WebhookRefused:
    return WebhookRefused("webhook", reason)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_localhost(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def check_url(url: str, allow_http: bool, allows: Allows) -> WebhookHost:
    """The URL's host to resolve, when the URL's form and any literal address are acceptable;
    WebhookRefused otherwise. `localhost` names count as loopback (`127.0.0.1`)."""
    if len(url) > MAX_URL_LENGTH:
        raise _refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _refused("the URL may hold printable ASCII only (percent-encode the rest)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refused("the URL is not valid (check the host and port)") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_http and scheme == "http"):
        allowed = "https or http" if allow_http else "https"
        raise _refused(f"the URL's scheme must be {allowed}, not {scheme or '(none)'!r}")
    if not parts.hostname:
        raise _refused("the URL has no host")
    if "@" in parts.netloc:
        raise _refused("the URL may not hold a user name or password")
    if "#" in url:
        raise _refused("the URL may not hold a fragment (#...)")
    if port == 0:
        raise _refused("the URL's port must be 1-65535")
    port = port or (443 if scheme == "https" else 80)
    host = parts.hostname
    literal = _literal(host)
    if literal is None and is_localhost(host):
        literal = ipaddress.IPv4Address("127.0.0.1")
    if literal is not None:
        if not allows(literal):
            raise _refused(f"the host {host} is not a public address")
        return WebhookHost(None, port)
    return WebhookHost(host, port)


def check_addresses(host: str, addresses: Iterable[IPAddress], allows: Allows) -> None:
    """WebhookRefused when any address `host` resolves to is not allowed."""
    for address in addresses:
        if not allows(address):
            raise _refused(f"the host {host} resolves to {address}, not a public address")


def check_events(events: Sequence[str] | None, webhook: str | None) -> frozenset[WebhookEvent]:
    """The events to send (all when none are named); a filter without a webhook is refused."""
    if events is None:
        return ALL_EVENTS
    if webhook is None:
        raise WebhookRefused("webhook_events_filter", "a filter needs a `webhook` to send to")
    return frozenset(WebhookEvent(event) for event in events)
