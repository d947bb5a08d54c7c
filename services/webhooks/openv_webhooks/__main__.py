"""`python -m openv_webhooks [serve | migrate | replay]`: serve (consume video events, send
webhooks, the internal API; the default), bring the database schema to the latest migration,
or replay failed deliveries: `replay --video <uuid>` (one video's) or `replay --failed-since
<ISO 8601 time>` (every delivery that failed since, e.g. after a receiver's outage); each goes
back to pending with a fresh window and the same webhook-id."""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID

from openv_infra.cli import OptionTask, Task, service_main
from openv_webhooks.adapters import migrations
from openv_webhooks.config import Settings
from openv_webhooks.main import build, create_app

log = logging.getLogger("openv_webhooks")


async def _migrate(settings: Settings, flags: Mapping[str, bool]) -> None:
    await migrations.upgrade(settings)


async def _replay(settings: Settings, options: Mapping[str, str | None]) -> int:
    video, since = options.get("video"), options.get("failed-since")
    if (video is None) == (since is None):
        log.error("replay takes exactly one of --video <uuid> and --failed-since <ISO time>")
        return 2
    try:
        video_id = UUID(video) if video else None
        failed_since = datetime.fromisoformat(since) if since else None
    except ValueError as exc:
        log.error("replay: %s", exc)
        return 2
    if failed_since is not None and failed_since.tzinfo is None:
        failed_since = failed_since.replace(tzinfo=UTC)
    webhooks = build(settings)
    try:
        if video_id is not None:
            replayed = await webhooks.replayer.video(video_id)
        else:
            assert failed_since is not None
            replayed = await webhooks.replayer.failed_since(failed_since)
    finally:
        await webhooks.aclose()
    print(replayed.model_dump_json())
    return 0


def main() -> None:
    service_main(
        "webhooks",
        Settings,
        create_app,
        {
            "migrate": Task("bring the database schema to the latest migration", _migrate),
            "replay": OptionTask(
                "put failed deliveries back to pending (a fresh 24 h window, same webhook-id)",
                _replay,
                {
                    "video": "a video's failed deliveries (its UUID)",
                    "failed-since": "every delivery that failed since this ISO 8601 time",
                },
            ),
        },
        package="openv_webhooks",
    )


if __name__ == "__main__":
    main()
