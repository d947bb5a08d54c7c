"""Gateway behaviour that needs its own processes beside the session stack:

* `small`: a jobs service with tiny limits on its own Kafka broker and database (no bridge, so
  its videos stay `queued`), behind a gateway with a low rate limit, a short SSE keep-alive
  and a JWKS URL served by a local key server;
* `undecided`: a gateway on a Kafka broker of its own where no jobs service listens, so its
  requests stay `pending` (its reads go to the stack's jobs service, which never hears of
  them);
* `no_jobs`: a gateway pointed at a jobs URL where nothing listens (and at the broker
  nobody decides from);
* `door`: like `undecided` (its videos stay `pending`, so their streams stay open), with at
  most 2 long-lived requests per user and a small limit for requests without a valid token.
"""

import contextlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from openv_contracts import topics
from openv_localstack.ports import free_port
from openv_localstack.processes import ManagedProcess, wait_until
from openv_localstack.servers import TansuBroker
from openv_localstack.stack import LocalStack

pytestmark = pytest.mark.e2e

Auth = Callable[[str], dict[str, str]]
SMALL = {"width": 384, "height": 384, "num_frames": 13}  # 13/24 s each
QUOTA_S = 2.0  # three small videos fit, a fourth does not
RATE_BURST = 6
OPEN_PER_USER = 2
ANONYMOUS_BURST = 3


