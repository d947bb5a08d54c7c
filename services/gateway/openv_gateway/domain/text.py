"""Which characters public free text may hold (prompts, cursors): pure checks for the schemas.

Text that enters the API becomes a fact in the event log (Postgres `jsonb` refuses NUL and
lone surrogates, and one refused message used to stop a whole partition), a prompt sent to
RunPod and a line in logs. So the door refuses what no human writes:

* C0 and C1 control characters and DEL (U+0000-U+001F, U+007F-U+009F), except tab, line
  feed and carriage return: a prompt pasted from a text area may be several lines (CR LF
  from some clients), and these are plain whitespace to the model's tokenizer;
* lone surrogates (U+D800-U+DFFF, JSON `"\\ud800"`), which are not characters at all;
* the 66 Unicode non-characters (U+FDD0-U+FDEF and U+xFFFE/U+xFFFF of every plane).
"""

import re
from typing import Final

#: Kept in free text: tab, line feed, carriage return.
KEPT_CONTROLS: Final = "\t\n\r"

_NONCHARACTERS: Final = "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}-{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
_FORBIDDEN: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]"
)

#: The rule as an ECMA-262 pattern for the OpenAPI document (control characters only: a JSON
#: schema pattern cannot name lone surrogates; the description says the rest).
CONTROL_FREE_PATTERN: Final = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"

RULE: Final = (
    "No control characters (tab, line feed and carriage return excepted), lone surrogates "
    "or Unicode non-characters."
)


def forbidden_character(text: str) -> str | None:
    """Why `text` may not enter, naming the first forbidden character; None when it may."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    char = found.group()
    return (
        f"must not contain control characters, lone surrogates or non-characters "
        f"(U+{ord(char):04X} at position {found.start()})"
    )


def checked(text: str) -> str:
    """`text` itself when it may enter; else ValueError (pydantic reports it per field)."""
    reason = forbidden_character(text)
    if reason is not None:
        raise ValueError(reason)
    return text
