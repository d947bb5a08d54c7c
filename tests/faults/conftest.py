"""The fault suite's stack and options.

    python3 dev.py test tests/faults                                   # short profile
    python3 dev.py test tests/faults --fault-profile=long -s           # the long one (~15 min)
    python3 dev.py test tests/faults --fault-seed=1234                 # replay a schedule
    python3 dev.py test tests/faults --fault-profile=long --fault-broker-storage=s3 -s
                                          # the long one on the durable broker (falls behind)

Options are registered here, so they work when tests/faults is named on the command line;
a plain `python3 dev.py test` runs the short profile with a random seed.
"""

import os
import random
from collections.abc import Iterator

import pytest

from openv_localstack.stack import LocalStack
from tests.e2e.support import running_stack
from tests.faults.schedule import PROFILES, Profile

#: Bounds the invariants are stated against (docs/operations.md, "Fault tests").
SUBMIT_TIMEOUT_S = 10
SUBMIT_LEASE_S = 15
AMBIGUOUS_RUN_WAIT_S = 10
QUEUED_TIMEOUT_S = 120


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faults")
    group.addoption("--fault-profile", choices=sorted(PROFILES), default="short")
    group.addoption("--fault-seed", type=int, default=None, help="the schedule's seed")
    group.addoption(
        "--fault-broker-storage",
        choices=["s3", "memory"],
        default=None,
        help="the broker's storage (default: the profile's)",
    )


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> Profile:
    return PROFILES[request.config.getoption("fault_profile", default="short")]


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    chosen = request.config.getoption("fault_seed", default=None)
    if chosen is None and os.environ.get("OPENV_FAULT_SEED"):
        chosen = int(os.environ["OPENV_FAULT_SEED"])
    return chosen if chosen is not None else random.SystemRandom().randrange(2**31)


@pytest.fixture(scope="package")  # stopped once the fault test is done
def fault_stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, profile: Profile
) -> Iterator[LocalStack]:
    chosen = request.config.getoption("fault_broker_storage", default=None)
    # The short profile's broker is durable (topics and offsets in the stack's SeaweedFS):
    # its restart loses nothing, as with production's Kafka; an S3 outage is a broker outage
    # too. The long profile's rate is more than it keeps up with (docs/operations.md, "Fault
    # tests"): memory, and its broker restarts are skipped.
    with running_stack(
        tmp_path_factory.mktemp("fault-stack"),
        chosen or profile.broker_storage,
        {
            # runpod-bridge: a stalled attempt (its bridge killed between /run and recording
            # the answer) is held after its lease; a lost answer's job is waited for 10 s (the
            # simulator's take 1 s).
            "OPENV_SUBMIT_TIMEOUT_S": str(SUBMIT_TIMEOUT_S),
            "OPENV_SUBMIT_LEASE_S": str(SUBMIT_LEASE_S),
            "OPENV_AMBIGUOUS_RUN_WAIT_S": str(AMBIGUOUS_RUN_WAIT_S),
            # jobs: nothing stays queued beyond this (the settle bound is above it).
            "OPENV_QUEUED_TIMEOUT_S": str(QUEUED_TIMEOUT_S),
            "OPENV_QUEUED_TIMEOUT_CHECK_S": "2",
        },
    ) as local:
        yield local
