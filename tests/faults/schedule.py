"""Profiles, the seeded fault schedule, and the injector that runs it against a LocalStack."""

import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Literal

from openv_localstack.processes import wait_until
from openv_localstack.stack import SERVICES, LocalStack
from tests.faults.replay import replay_everything


@dataclass(frozen=True)
class Profile:
    name: str
    #: Videos requested (creates at a steady rate over `load_s`).
    videos: int
    users: int
    load_s: float
    #: Polls, cancels and deletes per second besides the creates.
    other_ops_per_s: float
    kills_per_service: int
    postgres_restarts: int
    broker_restarts: int
    #: Times every consumer group is rewound to the beginning (`replay.py`).
    replays: int
    s3_outage_s: float
    #: How long after the load every acknowledged video must have settled.
    settle_bound_s: float
    #: The local broker's storage ("s3": durable, its restarts run; "memory": they are skipped).
    broker_storage: Literal["s3", "memory"] = "s3"


PROFILES = {
    # In `python3 dev.py test`: every fault kind once, ~2-3 min on a 2-core machine.
    "short": Profile("short", 120, 30, 75.0, 3.0, 1, 1, 1, 1, 10.0, 180.0),
    # The long run: 1,000 videos, each service killed 3 times, S3 down 30 s.
    "long": Profile("long", 1000, 150, 540.0, 5.0, 3, 2, 2, 2, 30.0, 600.0, "memory"),
}


@dataclass(frozen=True)
class PlannedFault:
    at_s: float
    kind: str  # "kill", "broker-restart", "s3-outage", "postgres-restart", "replay"
    target: str


def plan(profile: Profile, seed: int) -> list[PlannedFault]:
    """Every fault the profile asks for, in a seeded random order, each at a random point of
    its own slot of the load (slots keep two faults from overlapping)."""
    rng = random.Random(seed)
    faults = [("kill", s) for s in SERVICES for _ in range(profile.kills_per_service)]
    faults += [("postgres-restart", "postgres")] * profile.postgres_restarts
    faults += [("broker-restart", "kafka")] * profile.broker_restarts
    faults += [("replay", "consumer groups")] * profile.replays
    faults += [("s3-outage", "s3")]
    rng.shuffle(faults)
    lead_in, tail = 5.0, 10.0
    slot = (profile.load_s - lead_in - tail) / len(faults)
    return [
        PlannedFault(lead_in + i * slot + rng.uniform(0, slot / 2), kind, target)
        for i, (kind, target) in enumerate(faults)
    ]


@dataclass
class FaultRecord:
    kind: str
    target: str
    at_s: float
    took_s: float = 0.0
    outcome: str = "done"


@dataclass
class Injector:
    stack: LocalStack
    profile: Profile
    records: list[FaultRecord] = field(default_factory=list)

    def inject(self, fault: PlannedFault, started: float) -> FaultRecord:
        record = FaultRecord(fault.kind, fault.target, time.monotonic() - started)
        begin = time.monotonic()
        try:
            record.outcome = self._run(fault)
        except Exception as exc:  # reported in the table, and fails the test
            record.outcome = f"FAILED: {type(exc).__name__}: {exc}"[:300]
        record.took_s = time.monotonic() - begin
        self.records.append(record)
        print(f"fault {record.kind} {record.target} at {record.at_s:.1f} s: {record.outcome}")
        return record

    def _run(self, fault: PlannedFault) -> str:
        if fault.kind == "kill":
            return self._kill(fault.target)
        if fault.kind == "broker-restart":
            if not getattr(self.stack.kafka, "durable", False):
                return "SKIPPED: the broker keeps topics in memory (a restart loses them)"
            self.stack.stop_server("kafka")
            self.stack.start_server("kafka")
            return "done"
        if fault.kind == "s3-outage":
            self.stack.stop_server("s3")
            time.sleep(self.profile.s3_outage_s)
            self.stack.start_server("s3")
            return f"done ({self.profile.s3_outage_s:.0f} s down)"
        if fault.kind == "replay":
            return replay_everything(self.stack)
        if fault.kind == "postgres-restart":
            self.stack.stop_server("postgres")
            self.stack.start_server("postgres")
            return "done"
        raise ValueError(f"unknown fault {fault.kind}")

    def _kill(self, service: str) -> str:
        proc = self.stack.processes[service]
        pid = proc.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not proc.running, 10, f"{service} to die")
        self.stack.stop_service(service)  # reaps it and sweeps its process group
        self.stack.start_service(service)
        return "done (SIGKILL, restarted)"
