"""A consumer tells failures that pass from failures of one message, and never lets one
message hold up its partition."""

import json
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from openv_contracts import Envelope
from openv_contracts.events import VideoSubmitted
from openv_infra import consuming
from openv_infra.failures import PermanentError, TransientError, is_transient


def _pg(cls: type[asyncpg.PostgresError]) -> asyncpg.PostgresError:
    return cls("from the server")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("reset by peer"),
        TimeoutError(),
        _pg(asyncpg.exceptions.SerializationError),
        _pg(asyncpg.exceptions.DeadlockDetectedError),
        _pg(asyncpg.exceptions.AdminShutdownError),
        _pg(asyncpg.exceptions.TooManyConnectionsError),
        # A deploy that forgot its migration: not the message's fault.
        _pg(asyncpg.exceptions.UndefinedTableError),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation"),
        KafkaConnectionError(),
        KafkaTimeoutError(),  # aiokafka says "not retriable"; the broker was only slow
        PoolTimeout("QueuePool limit of size 10 overflow 5 reached"),
        asyncpg.exceptions.OutdatedSchemaCacheError("cached statement plan is invalid"),
        TransientError("RunPod is down"),
        DBAPIError("INSERT", {}, _pg(asyncpg.exceptions.SerializationError)),
    ],
    ids=type,
)
def test_failures_that_pass_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        # What Postgres says of "\u0000" in jsonb.
        _pg(asyncpg.exceptions.UntranslatableCharacterError),
        _pg(asyncpg.exceptions.CharacterNotInRepertoireError),
        _pg(asyncpg.exceptions.NumericValueOutOfRangeError),
        _pg(asyncpg.exceptions.CheckViolationError),
        asyncpg.exceptions.DataError("invalid input for query argument $1"),
        DBAPIError("INSERT", {}, _pg(asyncpg.exceptions.UntranslatableCharacterError)),
        MessageSizeTooLargeError(),
        ValueError("bad"),
        KeyError("x"),
        RecursionError(),
        PermanentError("dead-letter me"),
    ],
    ids=type,
)
def test_failures_of_one_message_are_permanent(error: Exception) -> None:
    assert not is_transient(error)


def test_the_cause_decides_and_a_permanent_error_always_wins() -> None:
    try:
        try:
            raise ConnectionResetError("S3 down")
        except ConnectionResetError as exc:
            raise RuntimeError("deleting failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    # Storage gives up on S3 after its retry budget: dead-letter, although S3 was the cause.
    try:
        try:
            raise ConnectionResetError("S3 down")
        except ConnectionResetError as exc:
            raise PermanentError("retries exhausted") from exc
    except PermanentError as given_up:
        assert not is_transient(given_up)


def test_a_services_own_transient_failures_count() -> None:
    class RunPodDown(Exception):
        pass

    assert not is_transient(RunPodDown())
    assert is_transient(RunPodDown(), extra=(RunPodDown,))


def test_backoff_grows_to_its_bound_and_starts_over_after_a_success() -> None:
    backoff = consuming.Backoff(0.5, 4.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


# ------------------------------------------------------------------ the consumer


def _record(envelope: Envelope | None, offset: int) -> SimpleNamespace:
    value = envelope.model_dump_json().encode() if envelope else b"\xff not json"
    return SimpleNamespace(
        topic="openv.commands", partition=2, offset=offset, key=b"k", value=value, headers=[]
    )


def _envelope(name: str) -> Envelope:
    return Envelope.wrap(VideoSubmitted(video_id=uuid4(), runpod_job_id=name), user_id="u")


@pytest.fixture
def dead(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str]]:
    """What the consumer dead-letters (instead of publishing to a broker)."""
    letters: list[tuple[Any, str]] = []

    async def dead_letter(_broker: object, _service: str, record: Any, reason: str) -> None:
        letters.append((record, reason))

    monkeypatch.setattr(consuming, "dead_letter", dead_letter)
    return letters


def _consumer(handle: consuming.BatchHandler, **options: Any) -> Any:
    return consuming.envelope_consumer(
        None,  # type: ignore[arg-type]
        "jobs",
        handle,
        retry_delay_s=0.0,
        retry_delay_max_s=0.0,
        **options,
    )


async def test_a_poison_message_is_dead_lettered_and_the_rest_of_its_batch_goes_on(
    dead: list[tuple[Any, str]],
) -> None:
    handled: list[str] = []

    async def handle(envelopes: list[Envelope]) -> None:
        names = [e.data["runpod_job_id"] for e in envelopes]
        if "poison" in names:
            raise _pg(asyncpg.exceptions.UntranslatableCharacterError)
        handled.extend(names)

    batch = (
        _record(_envelope("a"), 10),
        _record(None, 11),
        _record(_envelope("poison"), 12),
        _record(_envelope("b"), 13),
    )
    await _consumer(handle)(batch)  # acknowledged: nothing raised
    assert handled == ["a", "b"]
    assert [(record.offset, reason.split(":")[0]) for record, reason in dead] == [
        (11, "undecodable"),
        (12, "UntranslatableCharacterError"),
    ]


async def test_a_transient_failure_redelivers_the_batch_and_dead_letters_nothing(
    dead: list[tuple[Any, str]],
) -> None:
    async def handle(envelopes: list[Envelope]) -> None:
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost")

    with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError):
        await _consumer(handle)((_record(_envelope("a"), 1), _record(_envelope("b"), 2)))
    assert dead == []


