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
        token(exp=time.time() - 60),  # beyond the 30 s leeway
        token(aud="anon"),
        token(sub=None),
        token(exp=None),
        token(sub="../etc"),
        token(sub="a/b"),
        # A user id is a path segment of keys and internal URLs: none of these can be one.
        token(sub="."),
        token(sub=".."),
        token(sub="..."),
        token(sub=""),
        token(sub="a%2Fb"),
        token(sub="%2E%2E"),
        token(sub="a\x00b"),
        token(sub="a\nb"),
        token(sub="a\u0085b"),
        token(sub="a b"),
        token(sub="x" * 129),
        token(sub=123),
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


ISSUER = "https://abcdefgh.supabase.co/auth/v1"


def test_the_issuer_is_checked_when_configured() -> None:
    checked = JwtVerifier(SECRET, "authenticated", issuer=ISSUER)
    assert checked.verify(token(iss=ISSUER)).user_id == "alice"
    for bad in [token(), token(iss="https://other.supabase.co/auth/v1"), token(iss="")]:
        with pytest.raises(InvalidToken):
            checked.verify(bad)
    # Unset: any issuer, or none, as before.
    assert verifier.verify(token(iss="https://other.supabase.co/auth/v1")).user_id == "alice"


def test_anonymous_users_are_refused_unless_allowed() -> None:
    anonymous = token(is_anonymous=True, sub="d0c5e6f1-0000-4000-8000-000000000001")
    with pytest.raises(InvalidToken, match="anonymous"):
        verifier.verify(anonymous)
    assert verifier.verify(token(is_anonymous=False)).user_id == "alice"
    allowing = JwtVerifier(SECRET, "authenticated", allow_anonymous=True)
    assert allowing.verify(anonymous).user_id.startswith("d0c5e6f1")


def test_clocks_may_differ_by_the_leeway() -> None:
    now = time.time()
    # Issued by a clock 2 s ahead of ours, or expired a moment ago by ours: accepted.
    assert verifier.verify(token(iat=int(now) + 2)).user_id == "alice"
    assert verifier.verify(token(nbf=int(now) + 2)).user_id == "alice"
    assert verifier.verify(token(exp=now - 10)).user_id == "alice"
    for bad in [token(iat=int(now) + 60), token(exp=now - 31)]:
        with pytest.raises(InvalidToken):
            verifier.verify(bad)
    strict = JwtVerifier(SECRET, "authenticated", leeway_s=0)
    for bad in [token(iat=int(now) + 2), token(exp=now - 1)]:
        with pytest.raises(InvalidToken):
            strict.verify(bad)
