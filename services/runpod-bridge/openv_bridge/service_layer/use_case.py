"""What every use case of the bridge works with: its settings, the record of submissions,
RunPod, the bucket and the publisher of facts. The use cases (`cancelling`, `attempts`,
`submitting`, `job_reports`) are dataclasses extending it with the other use cases they call.
"""

from dataclasses import dataclass

from openv_bridge.config import Settings
from openv_bridge.service_layer.fact_publisher import FactPublisher
from openv_bridge.service_layer.ports import Objects, RunPod, SubmissionRecords


@dataclass(frozen=True)
class UseCase:
    settings: Settings
    runpod: RunPod
    submissions: SubmissionRecords
    objects: Objects
    facts: FactPublisher
