"""The recorders the contract suite holds to the same guarantees: in memory, and on a real
Postgres (the integration fixtures': a fresh migrated database per test)."""

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_jobs.adapters.memory_recorder import MemoryRecorder
from openv_jobs.adapters.postgres_recorder import PostgresRecorder
from openv_jobs.service_layer.recorder import Recorder
from tests.integration.conftest import jobs_dsn, jobs_engine, postgres

__all__ = ["jobs_dsn", "jobs_engine", "postgres"]  # fixtures, for the Postgres recorder

#: A recorder on the test's log; each call another writer to the same log.
NewRecorder = Callable[[], Recorder]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest) -> AsyncEngine | None:
    """The Postgres engine, None for the in-memory recorder (no server started for it)."""
    if request.param == "memory":
        return None
    found: AsyncEngine = request.getfixturevalue("jobs_engine")
    return found


@pytest.fixture
async def new_recorder(engine: AsyncEngine | None) -> AsyncIterator[NewRecorder]:
    made: list[Recorder] = []
    shared = MemoryRecorder()

    def make() -> Recorder:
        made.append(shared if engine is None else PostgresRecorder(engine))
        return made[-1]

    yield make
    for recorder in made:
        await recorder.close()
