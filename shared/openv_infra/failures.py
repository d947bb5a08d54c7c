"""Which failures of a message's handling may pass if the message is handled again later.

A consumer retries a *transient* failure (a lost connection, a timeout, a serialization
failure, a deadlock) with backoff, holding its partition until it passes: the message is
fine, the world is not. Anything else is taken to be about the message itself (data Postgres
refuses, a value no model accepts, a bug that one input triggers): retrying would block every
message behind it for ever, so the consumer isolates the message and dead-letters it.
"""

import sys
from collections.abc import Iterator

import asyncpg
import httpx
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

#: SQLSTATE classes about the data of one statement (22 data exception, e.g. `\u0000` in
#: jsonb; 23 integrity constraint violation). Every other class is about the server, the
#: connection or the schema (08 connection, 40 serialization/deadlock, 42 undefined table or
#: permission after a bad deploy, 53 resources, 57 shutdown, XX internal): transient.
_DATA_SQLSTATE_CLASSES = frozenset({"22", "23"})

#: Kafka errors about one record (too large to ever be taken); every other Kafka error is about
#: the broker or the connection (aiokafka marks its own timeout not retriable: it passes too).
_KAFKA_RECORD_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)

#: How far down `__cause__`/`__context__` a failure is looked into.
_MAX_CHAIN = 8


class TransientError(Exception):
    """Raised by a handler that knows its failure will pass (e.g. a dependency is down)."""


class PermanentError(Exception):
    """A message that can never be handled (bad shape, impossible content): dead-letter it,
    whatever caused it (e.g. S3 down for longer than the retry budget)."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _one_is_transient(exc: BaseException, extra: tuple[type[BaseException], ...]) -> bool | None:
    """True or False when this exception decides it, None to look at its cause."""
    if isinstance(exc, PermanentError):
        return False
    if isinstance(exc, TransientError | TimeoutError | OSError | httpx.TransportError):
        return True
    if extra and isinstance(exc, extra):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate[:2] not in _DATA_SQLSTATE_CLASSES
    if isinstance(exc, asyncpg.exceptions.DataError):
        return False  # asyncpg refused to encode a value: the data, not the connection
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        return True  # the connection is closed, busy or was reset; a stale schema cache
    # SQLAlchemy's errors only exist where SQLAlchemy was imported: the services without a
    # database (gateway, storage) do not load it (~19 MB of RSS) just to ask.
    if "sqlalchemy" in sys.modules:
        verdict = _sqlalchemy_verdict(exc, extra)
        if verdict is not None:
            return verdict
    if isinstance(exc, KafkaError):
        return not isinstance(exc, _KAFKA_RECORD_ERRORS)
    return None


def _sqlalchemy_verdict(exc: BaseException, extra: tuple[type[BaseException], ...]) -> bool | None:
    from sqlalchemy.exc import DBAPIError, DisconnectionError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout | DisconnectionError):
        return True  # no pooled connection came free in time; a connection went away
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        # Decided by the driver's error: SQLAlchemy keeps it as `orig` (the asyncpg adapter's
        # error, whose cause is asyncpg's own).
        if exc.orig is not None and exc.orig is not exc:
            return is_transient(exc.orig, extra)
    return None


def is_transient(exc: BaseException, extra: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether handling the message again later may succeed (see the module docstring).

    `extra` names a service's own transient failures (e.g. RunPod unreachable). The first
    exception in the cause chain that decides, decides; none deciding means permanent.
    """
    for link in _chain(exc):
        verdict = _one_is_transient(link, extra)
        if verdict is not None:
            return verdict
    return False
