"""A steady mixed load on the gateway's public API: creates, polls, cancels and deletes across
many users, every answer counted.

Creates carry an `Idempotency-Key`, so a create retried after a dropped connection or a 503
addresses the same video (its id is known before the first answer: the gateway derives it
from user and key). Answers are counted per operation: `refused` (nothing listening, the
gateway is down), `dropped` (the connection broke or timed out mid-request), or the status.
A 5xx other than a 503 carrying `Retry-After` is a failure (`bad`).
"""

import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from openv_gateway.domain.idempotency import video_id_for
from openv_localstack.tokens import make_token

#: Small, quick renders (13 frames at 24 fps: 0.54 s of a user's monthly quota).
BODY = {"width": 384, "height": 384, "num_frames": 13}
#: Rejections that are a decided video (replayed for the same key), not a passing refusal.
_DECIDED_429 = {"concurrency_limit", "quota_exceeded"}
_TERMINAL = {"completed", "failed", "cancelled", "timed_out", "rejected", "deleted"}


@dataclass
class LoadStats:
    answers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    bad: list[str] = field(default_factory=list)
    #: Video id -> owner, for every create answered with a decided video (202, or a 429
    #: that the gateway replays for the key).
    videos: dict[str, str] = field(default_factory=dict)
    #: Video ids whose create was never answered (the log may or may not hold them).
    unanswered: dict[str, str] = field(default_factory=dict)
    create_retries: int = 0


class Load:
    def __init__(self, base_url: str, users: int, seed: int, workers: int = 8) -> None:
        self.base_url = base_url
        self.users = [f"fault-user-{i:03d}" for i in range(users)]
        self.tokens = {u: {"Authorization": f"Bearer {make_token(u)}"} for u in self.users}
        self.rng = random.Random(seed)
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="load")
        self._last_status: dict[str, str] = {}
        self._stop_retrying_at = float("inf")

    # ------------------------------------------------------------------ requests

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, timeout=20.0)
            self._local.client = client
        return client

    def request(
        self, op: str, method: str, url: str, user: str, **kw: Any
    ) -> httpx.Response | None:
        """One request; None when it got no answer (counted as refused or dropped)."""
        try:
            response = self._client().request(
                method, url, headers={**self.tokens[user], **kw.pop("headers", {})}, **kw
            )
        except httpx.ConnectError:
            self._count(op, "refused")
            return None
        except httpx.TransportError:
            self._count(op, "dropped")
            return None
        status = response.status_code
        self._count(op, str(status))
        if status >= 500 and not (status == 503 and "retry-after" in response.headers):
            with self._lock:
                self.stats.bad.append(f"{op} {method} {url} -> {status} {response.text[:200]}")
        return response

    def _count(self, op: str, what: str) -> None:
        with self._lock:
            self.stats.answers[op][what] += 1

    # ------------------------------------------------------------------ operations

    def create(self, user: str, key: str) -> None:
        video_id = str(video_id_for(user, key))
        body = {"prompt": f"fault load {key}", **BODY}
        while True:
            response = self.request(
                "create", "POST", "/v1/videos", user, json=body, headers={"Idempotency-Key": key}
            )
            code = _code(response)
            if response is not None and (
                response.status_code == 202
                or (response.status_code == 429 and code in _DECIDED_429)
            ):
                with self._lock:
                    self.stats.videos[video_id] = user
                    self._last_status[video_id] = _status(response)
                return
            if response is not None and response.status_code < 500 and response.status_code != 429:
                with self._lock:  # 4xx other than a limit: the request itself is wrong
                    self.stats.bad.append(f"create {key} -> {response.status_code} {code}")
                return
            if time.monotonic() > self._stop_retrying_at:
                with self._lock:
                    self.stats.unanswered[video_id] = user
                return
            with self._lock:
                self.stats.create_retries += 1
            time.sleep(_retry_after(response))

    def poll(self, user: str, video_id: str) -> None:
        response = self.request("get", "GET", f"/v1/videos/{video_id}", user)
        if response is not None and response.status_code == 200:
            with self._lock:
                self._last_status[video_id] = response.json()["status"]

    def cancel(self, user: str, video_id: str) -> None:
        self.request("cancel", "POST", f"/v1/videos/{video_id}/cancel", user)

    def delete(self, user: str, video_id: str) -> None:
        self.request("delete", "DELETE", f"/v1/videos/{video_id}", user)

    # ------------------------------------------------------------------ the steady load

    def _pick(self, active_only: bool) -> tuple[str, str] | None:
        with self._lock:
            candidates = [
                (user, vid)
                for vid, user in self.stats.videos.items()
                if not active_only or self._last_status.get(vid) not in _TERMINAL
            ]
        return self.rng.choice(candidates) if candidates else None

    def run(
        self, videos: int, duration_s: float, other_ops_per_s: float, stop: threading.Event
    ) -> None:
        """Submit `videos` creates evenly over `duration_s` and other operations at their
        rate (polls 60 %, deletes 25 %, cancels 15 %), each on the worker pool."""
        start = time.monotonic()
        create_every = duration_s / videos
        other_every = 1.0 / other_ops_per_s
        next_create, next_other, created = start, start, 0
        self._stop_retrying_at = start + duration_s + 120.0
        futures = []
        while not stop.is_set() and (created < videos or time.monotonic() < start + duration_s):
            now = time.monotonic()
            if created < videos and now >= next_create:
                user = self.users[created % len(self.users)]
                futures.append(self._pool.submit(self.create, user, f"fault-{created:05d}"))
                created += 1
                next_create += create_every
            if now >= next_other:
                next_other += other_every
                roll = self.rng.random()
                target = self._pick(active_only=roll >= 0.85)
                if target is not None:
                    op = self.poll if roll < 0.6 else self.delete if roll < 0.85 else self.cancel
                    futures.append(self._pool.submit(op, *target))
            time.sleep(max(0.0, min(next_create, next_other) - time.monotonic()))
        for future in futures:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _code(response: httpx.Response | None) -> str | None:
    if response is None or not response.headers.get("content-type", "").endswith("json"):
        return None
    body = response.json()
    return body.get("code") if isinstance(body, dict) else None


def _status(response: httpx.Response) -> str:
    body = response.json()
    return str(body.get("status", "rejected")) if isinstance(body, dict) else "?"


def _retry_after(response: httpx.Response | None) -> float:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(5.0, max(0.2, float(value))) if value else 1.0
    except ValueError:
        return 1.0
