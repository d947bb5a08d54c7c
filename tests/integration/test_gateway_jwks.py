"""RS256/ES256 tokens checked against keys from a real JWKS endpoint (a local HTTP server)."""

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from openv_gateway.adapters.jwks import JwksKeys
from openv_gateway.adapters.jwt_verifier import InvalidToken, JwtVerifier

pytestmark = pytest.mark.integration

AUD = "authenticated"
HS_SECRET = "hs-secret-hs-secret-hs-secret-0123456789"


class KeyServer:
    """Serves `keys` as a JWKS document at /jwks.json and counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        self.fail = False
        #: Set: every request hangs until it is cleared (or the server closes).
        self.hang = threading.Event()
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                if server.hang.is_set():
                    server.closing.wait(30)
                    return
                if server.fail or self.path != "/jwks.json":
                    self.send_response(500 if server.fail else 404)
                    self.end_headers()
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "KeyServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwk(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        entry = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        alg = "RS256"
    else:
        entry = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        alg = "ES256"
    return {**entry, "kid": kid, "alg": alg, "use": "sig"}


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"sub": "alice", "aud": AUD, "exp": int(time.time()) + 60}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(private: Any, kid: str | None, alg: str, **changes: object) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**changes), private, algorithm=alg, headers=headers)


@pytest.fixture
def server() -> Iterator[KeyServer]:
    with KeyServer() as srv:
        yield srv


async def test_rs256_and_es256_tokens_verify_with_cached_keys(server: KeyServer) -> None:
    rsa_private, ec_private = rsa_key(), ec_key()
    server.keys = [jwk(rsa_private, "r1"), jwk(ec_private, "e1")]
    keys = JwksKeys(server.url, cache_s=600, min_refresh_s=0)
    verifier = JwtVerifier(HS_SECRET, AUD, keys)
    try:
        rs = await verifier.verify_any(sign(rsa_private, "r1", "RS256", role="admin"))
        assert rs.user_id == "alice" and rs.is_admin
        es = await verifier.verify_any(sign(ec_private, "e1", "ES256", sub="bob"))
        assert es.user_id == "bob" and not es.is_admin
        for _ in range(5):
            await verifier.verify_any(sign(rsa_private, "r1", "RS256"))
        assert server.hits == 1  # cached
        # HS256 with the shared secret still works beside the JWKS.
        hs = jwt.encode(claims(sub="carol"), HS_SECRET, algorithm="HS256")
        assert (await verifier.verify_any(hs)).user_id == "carol"
    finally:
        await keys.aclose()


async def test_an_unknown_kid_refreshes_the_keys_once(server: KeyServer) -> None:
    old, new = rsa_key(), rsa_key()
    server.keys = [jwk(old, "old")]
    keys = JwksKeys(server.url, cache_s=600, min_refresh_s=0)
    verifier = JwtVerifier("", AUD, keys)
    try:
        await verifier.verify_any(sign(old, "old", "RS256"))
        server.keys = [jwk(old, "old"), jwk(new, "new")]  # rotation
        assert (await verifier.verify_any(sign(new, "new", "RS256"))).user_id == "alice"
        assert server.hits == 2
        with pytest.raises(InvalidToken):
            await verifier.verify_any(sign(new, "never-published", "RS256"))
        assert server.hits == 3
    finally:
        await keys.aclose()


async def test_unknown_kids_cannot_make_the_gateway_hammer_the_jwks(server: KeyServer) -> None:
    private = rsa_key()
    server.keys = [jwk(private, "k")]
    keys = JwksKeys(server.url, cache_s=600, min_refresh_s=60)
    verifier = JwtVerifier("", AUD, keys)
    try:
        await verifier.verify_any(sign(private, "k", "RS256"))
        for i in range(10):
            with pytest.raises(InvalidToken):
                await verifier.verify_any(sign(private, f"made-up-{i}", "RS256"))
        assert server.hits == 1
    finally:
        await keys.aclose()


async def test_expired_keys_are_fetched_again_and_an_outage_keeps_the_old_ones(
    server: KeyServer,
) -> None:
    private = rsa_key()
    server.keys = [jwk(private, "k")]
    keys = JwksKeys(server.url, cache_s=0.05, min_refresh_s=0)
    verifier = JwtVerifier("", AUD, keys)
    try:
        await verifier.verify_any(sign(private, "k", "RS256"))
        await asyncio.sleep(0.1)  # let the cached keys expire
        server.fail = True
        assert (await verifier.verify_any(sign(private, "k", "RS256"))).user_id == "alice"
        assert server.hits == 2
    finally:
        await keys.aclose()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_bad_asymmetric_tokens_are_refused(server: KeyServer) -> None:
    private, stranger = rsa_key(), rsa_key()
    server.keys = [jwk(private, "k"), jwk(ec_key(), "e")]
    keys = JwksKeys(server.url, cache_s=600, min_refresh_s=0)
    verifier = JwtVerifier(HS_SECRET, AUD, keys)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k"}).encode())
    payload = b64(json.dumps(claims()).encode())
    confused_sig = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    unsigned = (
        f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
        f"{b64(json.dumps(claims()).encode())}."
    )
    bad = {
        "wrong signature": sign(stranger, "k", "RS256"),
        "expired": sign(private, "k", "RS256", exp=int(time.time()) - 60),
        "wrong audience": sign(private, "k", "RS256", aud="anon"),
        "missing sub": sign(private, "k", "RS256", sub=None),
        "missing exp": sign(private, "k", "RS256", exp=None),
        "alg none": unsigned,
        "HS256 signed with the public key": f"{header}.{payload}.{b64(confused_sig)}",
        "RS256 token naming the EC key": sign(private, "e", "RS256"),
        "RS384 (not accepted)": sign(private, "k", "RS384"),
    }
    try:
        for name, token in bad.items():
            with pytest.raises(InvalidToken):
                await verifier.verify_any(token)
                pytest.fail(f"accepted: {name}")
    finally:
        await keys.aclose()


async def test_an_unreachable_jwks_refuses_tokens_instead_of_failing(server: KeyServer) -> None:
    server.fail = True
    keys = JwksKeys(server.url, cache_s=600, min_refresh_s=0)
    verifier = JwtVerifier("", AUD, keys)
    try:
        with pytest.raises(InvalidToken):
            await verifier.verify_any(sign(rsa_key(), "k", "RS256"))
        # With JWKS only (no secret), HS256 tokens are not accepted at all.
        with pytest.raises(InvalidToken):
            await verifier.verify_any(jwt.encode(claims(), HS_SECRET, algorithm="HS256"))
    finally:
        await keys.aclose()


async def test_a_hanging_jwks_costs_one_fetch_and_no_request_waits_longer(
    server: KeyServer,
) -> None:
    """10 requests at once while the JWKS endpoint hangs: one fetch, all answered within
    about one fetch timeout (one after the other, the 10th used to wait 10 timeouts)."""
    server.hang.set()
    timeout_s = 0.5
    keys = JwksKeys(server.url, cache_s=600, min_refresh_s=30, timeout_s=timeout_s)
    verifier = JwtVerifier("", AUD, keys)
    private = rsa_key()

    async def attempt() -> float:
        with pytest.raises(InvalidToken):
            await verifier.verify_any(sign(private, "k", "RS256"))
        return time.monotonic() - started

    try:
        started = time.monotonic()
        waited = await asyncio.gather(*(attempt() for _ in range(10)))
        assert max(waited) < timeout_s * 1.8, waited
        assert server.hits == 1 and keys.fetches == 1
        # And the failed fetch counts for the refresh limit: no new fetch for the next ones.
        started = time.monotonic()
        await attempt()
        assert time.monotonic() - started < 0.2
        assert server.hits == 1
    finally:
        await keys.aclose()


async def test_after_a_failed_fetch_requests_do_not_refetch_before_the_limit(
    server: KeyServer,
) -> None:
    server.fail = True
    keys = JwksKeys(server.url, cache_s=600, min_refresh_s=60)
    verifier = JwtVerifier("", AUD, keys)
    private = rsa_key()
    try:
        for _ in range(5):
            with pytest.raises(InvalidToken):
                await verifier.verify_any(sign(private, "k", "RS256"))
        assert server.hits == 1
    finally:
        await keys.aclose()


async def test_stale_keys_serve_during_an_outage_and_the_limit_holds(server: KeyServer) -> None:
    """Cached keys expire while the JWKS fails: they stay in use, and neither valid tokens
    nor tokens with made-up key ids refetch before the limit."""
    private = rsa_key()
    server.keys = [jwk(private, "k")]
    keys = JwksKeys(server.url, cache_s=0.05, min_refresh_s=1.0)
    verifier = JwtVerifier("", AUD, keys)
    try:
        await verifier.verify_any(sign(private, "k", "RS256"))
        await asyncio.sleep(1.1)  # expired, and the limit allows a fetch
        server.fail = True
        for i in range(5):
            assert (await verifier.verify_any(sign(private, "k", "RS256"))).user_id == "alice"
            with pytest.raises(InvalidToken):
                await verifier.verify_any(sign(private, f"made-up-{i}", "RS256"))
        assert server.hits == 2  # the first refresh, which failed; none after it
    finally:
        await keys.aclose()


async def test_concurrent_requests_share_one_refresh_of_expired_keys(server: KeyServer) -> None:
    old, new = rsa_key(), rsa_key()
    server.keys = [jwk(old, "old")]
    keys = JwksKeys(server.url, cache_s=0.05, min_refresh_s=0)
    verifier = JwtVerifier("", AUD, keys)
    try:
        await verifier.verify_any(sign(old, "old", "RS256"))
        await asyncio.sleep(0.1)
        server.keys = [jwk(old, "old"), jwk(new, "new")]
        tokens = [sign(new, "new", "RS256"), sign(old, "old", "RS256")] * 5
        principals = await asyncio.gather(*(verifier.verify_any(t) for t in tokens))
        assert {p.user_id for p in principals} == {"alice"}
        assert server.hits == 2
    finally:
        await keys.aclose()


async def test_verified_rs256_tokens_are_remembered_until_they_expire(server: KeyServer) -> None:
    """A verified token is not checked again, nor its key looked up, until its `exp`
    (+ leeway) passes: then it is refused like a token never seen, even with the JWKS down."""
    private = rsa_key()
    server.keys = [jwk(private, "k")]
    keys = JwksKeys(server.url, cache_s=0.05, min_refresh_s=0)
    now = [time.time()]
    verifier = JwtVerifier("", AUD, keys, leeway_s=0, cache_size=10, clock=lambda: now[0])
    try:
        raw = sign(private, "k", "RS256", exp=int(now[0]) + 1)
        assert (await verifier.verify_any(raw)).user_id == "alice"
        await asyncio.sleep(0.1)  # the keys' cache expired: a verification would fetch them
        server.fail = True
        assert (await verifier.verify_any(raw)).user_id == "alice"
        assert server.hits == 1
        await asyncio.sleep(max(0.0, int(now[0]) + 1.05 - time.time()))
        now[0] = time.time()
        server.fail = False
        with pytest.raises(InvalidToken, match="expired"):
            await verifier.verify_any(raw)
        assert server.hits == 2  # verified again (and refused), not answered from memory
    finally:
        await keys.aclose()
