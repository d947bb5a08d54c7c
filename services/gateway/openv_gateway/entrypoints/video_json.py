"""The public JSON of each video state, encoded once.

Most reads are polls of a video that has not changed since the last one. Its answer is built
from the gateway's own view (a model the service made, not input to check), so it is encoded
straight to bytes once per state: the video's version and update time, and the presigned links
it carries (which `Playback` reuses for a while, so a completed video's bytes are reused too).
One entry per video, the least recently read dropped first. A page of the list is the videos'
bytes joined. The routes hand these bytes out as they are; their `response_model` still
documents them in the OpenAPI document.
"""

from collections import OrderedDict
from datetime import datetime
from uuid import UUID

import orjson

from openv_contracts.public_video import Links, present_with
from openv_contracts.queries import VideoPage, VideoView
from openv_contracts.video import VideoStatus
from openv_infra.playback import Playback

#: Videos whose latest answer is kept (a few KB each at most).
MAX_VIDEOS = 4096

_State = tuple[int, datetime, VideoStatus, Links]


class VideoJson:
    def __init__(self, playback: Playback, size: int = MAX_VIDEOS) -> None:
        self.playback = playback
        self.size = size
        self._encoded: OrderedDict[UUID, tuple[_State, bytes]] = OrderedDict()

    def encode(self, view: VideoView) -> bytes:
        """`view` as the public `Video` resource, in JSON."""
        presigned = self.playback.links(view)
        state: _State = (view.version, view.updated_at, view.status, presigned)
        known = self._encoded.get(view.id)
        if known is not None and known[0] == state:
            self._encoded.move_to_end(view.id)
            return known[1]
        video = present_with(view, presigned)
        encoded = video.__pydantic_serializer__.to_json(video)
        self._encoded[view.id] = (state, encoded)
        self._encoded.move_to_end(view.id)
        while len(self._encoded) > self.size:
            self._encoded.popitem(last=False)
        return encoded

    def encode_page(self, page: VideoPage) -> bytes:
        """A page of videos as the public `VideoList`, in JSON."""
        return b"".join(
            (
                b'{"data":[',
                b",".join(self.encode(view) for view in page.data),
                b'],"next_cursor":',
                orjson.dumps(page.next_cursor),
                b"}",
            )
        )
