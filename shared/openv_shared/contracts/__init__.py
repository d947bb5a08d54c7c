"""Versioned message models (commands, events, facts) and the envelope that carries them.

Importing this package registers every message type, so `Envelope.message()` can resolve any.
"""

from openv_shared.contracts import commands, events, facts
from openv_shared.contracts.base import Message, UnknownMessageType, message_class
from openv_shared.contracts.envelope import Envelope

__all__ = [
    "Envelope",
    "Message",
    "UnknownMessageType",
    "commands",
    "events",
    "facts",
    "message_class",
]
