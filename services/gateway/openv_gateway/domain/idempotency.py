"""Idempotent creates without extra storage: the key names the video.

`video_id = uuid5(NAMESPACE, json([user, key]))`, so a retry with the same key addresses the same
video, and the jobs service, which ignores a second request for an existing video id, makes
exactly one job. Without an explicit seed, the seed is derived from the key too, so a retry
has the same body. A different body under the same key is detected by comparing the stored
video's prompt and parameters with the request's (and the webhook its first event recorded
with the request's: `VideosService.create`).
"""

import hashlib
import json
import re
from typing import Final
from uuid import UUID, uuid5

from openv_contracts.video import VideoParams

NAMESPACE: Final = UUID("6f1d4a52-3c2e-4f43-9b8e-0a6e1f6c9d21")
MAX_KEY_LENGTH: Final = 255
#: Printable ASCII without spaces at either end (keys are usually UUIDs or ULIDs).
KEY_PATTERN: Final = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"
_KEY = re.compile(KEY_PATTERN)


def valid_key(key: str) -> bool:
    return len(key) <= MAX_KEY_LENGTH and _KEY.fullmatch(key) is not None


def _name(user_id: str, key: str) -> str:
    # Unambiguous even though user ids may contain ':' (("a:b", "c") vs ("a", "b:c")).
    return json.dumps([user_id, key])


def video_id_for(user_id: str, key: str) -> UUID:
    return uuid5(NAMESPACE, _name(user_id, key))


def seed_for(user_id: str, key: str) -> int:
    digest = hashlib.sha256(f"openv-seed:{_name(user_id, key)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def same_request(stored_prompt: str, stored: VideoParams, prompt: str, params: VideoParams) -> bool:
    return stored_prompt == prompt and stored == params
