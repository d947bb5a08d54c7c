"""The contracts between OpenV services: versioned message models (commands, events, facts),
the envelope that carries them, the topic names, the internal query API's answers and the
object-key scheme. A contract changes only by a new version (see docs/architecture.md).

Importing this package registers every message type, so `Envelope.message()` can resolve any.
"""

from openv_contracts import commands, events, facts
from openv_contracts.base import Message, UnknownMessageType, message_class
from openv_contracts.envelope import Envelope

__all__ = [
    "Envelope",
    "Message",
    "UnknownMessageType",
    "commands",
    "events",
    "facts",
    "message_class",
]
