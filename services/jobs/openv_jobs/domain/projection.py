"""One step of both projections for one recorded event: the live path and the rebuild share it,
which is why a rebuild gives exactly the live tables."""

from datetime import datetime

from openv_jobs.domain import usage as usage_rules
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState, evolve, start
from openv_shared.contracts.base import Message


def apply_event(
    state: VideoState | None, usage: Usage, event: Message, user_id: str, at: datetime
) -> tuple[VideoState, Usage]:
    """`at` is the event's recorded time."""
    new_state = start(event, user_id, at) if state is None else evolve(state, event, at)
    return new_state, usage_rules.apply(usage, state, event, at)
