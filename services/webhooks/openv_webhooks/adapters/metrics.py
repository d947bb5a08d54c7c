"""The webhooks service's Prometheus metrics (served on /metrics with the shared HTTP ones)."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "openv_webhooks_deliveries_total",
    "Webhook deliveries finished, by outcome (delivered, failed: no 2xx within the window)",
    ["outcome"],
)
ATTEMPTS = Counter(
    "openv_webhooks_attempts_total",
    "Webhook delivery attempts, by result (delivered, failed)",
    ["result"],
)
ATTEMPT_SECONDS = Histogram(
    "openv_webhooks_attempt_seconds",
    "Latency of one webhook delivery attempt",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BACKLOG = Gauge(
    "openv_webhooks_backlog", "Webhook deliveries pending (not yet delivered or failed)"
)
OLDEST_PENDING = Gauge(
    "openv_webhooks_oldest_pending_seconds", "Age of the oldest pending webhook delivery"
)


class PrometheusDeliveryMetrics:
    """`DeliveryMetrics` on the process's Prometheus registry."""

    def attempted(self, result: str, latency_s: float) -> None:
        ATTEMPTS.labels(result).inc()
        ATTEMPT_SECONDS.observe(latency_s)

    def finished(self, outcome: str) -> None:
        DELIVERIES.labels(outcome).inc()

    def backlog(self, pending: int, oldest_age_s: float) -> None:
        BACKLOG.set(pending)
        OLDEST_PENDING.set(oldest_age_s)
