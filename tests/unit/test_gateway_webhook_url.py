"""The webhook a create may name (domain/webhook_url.py, service_layer/webhook_targets.py,
adapters/host_resolver.py): the URL's form, literal addresses and `localhost` names, and the
addresses a name resolves to at create; a name that does not resolve (in time) is accepted."""

import asyncio
import ipaddress

import pytest

from openv_contracts.webhooks import ALL_EVENTS, WebhookEvent, WebhookTarget
from openv_gateway.adapters.host_resolver import HostResolver
from openv_gateway.domain.webhook_url import (
    IPAddress,
    WebhookHost,
    WebhookRefused,
    check_url,
)
from openv_gateway.service_layer.webhook_targets import WebhookTargets
from openv_infra.addresses import AddressPolicy

STRICT = AddressPolicy().allows
LOCAL = AddressPolicy(allow_private=True).allows


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "scheme must be https"),
        ("ftp://example.com/hook", "scheme must be https"),
        ("example.com/hook", "scheme must be https"),
        ("https:///hook", "no host"),
        ("https://user:pw@example.com/hook", "user name or password"),
        ("https://user@example.com/hook", "user name or password"),
        ("https://example.com/hook#frag", "fragment"),
        ("https://example.com:99999/hook", "not valid"),
        ("https://example.com:0/hook", "port must be"),
        ("https://example.com:abc/hook", "not valid"),
        ("https://exa mple.com/hook", "printable ASCII"),
        ("https://exämple.com/hook", "printable ASCII"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://10.1.2.3/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://[::ffff:127.0.0.1]/hook", "not a public address"),
        ("https://[fd00:ec2::254]/hook", "not a public address"),
        ("https://localhost/hook", "not a public address"),
        ("https://api.LOCALHOST./hook", "not a public address"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_unusable_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(WebhookRefused, match=reason) as refused:
        check_url(url, allow_http=False, allows=STRICT)
    assert refused.value.field == "webhook"


def test_a_public_url_names_the_host_to_resolve_and_its_port() -> None:
    assert check_url("https://hooks.example.com/x?y=1", False, STRICT) == WebhookHost(
        "hooks.example.com", 443
    )
    assert check_url("https://8.8.8.8:8443/x", False, STRICT) == WebhookHost(None, 8443)


def test_local_mode_allows_http_and_private_hosts() -> None:
    assert check_url("http://127.0.0.1:9000/hook", True, LOCAL) == WebhookHost(None, 9000)
    assert check_url("http://localhost/hook", True, LOCAL) == WebhookHost(None, 80)
    with pytest.raises(WebhookRefused, match="not a public address"):
        check_url("http://127.0.0.1:9000/hook", True, STRICT)  # http alone is not enough


def test_allowed_networks_open_just_those_ranges() -> None:
    allows = AddressPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),)).allows
    assert check_url("https://10.20.1.1/hook", False, allows).name is None
    with pytest.raises(WebhookRefused):
        check_url("https://10.21.1.1/hook", False, allows)


class FakeResolver:
    def __init__(self, answer: list[IPAddress] | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, int]] = []

    async def addresses(self, host: str, port: int) -> list[IPAddress] | None:
        self.asked.append((host, port))
        return self.answer


def _ips(*texts: str) -> list[IPAddress]:
    return [ipaddress.ip_address(t) for t in texts]


async def test_a_name_resolving_to_any_private_address_is_refused() -> None:
    resolver = FakeResolver(_ips("93.184.216.34", "10.0.0.5"))
    targets = WebhookTargets(resolver, STRICT, allow_http=False)
    with pytest.raises(WebhookRefused, match=r"resolves to 10\.0\.0\.5"):
        await targets.target("https://rebind.example.com/hook", None)
    assert resolver.asked == [("rebind.example.com", 443)]


async def test_a_public_name_or_one_that_does_not_resolve_is_accepted() -> None:
    public = WebhookTargets(FakeResolver(_ips("93.184.216.34")), STRICT, allow_http=False)
    target = await public.target("https://hooks.example.com/h", ["completed", "queued"])
    assert target == WebhookTarget(
        url="https://hooks.example.com/h",
        events=frozenset({WebhookEvent.COMPLETED, WebhookEvent.QUEUED}),
    )
    unknown = WebhookTargets(FakeResolver(None), STRICT, allow_http=False)
    accepted = await unknown.target("https://not-yet.example.com/h", None)
    assert accepted is not None and accepted.events == ALL_EVENTS


async def test_no_webhook_is_none_and_a_filter_without_one_is_refused() -> None:
    targets = WebhookTargets(FakeResolver(None), STRICT, allow_http=False)
    assert await targets.target(None, None) is None
    with pytest.raises(WebhookRefused) as refused:
        await targets.target(None, ["queued"])
    assert refused.value.field == "webhook_events_filter"


async def test_the_resolver_gives_up_quietly_on_failure_and_timeout() -> None:
    async def slow(host: str, port: int) -> list[IPAddress]:
        await asyncio.sleep(10)
        return []

    async def broken(host: str, port: int) -> list[IPAddress]:
        raise OSError("Name or service not known")

    assert await HostResolver(slow, timeout_s=0.05).addresses("x.example", 443) is None
    assert await HostResolver(broken).addresses("x.example", 443) is None
    assert await HostResolver().addresses("127.0.0.1", 80) == _ips("127.0.0.1")
