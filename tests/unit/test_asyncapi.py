"""The committed AsyncAPI document is the one the services' brokers generate."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_asyncapi_document_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/asyncapi.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_asyncapi_document_describes_every_topic_and_consumer() -> None:
    doc = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    channels = set(doc["channels"])
    for topic, consumers in {
        "openv.commands": ["Jobs"],
        "openv.video-events": ["RunpodBridge", "Storage"],
        "openv.runpod-events": ["Jobs", "Storage"],
        "openv.storage-events": ["Jobs"],
    }.items():
        for consumer in consumers:
            assert f"{topic}:{consumer}OnMessage" in channels
    assert "Envelope" in doc["components"]["schemas"]
