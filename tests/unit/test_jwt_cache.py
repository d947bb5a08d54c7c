"""Verified tokens remembered for their remaining lifetime (issue #23): by the token's hash,
bounded, only valid ones, and a remembered token past its `exp` (+ leeway) refused exactly like
one never seen."""

import asyncio
import hashlib
import time
from typing import Any

import jwt
import pytest

from openv_gateway.adapters.jwt_verifier import InvalidToken, JwtVerifier
from openv_gateway.domain.principal import Principal
from openv_gateway.domain.verified_tokens import VerifiedTokens, token_key
from tests.unit.support import FakeClock

SECRET = "test-secret-test-secret-test-secret-0123"


def token(sub: str = "alice", **claims: object) -> str:
    base: dict[str, object] = {"sub": sub, "aud": "authenticated", "exp": int(time.time()) + 60}
    base.update(claims)
    return jwt.encode(base, SECRET, algorithm="HS256")


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token the verifier actually decodes (signature and claims checked)."""
    seen: list[str] = []
    real = jwt.decode

    def counting(raw: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(raw)
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


async def test_a_verified_token_is_verified_once(decodes: list[str]) -> None:
    verifier = JwtVerifier(SECRET, "authenticated", cache_size=10)
    raw = token(role="admin")
    for _ in range(3):
        assert await verifier.verify_any(raw) == Principal("alice", is_admin=True)
        assert verifier.verify(raw) == Principal("alice", is_admin=True)
    assert decodes == [raw]


async def test_without_a_cache_every_request_verifies(decodes: list[str]) -> None:
    verifier = JwtVerifier(SECRET, "authenticated")
    raw = token()
    await verifier.verify_any(raw)
    await verifier.verify_any(raw)
    assert decodes == [raw, raw]


async def test_the_cache_holds_hashes_never_tokens() -> None:
    verifier = JwtVerifier(SECRET, "authenticated", cache_size=10)
    raw = token()
    await verifier.verify_any(raw)
    keys = list(verifier._verified._entries)
    assert keys == [hashlib.sha256(raw.encode()).digest()]
    assert raw.encode() not in repr(verifier._verified._entries).encode()


async def test_invalid_tokens_are_never_remembered(decodes: list[str]) -> None:
    verifier = JwtVerifier(SECRET, "authenticated", cache_size=10)
    bad = [token(aud="anon"), token(sub="../x"), token(exp=int(time.time()) - 120), "not-a-jwt"]
    for raw in bad * 2:
        with pytest.raises(InvalidToken):
            await verifier.verify_any(raw)
    assert len(verifier._verified) == 0
    assert decodes.count(bad[0]) == 2  # asked twice, decoded twice


async def test_a_remembered_token_past_its_expiry_is_verified_again(decodes: list[str]) -> None:
    clock = FakeClock(time.time())
    verifier = JwtVerifier(SECRET, "authenticated", leeway_s=30, cache_size=10, clock=clock)
    exp = int(clock.now) + 60
    raw = token(exp=exp)
    await verifier.verify_any(raw)
    clock.now = exp + 29.9  # within the leeway: still remembered
    await verifier.verify_any(raw)
    assert decodes == [raw]
    clock.now = exp + 30  # PyJWT refuses from here on: so does the cache
    await verifier.verify_any(raw)  # (PyJWT's own clock is still before exp: accepted)
    assert decodes == [raw, raw]


async def test_an_expired_token_is_refused_like_one_never_seen() -> None:
    """Real time: the remembered token expires, and the answer is the verifier's own refusal."""
    cached = JwtVerifier(SECRET, "authenticated", leeway_s=0, cache_size=10)
    fresh = JwtVerifier(SECRET, "authenticated", leeway_s=0)
    raw = token(exp=int(time.time()) + 1)
    assert (await cached.verify_any(raw)).user_id == "alice"
    exp = jwt.decode(raw, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, exp + 0.05 - time.time()))
    with pytest.raises(InvalidToken) as from_cache:
        await cached.verify_any(raw)
    with pytest.raises(InvalidToken) as never_seen:
        await fresh.verify_any(raw)
    assert str(from_cache.value) == str(never_seen.value) == "Signature has expired"
    assert len(cached._verified) == 0


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = VerifiedTokens(2)
    a, b, c = (token_key(t) for t in ("a", "b", "c"))
    for key in (a, b):
        cache.put(key, Principal("u"), "HS256", 100.0)
    assert cache.get(a, 0.0) is not None  # a is now the most recently used
    cache.put(c, Principal("u"), "HS256", 100.0)
    assert len(cache) == 2
    assert cache.get(b, 0.0) is None
    assert cache.get(a, 0.0) is not None and cache.get(c, 0.0) is not None


def test_a_token_remembered_from_a_jwks_key_is_not_an_hs256_token() -> None:
    """`verify` accepts HS256 only: a token remembered as RS256 is decoded with the secret."""
    verifier = JwtVerifier(SECRET, "authenticated", cache_size=10)
    raw = token()
    verifier._verified.put(token_key(raw), Principal("mallory"), "RS256", time.time() + 60)
    assert verifier.verify(raw) == Principal("alice")
