"""Prometheus figures of the gateway's live view, read from it at scrape time (nothing is
counted twice on the request path): how many videos it keeps and watches, and how often it had
to read a video from the jobs service (a miss, an event it could not fold, or the fallback
while the feed does not follow the topic)."""

from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openv_gateway.service_layer.live import LiveVideos


class _LiveCollector(Collector):
    def __init__(self) -> None:
        self.live: LiveVideos | None = None

    def collect(self) -> Iterator[Metric]:
        live = self.live
        if live is None:
            return
        yield CounterMetricFamily(
            "openv_gateway_video_loads",
            "Reads of a video from the jobs service by the gateway's live view",
            value=live.loads,
        )
        yield GaugeMetricFamily(
            "openv_gateway_known_videos",
            "Videos whose current state the gateway keeps",
            value=len(live.known),
        )
        yield GaugeMetricFamily(
            "openv_gateway_watched_videos",
            "Videos with a waiter or stream on this instance",
            value=live.watched,
        )
        yield GaugeMetricFamily(
            "openv_gateway_live_feed_following",
            "1 while the live feed follows the video-events topic (views are current)",
            value=1 if live.known.trusted else 0,
        )


_COLLECTOR = _LiveCollector()
REGISTRY.register(_COLLECTOR)


def expose(live: LiveVideos) -> None:
    """Report `live` (the one of the app being served) on /metrics."""
    _COLLECTOR.live = live
