"""The local broker's two storage engines side by side (a script, not a test): memory (lost on
a restart) against S3 (the local SeaweedFS; topics and committed offsets survive).

For each engine, at each create rate, a fresh broker (and, for S3, a fresh SeaweedFS) gets
the whole stack's Kafka traffic of `broker_floor.py` (four records per create, five consumers
with the services' fetch options, commits after every batch) for `--duration` seconds. It
prints the produce->consume latency of a hop on a request's path (the jobs service's and the
gateway's live-feed consumers; p50, p99), the broker's CPU per create (utime + stime from
/proc/<pid>/stat), SeaweedFS's CPU per create for the S3 engine, and S3 against memory.

    .venv/bin/python -m benchmarks.broker_storage [--rates 20,100] [--duration 20]

(as a module, from the repository root: it reuses broker_floor.py's load)
"""

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop
from benchmarks.broker_floor import TOPICS, one_rate

from openv_contracts.topics import DEFAULT_PARTITIONS
from openv_localstack.ports import free_port
from openv_localstack.servers import SeaweedS3, TansuBroker

ENGINES = ("memory", "s3")


@contextlib.contextmanager
def broker(engine: str, root: Path) -> Iterator[tuple[TansuBroker, tuple[int, ...]]]:
    """A started broker on `engine` and the pids of the servers it needs (SeaweedFS)."""
    with contextlib.ExitStack() as stack:
        s3 = None
        if engine == "s3":
            s3 = stack.enter_context(
                SeaweedS3(root / "s3", free_port(), "bench", "bench-secret-0123456789")
            )
        kafka = stack.enter_context(TansuBroker(free_port(), root / "kafka", s3=s3))
        assert kafka.durable == (engine == "s3")
        kafka.create_topics({topic: DEFAULT_PARTITIONS[topic] for topic in TOPICS})
        yield kafka, (s3.pid,) if s3 is not None and s3.pid is not None else ()


def measure(engine: str, rate: float, duration_s: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix=f"openv-bench-{engine}-") as tmp,
        broker(engine, Path(tmp)) as (kafka, others),
    ):
        assert kafka.pid is not None
        return uvloop.run(one_rate(kafka.bootstrap, kafka.pid, rate, duration_s, others))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="20,100", help="creates per second (4 records each)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    args = parser.parse_args()
    results: dict[tuple[str, float], dict[str, Any]] = {}
    for rate in [float(r) for r in args.rates.split(",")]:
        for engine in ENGINES:
            result = results[engine, rate] = measure(engine, rate, args.duration)
            print(
                f"{engine:>6} at {rate:,.0f} creates/s (kept {result['kept']:,.0f}/s): hop p50 "
                f"{result['hop_p50_ms']:.1f} ms, p99 {result['hop_p99_ms']:.1f} ms; broker "
                f"{result['cpu_ms_per_create']:.2f} ms CPU per create ({result['cores']:.2f} "
                f"cores), S3 server {result['others_ms_per_create']:.2f} ms; idle (the "
                f"consumers' fetches): broker {result['idle_cores']:.2f} cores, S3 server "
                f"{result['others_idle_cores']:.2f}",
                flush=True,
            )
    print("\n=== broker storage: s3 against memory ===")
    for rate in sorted({rate for _, rate in results}):
        memory, s3 = results["memory", rate], results["s3", rate]
        s3_total = s3["cpu_ms_per_create"] + s3["others_ms_per_create"]
        print(
            f"{rate:>6,.0f} creates/s: hop p50 {memory['hop_p50_ms']:.1f} -> "
            f"{s3['hop_p50_ms']:.1f} ms (x{s3['hop_p50_ms'] / memory['hop_p50_ms']:.2f}), "
            f"p99 {memory['hop_p99_ms']:.1f} -> {s3['hop_p99_ms']:.1f} ms "
            f"(x{s3['hop_p99_ms'] / memory['hop_p99_ms']:.2f}); broker CPU per create "
            f"{memory['cpu_ms_per_create']:.2f} -> {s3['cpu_ms_per_create']:.2f} ms "
            f"(x{s3['cpu_ms_per_create'] / memory['cpu_ms_per_create']:.2f}); with SeaweedFS "
            f"{s3_total:.2f} ms (x{s3_total / memory['cpu_ms_per_create']:.2f})"
        )


if __name__ == "__main__":
    main()
