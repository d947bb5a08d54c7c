"""Kafka topic names: the one place they are spelled."""

from typing import Final

#: Commands from the gateway to the jobs service; key = user id (one user's commands in order).
COMMANDS: Final = "openv.commands"
#: Every event of the jobs service's event log, relayed in order; key = video id.
VIDEO_EVENTS: Final = "openv.video-events"
#: Facts the RunPod bridge observed (submissions, webhooks, polls); key = video id.
RUNPOD_EVENTS: Final = "openv.runpod-events"
#: Facts the storage service established (objects removed, imports); key = video id.
STORAGE_EVENTS: Final = "openv.storage-events"
#: Messages no consumer could handle, with the reason; never silently dropped.
DEAD_LETTER: Final = "openv.dead-letter"

#: Partitions per topic when the local stack or a test creates them.
DEFAULT_PARTITIONS: Final[dict[str, int]] = {
    COMMANDS: 4,
    VIDEO_EVENTS: 4,
    RUNPOD_EVENTS: 4,
    STORAGE_EVENTS: 4,
    DEAD_LETTER: 1,
}
