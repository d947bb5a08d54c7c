"""Upcasters: turn a stored older schema version of a message's data into the next version.

Register one function per (type, from_version); reading applies them in sequence until the
data reaches the model's current `VERSION`.
"""

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


def upcast(type_name: str, version: int, target: int, data: Data) -> Data:
    while version < target:
        try:
            step = _UPCASTERS[(type_name, version)]
        except KeyError:
            raise ValueError(f"no upcaster for {type_name} v{version}") from None
        data = step(data)
        version += 1
    return data
