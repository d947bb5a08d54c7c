"""How deep a JSON text nests, answered without parsing it: both public doors (the gateway's
API and the bridge's RunPod webhook) refuse deep bodies before a parser recurses into them."""

import operator
import re
from itertools import accumulate, repeat
from typing import Final

# A JSON string with its escapes, or what is left of an unterminated one (possessive: linear
# time on any input, e.g. a body of `"\\"\\"...`).
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))
# An opening bracket is a step of +1, a closing one of -1 (after subtracting 1 below).
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def nesting_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether JSON `body` opens more than `max_depth` arrays/objects inside each other.

    A lexical scan, so it also answers for bodies that are not valid JSON (the parser then
    refuses them); it never recurses, unlike a parser on `[[[[...`, and runs in C loops."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    brackets = _STRING.sub(b"", body).translate(_STEPS, _NOT_BRACKETS)
    depths = accumulate(map(operator.sub, brackets, repeat(1)))
    return max(depths, default=0) > max_depth
