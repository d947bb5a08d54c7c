"""The jobs service's Prometheus metrics (served on /metrics with the shared HTTP ones)."""

import logging
from collections import Counter

from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge

from openv_jobs.service_layer.recorder import RecordedEvent

log = logging.getLogger(__name__)

EVENTS_RECORDED = PromCounter("openv_jobs_events_recorded_total", "Events appended", ["type"])
DECISIONS = PromCounter(
    "openv_jobs_decisions_total", "Video requests decided", ["outcome"]
)  # accepted, or the rejection code
RELAY_LAG = Gauge("openv_jobs_relay_lag_events", "Events stored but not yet relayed")
PROJECTION_LAG = Gauge(
    "openv_jobs_projection_lag_events", "Events stored but not yet in the videos table"
)
VIDEOS = Gauge("openv_jobs_videos", "Videos by status (refreshed periodically)", ["status"])


def count(recorded: list[RecordedEvent]) -> None:
    # Counted per batch first: a labelled increment costs microseconds, a batch has hundreds.
    types = Counter(r.type for r in recorded)
    for type_name, n in types.items():
        EVENTS_RECORDED.labels(type_name).inc(n)
    if types["VideoAccepted"]:
        DECISIONS.labels("accepted").inc(types["VideoAccepted"])
    if types["VideoRejected"]:
        codes = Counter(
            str(r.envelope.data.get("code", "unknown"))
            for r in recorded
            if r.type == "VideoRejected"
        )
        for code, n in codes.items():
            DECISIONS.labels(code).inc(n)
