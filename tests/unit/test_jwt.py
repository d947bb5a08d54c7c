"""Supabase-compatible token checks of the gateway."""

import base64
import json
import time

import jwt
import pytest

from openv_gateway.adapters.jwt_verifier import InvalidToken, JwtVerifier

SECRET = "test-secret-test-secret-test-secret-0123"
verifier = JwtVerifier(SECRET, "authenticated")


def token(**claims: object) -> str:
    base: dict[str, object] = {"sub": "alice", "aud": "authenticated", "exp": time.time() + 60}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


def test_valid_token_gives_the_user_and_role() -> None:
    assert verifier.verify(token()).user_id == "alice"
    assert not verifier.verify(token()).is_admin
    assert verifier.verify(token(role="admin")).is_admin


@pytest.mark.parametrize(
    "bad",
    [
        token(exp=time.time() - 10),
        token(aud="anon"),
        token(sub=None),
        token(exp=None),
        token(sub="../etc"),
        token(sub="a/b"),
        jwt.encode(
            {"sub": "alice", "aud": "authenticated", "exp": time.time() + 60},
            "wrong-secret-wrong-secret-wrong-secret",
        ),
        "not-a-jwt",
    ],
)
def test_invalid_tokens_are_refused(bad: str) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(bad)


def test_alg_none_is_refused() -> None:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    unsigned = (
        f"{b64({'alg': 'none', 'typ': 'JWT'})}."
        f"{b64({'sub': 'alice', 'aud': 'authenticated', 'exp': time.time() + 60})}."
    )
    with pytest.raises(InvalidToken):
        verifier.verify(unsigned)
