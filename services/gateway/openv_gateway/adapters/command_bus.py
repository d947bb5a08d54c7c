"""Publishing commands to the jobs service, keyed by user id so one user's are decided in order."""

from faststream.kafka import KafkaBroker

from openv_contracts import Envelope, Message, topics
from openv_infra.publishing import publish


class CommandUnavailable(Exception):
    """The broker did not take the command."""


class CommandBus:
    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def send(self, command: Message, user_id: str) -> Envelope:
        envelope = Envelope.wrap(command, user_id=user_id)
        try:
            await publish(self.broker, topics.COMMANDS, envelope, key=user_id)
        except Exception as exc:  # any broker failure means "not sent"
            raise CommandUnavailable(str(exc)) from exc
        return envelope
