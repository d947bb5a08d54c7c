"""A fuzz pass over every door of the live stack: the gateway's public API and the bridge's
RunPod webhook get generated methods, paths, query strings, headers, tokens and bodies with
arbitrary Unicode. No answer is a 5xx (the gateway answers an unforeseen exception with 503,
so that counts too), and afterwards every other user's create is still decided at once.

Hypothesis runs derandomized, so a failure is reproduced by running the test again.
"""

import json
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import LOCAL_JWT_SECRET, make_token
from tests.e2e.support import SMALL

pytestmark = pytest.mark.e2e

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Any Unicode, surrogates included (they reach JSON as "\ud800" escapes).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)
create_fields = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.one_of(any_text, json_value),
        "negative_prompt": st.one_of(any_text, json_value),
        "width": st.one_of(st.sampled_from([384, 848, 400, 0, -16]), json_value),
        "height": st.one_of(st.sampled_from([384, 480, 10**9]), json_value),
        "num_frames": st.one_of(st.sampled_from([7, 13, 127, 8]), json_value),
        "seed": st.one_of(st.integers(), json_value),
        "steps": json_value,
        "cfg": json_value,
        "extra": json_value,
    },
)


def _encoded(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


bodies = st.one_of(
    create_fields.map(_encoded),
    json_value.map(_encoded),
    st.binary(max_size=300),
    # Deep nesting, in both kinds of bracket.
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=5000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)


def _segment(text: str) -> str:
    """Arbitrary text as one percent-encoded path segment or query value (surrogates too)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="") or "x"


def _query(values: dict[str, str]) -> str:
    return "&".join(f"{_segment(name)}={_segment(value)}" for name, value in values.items())


def _signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, LOCAL_JWT_SECRET, algorithm="HS256")


def _forged(sub: Any, extra: dict[str, Any]) -> str:
    """A token signed with the stack's secret whose claims are anything: what a leaked or
    misissued token could hold. (PyJWT itself refuses some shapes, e.g. a non-string `iss`:
    those claims are left out.)"""
    now = int(time.time())
    claims = {"sub": sub, "aud": "authenticated", "iat": now, "exp": now + 600, **extra}
    try:
        return _signed(claims)
    except (TypeError, ValueError):
        return _signed({"sub": sub, "aud": "authenticated", "exp": now + 600})


# Valid tokens of fresh users (each example its own user, so the per-user rate limit does
# not turn the run into 429s), and anything else a client could send as a token.
valid_tokens = st.uuids().map(lambda u: make_token(f"fuzz-{u}"))
tokens = st.one_of(
    valid_tokens,
    valid_tokens,
    any_text,
    st.builds(
        _forged,
        st.one_of(any_text, st.sampled_from([".", "..", "a/b", "%2e%2e", ""]), json_value),
        st.dictionaries(
            st.sampled_from(["role", "is_anonymous", "iss", "nbf", "exp", "iat", "aud"]),
            json_value,
            max_size=3,
        ),
    ),
)
bearer = tokens.map(lambda t: f"Bearer {t}")
#: Most requests carry a valid token, so the run gets past authentication to the parameters.
authorizations = st.one_of(
    valid_tokens.map(lambda t: f"Bearer {t}"),
    valid_tokens.map(lambda t: f"Bearer {t}"),
    st.none(),
    bearer,
    any_text,
)
paths = st.one_of(
    st.just("/v1/videos"),
    st.just("/v1/usage"),
    st.builds(
        lambda vid, tail: f"/v1/videos/{vid}{tail}",
        st.one_of(
            st.uuids().map(str),
            any_text.map(_segment),
            st.sampled_from(["..", "%2e%2e", "a%00b", "%ff", "%"]),
        ),
        st.sampled_from(["", "/events", "/stream", "/cancel"]),
    ),
)
queries = st.dictionaries(
    st.sampled_from(["limit", "cursor", "status", "wait", "order", "x"]),
    st.one_of(any_text, st.integers().map(str)),
    max_size=3,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Idempotency-Key": any_text,
        "Prefer": st.one_of(any_text, st.sampled_from(["wait=0", "wait=1", "wait=-1"])),
        "Last-Event-ID": any_text,
        "Content-Type": st.sampled_from(["application/json", "text/plain", "", "a/b; c=\u00e9"]),
    },
)


#: Bytes no HTTP client sends in a header value (h11 refuses them): controls but tab, DEL.
_UNSENDABLE = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])


def _header(value: str) -> bytes:
    """A header value as a client can send it: any other bytes, UTF-8 or not."""
    raw = value.encode("utf-8", "surrogatepass")[:300]
    return raw.translate(None, _UNSENDABLE).strip(b" \t")


def _decided_creates(api: httpx.Client) -> list[tuple[str, float]]:
    answers = []
    for n in range(3):
        token = make_token(f"after-fuzz-{n}-{uuid.uuid4()}")
        started = time.monotonic()
        created = api.post(
            "/v1/videos",
            json={"prompt": "a calm lake", **SMALL},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 202, created.text
        answers.append((created.json()["status"], time.monotonic() - started))
    return answers


def test_no_request_to_the_gateway_gets_a_5xx(api: httpx.Client) -> None:
    seen: dict[int, int] = {}

    @FUZZ
    @given(
        method=st.sampled_from(["GET", "GET", "POST", "POST", "DELETE", "PUT", "PATCH"]),
        path=paths,
        query=queries,
        header_values=headers,
        authorization=authorizations,
        body=st.one_of(st.none(), bodies),
    )
    def probe(
        method: str,
        path: str,
        query: dict[str, str],
        header_values: dict[str, str],
        authorization: str | None,
        body: bytes | None,
    ) -> None:
        sent = [(name.encode(), _header(value)) for name, value in header_values.items()]
        if authorization is not None:
            sent.append((b"Authorization", _header(authorization)))
        url = f"{path}?{_query(query)}" if query else path
        try:
            response = api.request(method, url, headers=sent, content=body, timeout=10.0)
        except httpx.RemoteProtocolError:
            return  # the server closed a request it refused to read (e.g. 413): not a 5xx
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (method, path, query, response.text[:500])

    probe()
    # The run reached past the door: refusals of each kind, and accepted requests.
    assert {401, 404, 422} <= set(seen), seen
    assert any(200 <= status < 300 for status in seen), seen
    answers = _decided_creates(api)
    assert [status for status, _ in answers] == ["queued"] * 3, answers
    assert all(elapsed < 1.0 for _, elapsed in answers), answers


def test_no_request_to_the_webhook_gets_a_5xx(stack: LocalStack, api: httpx.Client) -> None:
    bridge = stack.url_of("runpod-bridge")
    seen: dict[int, int] = {}

    @FUZZ
    @given(
        video=st.one_of(st.uuids().map(str), any_text.map(_segment)),
        token=st.one_of(any_text, st.text(max_size=200)),
        body=st.one_of(
            bodies,
            st.fixed_dictionaries(
                {},
                optional={
                    "id": st.one_of(
                        any_text, st.sampled_from(["../purge-queue", "a/b", "ok-u1"]), json_value
                    ),
                    "status": st.one_of(
                        st.sampled_from(["COMPLETED", "FAILED", "IN_PROGRESS", "TIMED_OUT"]),
                        json_value,
                    ),
                    "output": json_value,
                    "error": json_value,
                },
            ).map(_encoded),
        ),
    )
    def probe(video: str, token: str, body: bytes) -> None:
        response = client.post(f"/webhooks/runpod/{video}?token={_segment(token)}", content=body)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (video, token, body[:200], response.text[:300])

    # One client for every example (a new one costs ~40 ms: 250 examples, ~10 s).
    with httpx.Client(base_url=bridge, timeout=10.0) as client:
        probe()
    assert 404 in seen, seen  # a token never matches by chance: the door holds
    answers = _decided_creates(api)
    assert [status for status, _ in answers] == ["queued"] * 3, answers
