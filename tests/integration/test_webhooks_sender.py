"""The webhooks service's HTTP sender on real sockets: whatever URL a delivery holds, an attempt
ends in a status or an error text, never an exception (an exception would leave the delivery
claimed until its lease ends, then tried again forever, past its give-up time)."""

import pytest

from openv_infra.addresses import AddressPolicy
from openv_webhooks.adapters.http_sender import HttpSender

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://[::1", "invalid URL"),
        ("http://127.0.0.1:99999/hook", "cannot send"),
        ("http://127.0.0.1:1/hook", "ConnectError"),
        ("http://" + "b" * 300 + ".example/hook", "ConnectError"),
        ("ftp://127.0.0.1/hook", "not allowed"),
    ],
)
async def test_an_unusable_url_is_a_failed_attempt_not_a_crash(url: str, error: str) -> None:
    sender = HttpSender(
        AddressPolicy(allow_private=True), timeout_s=2, allow_http=True, max_connections=2
    )
    try:
        status, text = await sender.post(url, b"{}", {"content-type": "application/json"})
    finally:
        await sender.aclose()
    assert status is None
    assert text is not None and error in text


async def test_a_private_address_is_refused_before_connecting() -> None:
    sender = HttpSender(AddressPolicy(), timeout_s=2, allow_http=True, max_connections=2)
    try:
        status, text = await sender.post("http://127.0.0.1:1/hook", b"{}", {})
    finally:
        await sender.aclose()
    assert status is None and text is not None and text.startswith("refused:")
