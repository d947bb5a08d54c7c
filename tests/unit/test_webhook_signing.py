"""OpenV's webhook signatures are Standard Webhooks: the reference implementation
(`standardwebhooks` from PyPI, what client apps are told to use) accepts every one, with the
current secret and, during a rotation, with the one rotated out; and refuses any change."""

import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from openv_infra.webhook_signing import InvalidSecret, new_secret, signed_headers

BODY = json.dumps({"type": "video.completed", "data": {"id": "v", "status": "completed"}}).encode()


def test_the_reference_implementation_accepts_a_delivery() -> None:
    secret = new_secret()
    headers = signed_headers([secret], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_during_a_rotation_either_secret_verifies() -> None:
    current, previous = new_secret(), new_secret()
    headers = signed_headers([current, previous], "msg_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (current, previous):
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)  # a third party's secret


@pytest.mark.parametrize("change", ["body", "id", "timestamp"])
def test_any_change_breaks_the_signature(change: str) -> None:
    secret = new_secret()
    now = int(time.time())
    headers = signed_headers([secret], "msg_1", now, BODY)
    body = BODY
    if change == "body":
        body = BODY.replace(b"completed", b"cancelled")
    elif change == "id":
        headers["webhook-id"] = "msg_2"
    else:
        headers["webhook-timestamp"] = str(now - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_a_stale_attempt_is_refused_by_the_receiver() -> None:
    """Each attempt is signed with its own time: a replay of an old one is refused."""
    secret = new_secret()
    headers = signed_headers([secret], "msg_1", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_not base64!", "sk_abc"])
def test_a_malformed_secret_is_refused(bad: str) -> None:
    with pytest.raises(InvalidSecret):
        signed_headers([bad], "msg_1", 0, BODY)


def test_new_secrets_differ_and_have_the_prefix() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_") and len(first) > 40