async def test_a_transient_failure_while_isolating_redelivers_the_batch(
    dead: list[tuple[Any, str]],
) -> None:
    calls = 0

    async def handle(envelopes: list[Envelope]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("one of them is bad")
        raise OSError("and now the database is gone")

    with pytest.raises(OSError):
        await _consumer(handle)((_record(_envelope("a"), 1), _record(_envelope("b"), 2)))
    assert dead == []


async def test_a_services_own_transient_failure_is_not_dead_lettered(
    dead: list[tuple[Any, str]],
) -> None:
    class RunPodDown(Exception):
        pass

    async def handle(envelopes: list[Envelope]) -> None:
        raise RunPodDown

    with pytest.raises(RunPodDown):
        await _consumer(handle, transient=(RunPodDown,))((_record(_envelope("a"), 1),))
    assert dead == []


async def test_a_delivery_starts_no_message_that_could_outlast_its_poll_interval(
    dead: list[tuple[Any, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message may take up to 10 s; the delivery has 25 s: two are handled, the rest
    wait for the redelivery (no eviction mid-batch), and nothing is dead-lettered."""
    now = 1000.0
    monkeypatch.setattr(consuming, "_clock", lambda: now)
    handled: list[str] = []

    async def handle_one(envelope: Envelope) -> None:
        nonlocal now
        now += 10.0  # a deletion that spends its whole retry budget, then succeeds
        handled.append(envelope.data["runpod_job_id"])

    consumer = _consumer(consuming.one_at_a_time(handle_one), time_budget_s=25, message_time_s=10)
    batch = tuple(_record(_envelope(name), n) for n, name in enumerate("abcde"))
    with pytest.raises(TransientError, match="3 messages left"):
        await consumer(batch)
    assert handled == ["a", "b"]
    assert dead == []
    # The redelivery starts afresh; quick messages all fit.
    handled.clear()
    monkeypatch.setattr(consuming, "_clock", lambda: 5000.0)
    await consumer(batch)
    assert handled == ["a", "b", "c", "d", "e"]


async def test_isolating_a_poison_message_stays_within_the_delivery_time(
    dead: list[tuple[Any, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = 1000.0
    monkeypatch.setattr(consuming, "_clock", lambda: now)

    async def handle_one(envelope: Envelope) -> None:
        nonlocal now
        now += 10.0
        raise PermanentError("S3 down for longer than the retry budget")

    consumer = _consumer(consuming.one_at_a_time(handle_one), time_budget_s=25, message_time_s=10)
    batch = tuple(_record(_envelope(name), n) for n, name in enumerate("abcd"))
    with pytest.raises(TransientError, match="3 messages left"):
        await consumer(batch)
    # The batch attempt spent 10 s on "a", isolating it 10 s more; "b" would not fit.
    assert [record.offset for record, _ in dead] == [0]


async def test_a_message_its_upcaster_cannot_read_is_dead_lettered_not_redelivered(
    dead: list[tuple[Any, str]],
) -> None:
    """A v1 VideoAccepted missing a field its upcaster reads (KeyError) is undecodable."""
    handled: list[str] = []

    async def handle(envelopes: list[Envelope]) -> None:
        handled.extend(e.type for e in envelopes)

    broken = _envelope("x").model_dump(mode="json")
    broken.update(type="VideoAccepted", schema_version=1, data={"video_id": str(uuid4())})
    record = _record(None, 5)
    record.value = json.dumps(broken).encode()
    await _consumer(handle)((record, _record(_envelope("ok"), 6)))
    assert handled == ["VideoSubmitted"]
    assert [(r.offset, reason.split(":")[0]) for r, reason in dead] == [(5, "undecodable")]
