"""Base class and registry of every message type that crosses a service boundary."""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

_REGISTRY: dict[str, type["Message"]] = {}


class Message(BaseModel):
    """A command, event or fact. `TYPE` names it on the wire; `VERSION` is its schema version.

    Unknown fields are ignored so a newer producer does not break an older consumer.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        type_name = cls.__dict__.get("TYPE")
        if type_name is None:
            return
        if type_name in _REGISTRY:
            raise TypeError(f"message type {type_name!r} registered twice")
        _REGISTRY[type_name] = cls


class UnknownMessageType(LookupError):
    """The envelope names a type no model is registered for."""


def message_class(type_name: str) -> type[Message]:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownMessageType(type_name) from None