class KeyServer:
    """A JWKS endpoint on a loopback port."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        keys = [
            {**RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True), "kid": "r1",
             "alg": "RS256", "use": "sig"},
            {**ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True), "kid": "e1",
             "alg": "ES256", "use": "sig"},
        ]  # fmt: skip
        body = json.dumps({"keys": keys}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
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
        self.thread.start()

    def token(self, user_id: str, alg: str = "RS256", **changes: object) -> str:
        claims: dict[str, object] = {
            "sub": user_id,
            "aud": "authenticated",
            "exp": int(time.time()) + 600,
        }
        claims.update(changes)
        key, kid = (self.rsa, "r1") if alg == "RS256" else (self.ec, "e1")
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Side:
    small: str
    undecided: str
    no_jobs: str
    door: str
    keys: KeyServer
    #: The admin port (/readyz) of the `no_jobs` gateway.
    no_jobs_admin: str


def _wait_healthy(proc: ManagedProcess, url: str) -> None:
    # wait_until takes a failed request for "not yet". One client for every poll (a new one
    # costs ~40 ms of CPU, taken from the processes starting).
    with httpx.Client(timeout=1.0) as client:
        wait_until(
            lambda: client.get(f"{url}/healthz").status_code == 200,
            90,
            f"{proc.name} at {url}",
            proc,
        )


@pytest.fixture(scope="module")
def side(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    root = tmp_path_factory.mktemp("gateway-side")
    broker = TansuBroker(free_port(), root / "kafka")
    # Nobody consumes this one's commands (a gateway's live feed reads decisions from the
    # broker it publishes to: on the side broker the side jobs service would decide them).
    silent_broker = TansuBroker(free_port(), root / "kafka-silent")
    keys = KeyServer()
    procs: list[ManagedProcess] = []

    def process(name: str, module: str, env: dict[str, str], *args: str) -> ManagedProcess:
        proc = ManagedProcess(
            name, [sys.executable, "-m", module, *args], env, root / f"{name}.log"
        )
        procs.append(proc)
        proc.start()
        return proc

    try:
        broker.start()
        broker.create_topics(topics.DEFAULT_PARTITIONS)
        silent_broker.start()
        silent_broker.create_topics(topics.DEFAULT_PARTITIONS)
        database = f"openv_jobs_side_{uuid.uuid4().hex[:8]}"
        stack.postgres.create_database(database)
        jobs_port = free_port()
        jobs_env = {
            **stack.service_env("jobs"),
            "OPENV_PORT": str(jobs_port),
            "OPENV_ADMIN_PORT": str(free_port()),
            "OPENV_KAFKA_BOOTSTRAP": broker.bootstrap,
            "OPENV_DATABASE_URL": stack.postgres.dsn_for(database),
            "OPENV_MAX_ACTIVE_JOBS": "50",
            "OPENV_QUOTA_SECONDS": str(QUOTA_S),
        }
        migrate = process("side-jobs-migrate", "openv_jobs", jobs_env, "migrate")
        wait_until(lambda: not migrate.running, 90, "side jobs migration")
        assert migrate.returncode == 0, migrate.tail()
        jobs = process("side-jobs", "openv_jobs", jobs_env)
        jobs_url = f"http://127.0.0.1:{jobs_port}"

        gateway_env = stack.service_env("gateway")
        ports = {name: free_port() for name in ("small", "undecided", "no_jobs", "door")}
        admin_ports = {name: free_port() for name in ports}
        envs = {
            "small": {
                "OPENV_KAFKA_BOOTSTRAP": broker.bootstrap,
                "OPENV_JOBS_URL": jobs_url,
                "OPENV_RATE_LIMIT_PER_S": "0.5",
                "OPENV_RATE_LIMIT_BURST": str(RATE_BURST),
                "OPENV_SSE_KEEPALIVE_S": "0.3",
                "OPENV_JWT_JWKS_URL": keys.url,
            },
            # Its commands go to a broker nobody decides from, its reads to the stack's jobs
            # service: nobody hears of its requests.
            "undecided": {
                "OPENV_KAFKA_BOOTSTRAP": silent_broker.bootstrap,
                "OPENV_DECISION_WAIT_S": "0.3",
                "OPENV_SSE_KEEPALIVE_S": "0.3",
            },
            "no_jobs": {
                # No jobs service at all: none answers its reads, none decides its commands.
                "OPENV_KAFKA_BOOTSTRAP": silent_broker.bootstrap,
                "OPENV_JOBS_URL": f"http://127.0.0.1:{free_port()}",
                "OPENV_DECISION_WAIT_S": "0.5",
            },
            "door": {
                "OPENV_KAFKA_BOOTSTRAP": silent_broker.bootstrap,
                "OPENV_DECISION_WAIT_S": "0.3",
                "OPENV_SSE_KEEPALIVE_S": "0.3",
                "OPENV_MAX_OPEN_PER_USER": str(OPEN_PER_USER),
                "OPENV_OPEN_RETRY_AFTER_S": "3",
                "OPENV_ANONYMOUS_RATE_LIMIT_PER_S": "0.1",
                "OPENV_ANONYMOUS_RATE_LIMIT_BURST": str(ANONYMOUS_BURST),
            },
        }
        gateways = {
            name: process(
                f"side-gateway-{name}",
                "openv_gateway",
                {
                    **gateway_env,
                    "OPENV_PORT": str(ports[name]),
                    "OPENV_ADMIN_PORT": str(admin_ports[name]),
                    **envs[name],
                },
            )
            for name in envs
        }
        _wait_healthy(jobs, jobs_url)
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name, proc in gateways.items():
            _wait_healthy(proc, urls[name])
        no_jobs_admin = f"http://127.0.0.1:{admin_ports['no_jobs']}"
        yield Side(
            urls["small"], urls["undecided"], urls["no_jobs"], urls["door"], keys, no_jobs_admin
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
        broker.stop()
        silent_broker.stop()
        keys.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def user() -> str:
    return f"side-{uuid.uuid4()}"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


# --- limits ---------------------------------------------------------------------------------


def test_quota_exceeded_is_a_429_with_retry_after_until_the_next_period(
    side: Side, auth: Auth
) -> None:
    headers = auth(user())
    with httpx.Client(base_url=side.small, timeout=30) as api:
        accepted = [
            api.post("/v1/videos", json={"prompt": f"q{i}", **SMALL}, headers=headers)
            for i in range(3)
        ]
        assert [a.status_code for a in accepted] == [202, 202, 202], [a.text for a in accepted]
        assert {a.json()["status"] for a in accepted} == {"queued"}
        refused = api.post("/v1/videos", json={"prompt": "q3", **SMALL}, headers=headers)
        body = problem(refused, 429, "quota_exceeded")
        assert "monthly" in body["detail"]
        retry = int(refused.headers["Retry-After"])
        asked_at = datetime.now(UTC)
        usage = api.get("/v1/usage", headers=headers).json()
        assert usage["quota_seconds"] == QUOTA_S
        assert usage["used_seconds"] == pytest.approx(3 * 13 / 24, abs=0.01)
        period_end = usage["period_end"]
        assert period_end > usage["period_start"]
        # Retry-After points at the end of the quota period (the next calendar month), the
        # moment /v1/usage names, within the seconds between the two requests.
        until_end = (datetime.fromisoformat(period_end) - asked_at).total_seconds()
        assert 1 <= retry <= 31 * 24 * 3600
        assert retry == pytest.approx(until_end, abs=30)


def test_the_per_user_rate_limit_answers_rate_limited_with_retry_after(
    side: Side, auth: Auth
) -> None:
    limited, other = auth(user()), auth(user())
    with httpx.Client(base_url=side.small, timeout=30) as api:
        answers = [api.get("/v1/usage", headers=limited) for _ in range(RATE_BURST + 2)]
        assert [a.status_code for a in answers[:RATE_BURST]] == [200] * RATE_BURST
        refused = answers[-1]
        problem(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1  # 0.5/s: about 2 s
        assert api.get("/v1/usage", headers=other).status_code == 200


def test_a_user_holds_at_most_n_streams_and_waits_open_at_once(side: Side, auth: Auth) -> None:
    headers = auth(user())
    with httpx.Client(base_url=side.door, timeout=30) as api:
        created = api.post("/v1/videos", json={"prompt": "held", **SMALL}, headers=headers)
        assert created.json()["status"] == "pending", created.text  # its stream stays open
        vid = created.json()["id"]
        stream = f"/v1/videos/{vid}/stream"
        with contextlib.ExitStack() as streams:
            for _ in range(OPEN_PER_USER):
                assert streams.enter_context(api.stream("GET", stream, headers=headers)).is_success
            with api.stream("GET", stream, headers=headers) as third:
                assert third.status_code == 429  # (a 200 stream would never end)
                third.read()
                problem(third, 429, "rate_limited")
                assert third.headers["Retry-After"] == "3"
            waits = [
                api.post(
                    "/v1/videos",
                    json={"prompt": "waits", **SMALL},
                    headers={**headers, "Prefer": "wait=5"},
                ),
                api.delete(f"/v1/videos/{vid}", params={"wait": 5}, headers=headers),
            ]
            for refused in waits:
                assert "streams and waits" in problem(refused, 429, "rate_limited")["detail"]
                assert refused.headers["Retry-After"] == "3"
            # Short requests, and other users, are not held back.
            assert api.get(f"/v1/videos/{vid}", headers=headers).status_code == 200
            other = auth(user())
            theirs = api.post("/v1/videos", json={"prompt": "other", **SMALL}, headers=other)
            with api.stream("GET", f"/v1/videos/{theirs.json()['id']}/stream", headers=other) as ok:
                assert ok.status_code == 200
        # Closed streams give their slots back (the server notices the disconnect).
        deadline = time.monotonic() + 10
        while True:
            with api.stream("GET", stream, headers=headers) as again:
                if again.status_code == 200 or time.monotonic() > deadline:
                    break
            time.sleep(0.2)
        assert again.status_code == 200


def test_requests_without_a_valid_token_are_limited_per_client_address(
    side: Side, auth: Auth
) -> None:
    with httpx.Client(base_url=side.door, timeout=30) as api:
        answers = [api.get("/v1/usage") for _ in range(ANONYMOUS_BURST)]
        assert [a.status_code for a in answers] == [401] * ANONYMOUS_BURST
        refused = api.get("/v1/videos", headers=bearer("not-a-token"))
        problem(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1  # 0.1/s: about 10 s
        # A valid token from the same address, and the public routes, are not limited.
        assert api.get("/v1/usage", headers=auth(user())).status_code == 200
        assert api.get("/healthz").status_code == 200


# --- JWKS -----------------------------------------------------------------------------------


def test_rs256_and_es256_tokens_from_the_jwks_are_accepted(side: Side, auth: Auth) -> None:
    with httpx.Client(base_url=side.small, timeout=30) as api:
        rs = api.get("/v1/usage", headers=bearer(side.keys.token(user())))
        assert rs.status_code == 200, rs.text
        es = api.get("/v1/usage", headers=bearer(side.keys.token(user(), alg="ES256")))
        assert es.status_code == 200, es.text
        # HS256 with the shared secret keeps working beside the JWKS.
        assert api.get("/v1/usage", headers=auth(user())).status_code == 200
        # Ownership holds across key types: the same sub is the same user.
        owner = user()
        created = api.post(
            "/v1/videos", json={"prompt": "jwks", **SMALL}, headers=bearer(side.keys.token(owner))
        )
        assert created.status_code == 202, created.text
        vid = created.json()["id"]
        assert api.get(f"/v1/videos/{vid}", headers=auth(owner)).status_code == 200
        assert (
            api.get(f"/v1/videos/{vid}", headers=bearer(side.keys.token(user()))).status_code == 404
        )


def test_bad_asymmetric_tokens_get_401(side: Side) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    good = {"sub": user(), "aud": "authenticated", "exp": now + 600}
    bad = [
        jwt.encode(good, stranger, algorithm="RS256", headers={"kid": "r1"}),  # wrong signature
        jwt.encode(good, stranger, algorithm="RS256", headers={"kid": "unknown"}),
        side.keys.token(user(), exp=now - 120),  # beyond the 30 s clock leeway
        side.keys.token(user(), aud="anon"),
        jwt.encode({**good, "sub": None}, side.keys.rsa, algorithm="RS256", headers={"kid": "r1"}),
    ]
    with httpx.Client(base_url=side.small, timeout=30) as api:
        for token in bad:
            response = api.get("/v1/usage", headers=bearer(token))
            problem(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == "Bearer"


# --- live status: keep-alives, Prefer: wait that runs out -----------------------------------


def test_an_idle_stream_sends_keep_alives_and_ends_when_the_video_is_cancelled(
    side: Side, auth: Auth
) -> None:
    headers = auth(user())
    with httpx.Client(base_url=side.small, timeout=30) as api:
        vid = api.post("/v1/videos", json={"prompt": "idle", **SMALL}, headers=headers).json()["id"]
        events: list[dict[str, Any]] = []
        comments = 0
        cancelled_at: float | None = None
        with api.stream("GET", f"/v1/videos/{vid}/stream", headers=headers) as response:
            assert response.status_code == 200
            current: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith(":"):
                    comments += 1
                    if comments == 3 and cancelled_at is None:
                        # Nothing happens to a queued video here: cancel it from elsewhere.
                        cancel = httpx.post(f"{side.small}/v1/videos/{vid}/cancel", headers=headers)
                        assert cancel.status_code == 202, cancel.text
                        cancelled_at = time.monotonic()
                elif line == "" and "data" in current:
                    events.append({**current, "video": json.loads(current["data"])})
                    current = {}
                elif line:
                    name, _, value = line.partition(":")
                    current[name] = value.strip()
        statuses = [e["video"]["status"] for e in events]
        assert statuses == ["queued", "cancelled"], statuses
        assert [int(e["id"]) for e in events] == [1, 2]
        assert comments >= 3


def test_prefer_wait_that_runs_out_answers_the_current_state(side: Side, auth: Auth) -> None:
    headers = {**auth(user()), "Prefer": "wait=1"}
    with httpx.Client(base_url=side.small, timeout=30) as api:
        started = time.monotonic()
        created = api.post("/v1/videos", json={"prompt": "slow", **SMALL}, headers=headers)
        elapsed = time.monotonic() - started
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "queued"  # nothing runs it here
        assert created.headers["Preference-Applied"] == "wait=1"
        assert int(created.headers["Retry-After"]) >= 1
        assert 0.9 <= elapsed < 10


# --- pending --------------------------------------------------------------------------------


def test_an_undecided_request_is_pending_not_missing(
    side: Side, auth: Auth, api: httpx.Client
) -> None:
    headers = auth(user())
    with httpx.Client(base_url=side.undecided, timeout=30) as client:
        created = client.post("/v1/videos", json={"prompt": "limbo", **SMALL}, headers=headers)
        assert created.status_code == 202, created.text
        video = created.json()
        assert video["status"] == "pending"
        assert video["prompt"] == "limbo" and video["params"]["num_frames"] == 13
        assert created.headers["Location"] == f"/v1/videos/{video['id']}"
        assert int(created.headers["Retry-After"]) >= 1
        vid = video["id"]

        again = client.get(f"/v1/videos/{vid}", headers=headers)
        assert again.status_code == 200 and again.json()["status"] == "pending"
        assert int(again.headers["Retry-After"]) >= 1
        assert client.get(f"/v1/videos/{vid}/events", headers=headers).json() == {"data": []}
        # Only its owner sees it.
        problem(client.get(f"/v1/videos/{vid}", headers=auth(user())), 404, "not_found")
        # Not decided yet: cancel and delete say so, with a hint when to retry.
        for response in (
            client.post(f"/v1/videos/{vid}/cancel", headers=headers),
            client.delete(f"/v1/videos/{vid}", headers=headers),
        ):
            problem(response, 409, "conflict")
            assert int(response.headers["Retry-After"]) >= 1
        # The stream starts with the pending state (id 0) and keeps the connection alive.
        with client.stream("GET", f"/v1/videos/{vid}/stream", headers=headers) as stream:
            lines: list[str] = []
            for line in stream.iter_lines():
                lines.append(line)
                if sum(1 for x in lines if x.startswith(":")) >= 2:
                    break
        assert "event: status" in lines and "id: 0" in lines
        data = next(x for x in lines if x.startswith("data: "))
        assert json.loads(data.removeprefix("data: "))["status"] == "pending"
    # Another instance never heard of it.
    problem(api.get(f"/v1/videos/{vid}", headers=headers), 404, "not_found")


# --- jobs down ------------------------------------------------------------------------------


def test_reads_answer_503_and_readiness_fails_when_jobs_is_down(side: Side, auth: Auth) -> None:
    headers = auth(user())
    with httpx.Client(base_url=side.no_jobs, timeout=30) as api:
        vid = uuid.uuid4()
        for method, path in [
            ("GET", f"/v1/videos/{vid}"),
            ("GET", "/v1/videos"),
            ("GET", f"/v1/videos/{vid}/events"),
            ("GET", f"/v1/videos/{vid}/stream"),
            ("POST", f"/v1/videos/{vid}/cancel"),
            ("DELETE", f"/v1/videos/{vid}"),
            ("GET", "/v1/usage"),
        ]:
            response = api.request(method, path, headers=headers)
            problem(response, 503, "unavailable")
            assert int(response.headers["Retry-After"]) >= 1, (method, path)
        # With an Idempotency-Key the gateway must read first: it cannot, so 503, nothing sent.
        keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        problem(
            api.post("/v1/videos", json={"prompt": "x", **SMALL}, headers=keyed), 503, "unavailable"
        )
        # Without one the command is published; no decision can be read: honest `pending`.
        created = api.post("/v1/videos", json={"prompt": "x", **SMALL}, headers=headers)
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "pending"
        ready = httpx.get(f"{side.no_jobs_admin}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["jobs"] is False
        assert ready.json()["checks"]["kafka"] is True
        assert api.get("/healthz").status_code == 200
