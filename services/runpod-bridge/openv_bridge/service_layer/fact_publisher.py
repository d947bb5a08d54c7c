"""Publishing a video's facts: each in an envelope that names the submission's user, its
correlation and its cause (the `VideoAccepted` event), under a deterministic event id
(`domain.submissions.FactIds`), so a fact published twice is recorded once.

Publishing comes before recording: a fact is published (and acknowledged by Kafka) before the
record says it was, so a crash in between repeats the fact instead of losing it.
"""

from uuid import UUID

from openv_bridge.domain.record import Submission
from openv_bridge.domain.submissions import FactIds
from openv_bridge.service_layer.ports import PublishFact
from openv_contracts import Envelope, Message
from openv_contracts.facts import RunPodJobSubmitted


class FactPublisher:
    def __init__(self, publish_fact: PublishFact) -> None:
        self.publish_fact = publish_fact

    async def publish(self, sub: Submission, fact: Message, event_id: UUID) -> None:
        await self.publish_fact(
            Envelope.wrap(
                fact,
                user_id=sub.user_id,
                event_id=event_id,
                correlation_id=sub.correlation_id,
                causation_id=sub.accepted_event_id,
            )
        )

    async def submitted(self, sub: Submission, job_id: str) -> None:
        fact = RunPodJobSubmitted(video_id=sub.video_id, runpod_job_id=job_id)
        await self.publish(sub, fact, FactIds(sub.video_id).of("submitted", job_id))
