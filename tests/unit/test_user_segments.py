"""User ids as path segments: what the gateway admits, and what keys and URLs make of any id."""

from uuid import uuid4

import pytest

from openv_contracts.segments import is_user_id, path_segment
from openv_contracts.storage_keys import video_output_key, video_prefix
from openv_storage.domain.keys import is_video_prefix, key_belongs_to, parse_video_key

VID = uuid4()
HOSTILE = [".", "..", "...", "../bob", "a/b", "/", "a%2Fb", "%2E%2E", "a\x00b", "a\nb", "a?b#c"]


@pytest.mark.parametrize(
    "user_id", ["alice", "d0c5e6f1-0000-4000-8000-000000000001", "a@b.c", "x:y_z-1", "...x"]
)
def test_admitted_ids_stay_as_they_are(user_id: str) -> None:
    assert is_user_id(user_id)
    assert path_segment(user_id) == user_id
    assert video_prefix(user_id, VID) == f"videos/{user_id}/{VID}/"


@pytest.mark.parametrize("user_id", HOSTILE)
def test_no_id_escapes_its_segment_of_a_key(user_id: str) -> None:
    assert not is_user_id(user_id)
    prefix = video_prefix(user_id, VID)
    # Exactly one plain segment between `videos/` and the video id: the storage service
    # accepts it as that video's prefix and nothing broader.
    assert prefix.split("/")[2] == str(VID), prefix
    assert is_video_prefix(prefix, VID), prefix
    assert video_output_key(user_id, VID) == f"{prefix}video.mp4"
    # The encoded segment is not an id the gateway admits: no admitted user owns the key.
    assert parse_video_key(video_output_key(user_id, VID)) is None
    assert not key_belongs_to(video_output_key(user_id, VID), VID, "alice")
