"""Real servers for integration tests, one of each per test session, stopped by pid."""

from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from openv_contracts import topics
from openv_infra.db import make_engine
from openv_infra.settings import DatabaseSettings
from openv_jobs.config import Settings as JobsSettings
from openv_jobs.main import migrate
from openv_localstack.ports import free_port
from openv_localstack.servers import EmbeddedPostgres, SeaweedS3, TansuBroker
from tests.integration.storage_support import S3_ACCESS_KEY, S3_SECRET_KEY


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    broker = TansuBroker(free_port(), tmp_path_factory.mktemp("kafka"))
    broker.start()
    broker.create_topics(topics.DEFAULT_PARTITIONS)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server per test module (tests may stop and restart it)."""
    server = SeaweedS3(tmp_path_factory.mktemp("s3"), free_port(), S3_ACCESS_KEY, S3_SECRET_KEY)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def jobs_dsn(postgres: EmbeddedPostgres) -> str:
    """A fresh, migrated jobs database for one test."""
    name = f"jobs_{uuid4().hex[:12]}"
    postgres.create_database(name)
    dsn = postgres.dsn_for(name)
    await migrate(JobsSettings(database_url=dsn))
    return dsn


@pytest.fixture
async def jobs_engine(jobs_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(DatabaseSettings(database_url=jobs_dsn, database_pool_size=25))
    try:
        yield engine
    finally:
        await engine.dispose()
