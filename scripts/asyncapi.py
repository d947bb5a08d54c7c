"""Generate the AsyncAPI document of all OpenV services from their FastStream brokers.

    .venv/bin/python scripts/asyncapi.py            # write docs/asyncapi.json
    .venv/bin/python scripts/asyncapi.py --check    # exit 1 if docs/asyncapi.json is stale

Each service's app is composed with default settings (nothing connects); every broker it made
(`openv_infra.kafka.CREATED_BROKERS`) contributes its subscribers and declared publishers.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from openv_bridge.config import Settings as BridgeSettings
from openv_bridge.main import create_app as bridge_app
from openv_gateway.config import Settings as GatewaySettings
from openv_gateway.main import create_app as gateway_app
from openv_infra.kafka import CREATED_BROKERS
from openv_jobs.config import Settings as JobsSettings
from openv_jobs.main import create_app as jobs_app
from openv_storage.config import Settings as StorageSettings
from openv_storage.main import create_app as storage_app
from openv_webhooks.config import Settings as WebhooksSettings
from openv_webhooks.main import create_app as webhooks_app

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"


def document() -> dict[str, Any]:
    # Defaults only: the document must not depend on who generates it.
    for name in [n for n in os.environ if n.startswith("OPENV_")]:
        del os.environ[name]
    gateway_app(GatewaySettings())
    jobs_app(JobsSettings())
    bridge_app(BridgeSettings())
    storage_app(StorageSettings())
    webhooks_app(WebhooksSettings())
    spec = AsyncAPI(
        *CREATED_BROKERS,
        title="OpenV events",
        version="1.0.0",
        description="Commands, video events and facts exchanged by the OpenV services over Kafka.",
    )
    result: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return result


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render(document())
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT} is stale: run scripts/asyncapi.py", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
