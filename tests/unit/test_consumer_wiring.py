"""Which consumers fetch with the short wait (a request waits on them) and which with the long
one, and which read in batches skipping other types unread. On Tansu a fetch waits its whole
wait even when data arrives, so a consumer in the wrong tier adds up to 100 ms to every create
(or costs an idle core its share for nothing)."""

from types import SimpleNamespace
from typing import Any, TypeVar, cast

from faststream.kafka import KafkaBroker

from openv_bridge.config import Settings as BridgeSettings
from openv_bridge.entrypoints import consumers as bridge_consumers
from openv_contracts import topics
from openv_gateway.config import Settings as GatewaySettings
from openv_gateway.entrypoints.video_feed import VideoFeed
from openv_infra import consuming
from openv_infra.settings import KafkaSettings
from openv_jobs.config import Settings as JobsSettings
from openv_jobs.entrypoints import consumers as jobs_consumers
from openv_storage.config import Settings as StorageSettings
from openv_storage.entrypoints import consumers as storage_consumers
from openv_webhooks.config import Settings as WebhooksSettings
from openv_webhooks.entrypoints import consumers as webhooks_consumers

SHORT, LONG, MIN_BYTES = 7, 700, 12345
_S = TypeVar("_S", bound=KafkaSettings)


def _settings(cls: type[_S]) -> _S:
    return cls(
        kafka_request_path_fetch_max_wait_ms=SHORT,
        kafka_fetch_max_wait_ms=LONG,
        kafka_fetch_min_bytes=MIN_BYTES,
    )


async def _ignore(*_: Any) -> None:
    return None


def _handlers(*names: str) -> Any:
    return SimpleNamespace(**dict.fromkeys(names, _ignore))


def _subscribers(broker: KafkaBroker) -> dict[str, Any]:
    """Group id -> subscriber."""
    subscribers: list[Any] = list(broker.subscribers)
    return {subscriber.group_id: subscriber for subscriber in subscribers}


def _fetch_wait(subscriber: Any) -> int:
    return cast(int, subscriber._connection_args["fetch_max_wait_ms"])


def _fetch_min_bytes(subscriber: Any) -> int:
    return cast(int, subscriber._connection_args["fetch_min_bytes"])


def test_the_jobs_service_decides_with_the_short_wait() -> None:
    broker = KafkaBroker()
    jobs_consumers.register(broker, _handlers("handle_batch"), _settings(JobsSettings), 100)
    (subscriber,) = cast(list[Any], broker.subscribers)
    assert _fetch_wait(subscriber) == SHORT
    assert _fetch_min_bytes(subscriber) == 1  # what there is, at once
    assert set(subscriber.topic_names) >= {topics.COMMANDS, topics.RUNPOD_EVENTS}


def test_storage_reads_with_the_long_wait_in_batches() -> None:
    broker = KafkaBroker()
    storage_consumers.register(
        broker,
        _handlers("on_video_event", "on_completion"),
        _handlers("on_runpod_event"),
        _handlers("on_video_event"),
        _settings(StorageSettings),
    )
    groups = _subscribers(broker)
    deletions = groups[storage_consumers.DELETIONS_GROUP_ID]
    imports = groups[storage_consumers.IMPORTS_GROUP_ID]
    posters = groups[storage_consumers.POSTERS_GROUP_ID]
    # No create waits on either; DELETE ?wait=N answers up to a long wait later.
    assert _fetch_wait(deletions) == LONG
    assert _fetch_wait(imports) == LONG
    assert _fetch_wait(posters) == LONG
    # Larger batches: the broker gathers data until the long wait is up.
    assert _fetch_min_bytes(deletions) == _fetch_min_bytes(imports) == MIN_BYTES
    assert deletions.max_records == storage_consumers.DELETIONS_BATCH
    assert imports.max_records == storage_consumers.IMPORTS_BATCH


def test_storage_batches_fit_their_poll_interval() -> None:
    """Each delivery may take two messages' worst case (see envelope_consumer's time budget);
    the poll interval Kafka enforces is that plus a margin, whatever the retry settings."""
    for attempts, timeout_s in ((6, 10.0), (12, 60.0)):
        settings = _settings(StorageSettings).model_copy(
            update={"retry_attempts": attempts, "s3_timeout_s": timeout_s}
        )
        broker = KafkaBroker()
        storage_consumers.register(
            broker,
            _handlers("on_video_event", "on_completion"),
            _handlers("on_runpod_event"),
            _handlers("on_video_event"),
            settings,
        )
        groups = _subscribers(broker)
        policy = settings.retry_policy
        worst = {
            storage_consumers.DELETIONS_GROUP_ID: policy.budget_s(3 * timeout_s),
            storage_consumers.IMPORTS_GROUP_ID: policy.budget_s(
                settings.import_total_timeout_s + 3 * timeout_s
            ),
            storage_consumers.POSTERS_GROUP_ID: policy.budget_s(
                settings.import_total_timeout_s + 3 * timeout_s
            ),
        }
        for group, message_s in worst.items():
            interval_s = groups[group]._connection_args["max_poll_interval_ms"] / 1000
            delivery_s = consuming.delivery_time_s(message_s, message_s)
            assert delivery_s >= 2 * message_s
            assert interval_s >= delivery_s + 30, group


def test_the_bridge_submits_with_the_long_wait() -> None:
    broker = KafkaBroker()
    bridge_consumers.register(broker, _handlers("on_video_event"), _settings(BridgeSettings))
    (subscriber,) = broker.subscribers
    assert _fetch_wait(subscriber) == LONG
    assert _fetch_min_bytes(subscriber) == MIN_BYTES


async def test_the_gateways_live_feed_reads_with_the_short_wait() -> None:
    feed = VideoFeed(_settings(GatewaySettings), "gw", lambda _: False, lambda *_: None)
    consumer = feed._consumer()
    try:
        assert consumer._fetch_max_wait_ms == SHORT
    finally:
        await consumer.stop()


def test_webhooks_read_every_video_event_with_the_long_wait_in_batches() -> None:
    broker = KafkaBroker()
    webhooks_consumers.register(broker, _handlers("on_events"), _settings(WebhooksSettings))
    (subscriber,) = cast(list[Any], broker.subscribers)
    # No request waits on a webhook: the long tier, and batches the broker fills.
    assert _fetch_wait(subscriber) == LONG
    assert _fetch_min_bytes(subscriber) == MIN_BYTES
    assert subscriber.max_records == webhooks_consumers.BATCH
    assert subscriber.group_id == webhooks_consumers.GROUP_ID
    assert set(subscriber.topic_names) == {topics.VIDEO_EVENTS}
