"""User ids (a token's `sub`) as path segments of internal URLs and object keys.

The gateway only admits ids that are plain segments already (`is_user_id`); everything that
puts an id into a URL or key still encodes it (`path_segment`), so an id from anywhere else
can never add a segment (`/`), climb one (`..`) or smuggle an escape (`%`).
"""

import re
from urllib.parse import quote

#: Letters, digits and `_.@:-` (Supabase's ids are UUIDs), at most 128 characters.
_USER_ID = re.compile(r"[A-Za-z0-9_.@:-]{1,128}")


def is_user_id(text: str) -> bool:
    """Whether `text` is an acceptable user id: a plain segment, not made of dots only
    (`.` and `..` are removed or climb when a URL or key is normalised)."""
    return _USER_ID.fullmatch(text) is not None and text.strip(".") != ""


def path_segment(text: str) -> str:
    """`text` percent-encoded as exactly one path segment; unchanged for every user id
    `is_user_id` accepts, so keys and URLs built from those stay what they were."""
    if text and text.strip(".") == "":
        return "%2E" * len(text)
    return quote(text, safe="@:")
