"""A burst of creates against the RunPod simulator with RunPod's real limits switched on,
through the bridge (a script, not a test): its service layer and reconciler, a real Postgres
and Tansu broker (the facts are published), the simulator in this process. Kafka's video
events are handed to `BridgeService.submit_new` in batches of 64, as the bridge's consumer
does; jobs hang on the simulator (no renders: this measures submission, not GPUs).

    .venv/bin/python benchmarks/runpod_burst.py [--videos 3000] [--sim-run-per-window 1000]

`--sim-run-per-window` makes the simulator stricter than the bridge believes RunPod is (the
bridge keeps its documented 1,000 per 10 s): then RunPod's 429s are what paces the burst.
Prints videos, videos failed (by a 429), /run calls, 429s seen and wall time.
"""

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import uvicorn
from pydantic import SecretStr

from openv_bridge.adapters import migrations
from openv_bridge.adapters.object_store import ObjectStore
from openv_bridge.adapters.submissions import Submissions
from openv_bridge.config import Settings
from openv_bridge.main import make_runpod_client
from openv_bridge.service_layer.bridge import BridgeService
from openv_bridge.service_layer.reconciler import Reconciler
from openv_contracts import Envelope, topics
from openv_contracts.events import VideoAccepted
from openv_contracts.storage_keys import video_prefix
from openv_contracts.video import VideoParams
from openv_infra.db import make_engine
from openv_infra.kafka import make_broker
from openv_infra.publishing import publish
from openv_localstack.ports import free_port
from openv_localstack.servers import EmbeddedPostgres, TansuBroker
from openv_runpod_sim.app import create_app
from openv_runpod_sim.config import SimSettings
from openv_runpod_sim.faults import ScenarioSpec
from openv_runpod_sim.limits import LimitsUpdate

API_KEY = "bench-key"
BATCH = 64  # the bridge consumer's batch (openv_bridge.entrypoints.consumers.BATCH)


class NoBucket(ObjectStore):
    """Presigning is all submission needs from the bucket, and it is local work."""

    def __init__(self) -> None:
        pass

    def upload_url(self, key: str, expires_s: int, signed_at: datetime | None = None) -> str:
        return f"http://127.0.0.1:9/put/{key}"

    async def size_of(self, key: str) -> int | None:
        return None


def accepted(i: int) -> Envelope:
    video_id, user = uuid4(), f"user{i % 97}"
    params = VideoParams(seed=i, width=384, height=384, num_frames=7)
    event = VideoAccepted(
        video_id=video_id,
        prompt=f"burst {i}",
        params=params,
        duration_seconds=params.duration_seconds,
        charged_seconds=params.duration_seconds,
        object_prefix=video_prefix(user, video_id),
    )
    return Envelope.wrap(event, user_id=user)


async def burst(pg: EmbeddedPostgres, kafka: TansuBroker, args: argparse.Namespace) -> None:
    sim_port = free_port()
    pg.create_database("bridge")
    settings = Settings(
        database_url=SecretStr(pg.dsn_for("bridge")),
        kafka_bootstrap=kafka.bootstrap,
        kafka_idempotent_producer=False,
        runpod_base_url=f"http://127.0.0.1:{sim_port}/v2",
        runpod_api_key=SecretStr(API_KEY),
        log_level="warning",
    )
    await migrations.upgrade(settings)
    sim_app = create_app(SimSettings(api_key=API_KEY, runpod_limits=True, log_level="warning"))
    sim = sim_app.state.sim
    sim.scenarios.add(
        ScenarioSpec(prompt_contains="burst", sim={"hang": True, "drop_webhook": True})
    )
    if args.sim_run_per_window != 1000:
        sim.limiter.update(LimitsUpdate(limits={"run_per_window": args.sim_run_per_window}))
    server = uvicorn.Server(
        uvicorn.Config(sim_app, host="127.0.0.1", port=sim_port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)

    engine = make_engine(settings)
    broker = make_broker(settings, "bench-bridge", publishes=(topics.RUNPOD_EVENTS,))
    await broker.start()
    facts: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []

    async def publish_fact(envelope: Envelope) -> None:
        await publish(broker, topics.RUNPOD_EVENTS, envelope, key=str(envelope.data["video_id"]))
        facts[envelope.type] += 1
        if envelope.type == "RunPodJobFailed":
            failures.append(envelope.data)

    runpod = make_runpod_client(settings)
    submissions = Submissions(engine)
    bridge = BridgeService(settings, runpod, submissions, NoBucket(), publish_fact)
    reconciler = Reconciler(bridge, submissions, settings)
    videos = [accepted(i) for i in range(args.videos)]

    started = time.monotonic()
    looping = asyncio.create_task(reconciler.run_forever())
    for first in range(0, len(videos), BATCH):
        await bridge.submit_new(videos[first : first + BATCH])
    fed = time.monotonic() - started
    deadline = started + args.limit_s
    while facts["RunPodJobSubmitted"] + facts["RunPodJobFailed"] < len(videos):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    wall = time.monotonic() - started

    looping.cancel()
    await asyncio.gather(looping, return_exceptions=True)
    calls = Counter(r.split()[1].split("/")[3] for r in sim.table.api_requests)
    by_429 = [f for f in failures if "429" in str(f.get("message"))]
    print(f"videos:                 {len(videos)}")
    print(f"with a RunPod job:      {facts['RunPodJobSubmitted']}")
    print(f"jobs RunPod created:    {sim.table.runs_accepted}")
    print(f"failed:                 {len(failures)} (by a 429: {len(by_429)})")
    print(f"/run calls:             {calls['run']}")
    print(f"/status, /cancel calls: {calls['status']}, {calls['cancel']}")
    print(f"429s seen:              {dict(sim.limiter.throttled) or 0}")
    print(f"wall time:              {wall:.1f} s (batches handed over in {fed:.1f} s)")
    if wall >= args.limit_s:
        print(f"NOT DONE: stopped after {args.limit_s:.0f} s")

    await runpod.aclose()
    await broker.stop()
    await engine.dispose()
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=3000)
    parser.add_argument("--sim-run-per-window", type=int, default=1000)
    parser.add_argument("--limit-s", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="openv-bench-burst-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        kafka = TansuBroker(free_port(), Path(tmp) / "kafka")
        pg.start()
        try:
            kafka.start()
            try:
                kafka.create_topics(topics.DEFAULT_PARTITIONS)
                asyncio.run(burst(pg, kafka, args))
            finally:
                kafka.stop()
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
