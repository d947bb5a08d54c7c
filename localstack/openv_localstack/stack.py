"""The whole local system: embedded Postgres, Tansu, SeaweedFS, the RunPod simulator (or a
real RunPod endpoint, see realrunpod.py) and the five services, each a child process on
127.0.0.1, all data under one folder. `supervise()` restarts what crashes (supervisor.py);
`stack.json` in that folder records every pid for `status`, `down` and a later `up` (state.py)."""

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from openv_contracts import topics
from openv_localstack.ports import free_port
from openv_localstack.processes import ManagedProcess
from openv_localstack.realrunpod import RealRunPod, webhook_secret
from openv_localstack.servers import EmbeddedPostgres, SeaweedS3, TansuBroker
from openv_localstack.service_processes import (
    MIGRATED,
    run_migrations,
    service_process,
    simulator_process,
    wait_healthy,
    wait_ready,
)
from openv_localstack.state import StackState, record, remove_state, write_state
from openv_localstack.supervisor import Supervisor
from openv_localstack.tokens import LOCAL_JWT_SECRET

S3_ACCESS_KEY = "openv-local"
S3_SECRET_KEY = "openv-local-secret-key"  # noqa: S105 (local stack only; production reads a Secret)
BUCKET = "openv-videos"
RUNPOD_API_KEY = "openv-local-runpod-key"
SERVICES = ("jobs", "runpod-bridge", "storage", "webhooks", "gateway")
SERVERS = ("postgres", "kafka", "s3")
#: The services with a database of their own (the others connect to none).
DATABASES = {"jobs": "openv_jobs", "runpod-bridge": "openv_bridge", "webhooks": "openv_webhooks"}
BrokerStorage = Literal["s3", "memory"]
BROKER_STORAGES: tuple[str, ...] = get_args(BrokerStorage)


@dataclass
class StackOptions:
    root: Path
    gateway_port: int | None = None
    #: How long a simulated render takes (seconds).
    sim_duration_s: float = 1.5
    sim_queue_s: float = 0.2
    #: Extra environment for every service (e.g. OPENV_DECISION_WAIT_S).
    service_env: dict[str, str] = field(default_factory=dict)
    sim_env: dict[str, str] = field(default_factory=dict)
    #: A real RunPod endpoint instead of the simulator: none is started, and the user's
    #: OPENV_RUNPOD_* / OPENV_WEBHOOK_BASE_URL reach the services unchanged.
    runpod: RealRunPod | None = None
    #: Fixed ports for what a tunnel forwards to (the bridge's webhook, S3); None = any free.
    bridge_port: int | None = None
    s3_port: int | None = None
    #: Where the broker keeps topics and committed offsets: "memory" (lost when the broker
    #: restarts) or "s3" (the stack's SeaweedFS, bucket `tansu`: survives a restart, but
    #: falls behind under a steady video a second; docs/performance.md). Tests that restart
    #: the broker ask for "s3".
    broker_storage: BrokerStorage = "memory"


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        root = options.root.absolute()
        self.root = root
        self.postgres = EmbeddedPostgres(root / "postgres", free_port())
        self.s3 = SeaweedS3(
            root / "s3", options.s3_port or free_port(), S3_ACCESS_KEY, S3_SECRET_KEY
        )
        if options.broker_storage not in BROKER_STORAGES:
            raise ValueError(f"broker_storage must be one of {BROKER_STORAGES}")
        durable = options.broker_storage == "s3"
        self.kafka = TansuBroker(free_port(), root / "kafka", s3=self.s3 if durable else None)
        self.ports = {name: free_port() for name in SERVICES}
        if options.gateway_port:
            self.ports["gateway"] = options.gateway_port
        if options.bridge_port:
            self.ports["runpod-bridge"] = options.bridge_port
        #: Each service's admin port (/readyz, /metrics, internal docs).
        self.admin_ports = {name: free_port() for name in SERVICES}
        self.sim_port = free_port()
        self.processes: dict[str, ManagedProcess] = {}
        self.jwt_secret = LOCAL_JWT_SECRET
        #: Restarts crashed servers and services once `supervise()` is called; every
        #: deliberate stop and start below goes through its lock.
        self.supervisor = Supervisor(on_restart=lambda _: self.write_state())

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def simulated(self) -> bool:
        """True when the RunPod simulator stands in for RunPod."""
        return self.options.runpod is None

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def url_of(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def admin_url_of(self, service: str) -> str:
        return f"http://127.0.0.1:{self.admin_ports[service]}"

    def service_env(self, service: str) -> dict[str, str]:
        db = DATABASES.get(service, "postgres")
        env = {
            # Local development credentials are allowed here and nowhere else.
            "OPENV_ENV": "local",
            "OPENV_HOST": "127.0.0.1",
            "OPENV_PORT": str(self.ports[service]),
            "OPENV_ADMIN_PORT": str(self.admin_ports[service]),
            "OPENV_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "OPENV_DATABASE_URL": self.postgres.dsn_for(db),
            "OPENV_S3_ENDPOINT": self.s3.endpoint,
            "OPENV_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "OPENV_S3_SECRET_KEY": S3_SECRET_KEY,
            "OPENV_S3_BUCKET": BUCKET,
            "OPENV_JWT_SECRET": self.jwt_secret,
            # The web app's "sign in as" form (the gateway allows it in local mode only).
            "OPENV_LOCAL_SIGN_IN": "true",
            "OPENV_JOBS_URL": self.url_of("jobs"),
            "OPENV_WEBHOOKS_URL": self.url_of("webhooks"),
            # Client apps' webhooks may be on this machine, over plain HTTP (local mode only).
            "OPENV_CLIENT_WEBHOOK_ALLOW_HTTP": "true",
            "OPENV_CLIENT_WEBHOOK_ALLOW_PRIVATE_HOSTS": "true",
            **self._runpod_env(service),
            # Spans as JSON lines under the stack folder, flushed every 0.2 s.
            "OPENV_TRACE_DIR": str(self.root / "traces"),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        return {**os.environ, **env, **self.options.service_env}

    def _runpod_env(self, service: str) -> dict[str, str]:
        real = self.options.runpod
        if real is not None:
            # The user's endpoint, key (from their environment) and public webhook URL; the
            # webhook is public, so the bridge signs its tokens with a secret of its own.
            secret = webhook_secret(self.root, os.environ) if service == "runpod-bridge" else {}
            return {**real.service_env(), **secret}
        return {
            "OPENV_RUNPOD_BASE_URL": f"{self.sim_url}/v2",
            "OPENV_RUNPOD_API_KEY": RUNPOD_API_KEY,
            "OPENV_WEBHOOK_BASE_URL": self.url_of("runpod-bridge"),
        }

    def start(self) -> None:
        """Start everything in dependency order; on any failure stop what was started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self.postgres.start()
        for database in DATABASES.values():
            self.postgres.create_database(database)
        # S3 first: a durable broker keeps its topics there.
        self.s3.start()
        self.s3.ensure_bucket(BUCKET)
        self.kafka.start()
        self.kafka.create_topics(topics.DEFAULT_PARTITIONS)
        if self.simulated:
            self._start_simulator()
        self._run_migrations()
        for service in SERVICES:
            self._start_service(service)
        for service in SERVICES:
            self._wait_ready(service)
        for name in [*SERVERS, *self.processes]:
            self._watch(name)
        self.write_state()

    def supervise(self) -> None:
        """Restart any server or service that exits while it should be running, with backoff."""
        self.supervisor.start()

    def _watch(self, name: str) -> None:
        if name in SERVERS:
            server = self.server(name)
            self.supervisor.watch(name, lambda: server.process, self._starter(name))
        else:
            self.supervisor.watch(name, lambda: self.processes.get(name), self._starter(name))

    def _starter(self, name: str) -> Callable[[], None]:
        """What starts `name` (a server, the simulator or a service) again."""
        if name in SERVERS:
            return lambda: self._start_server(name)
        if name == "runpod-sim":
            return self._spawn_simulator
        return lambda: self._start_service(name)

    def write_state(self) -> None:
        """Record every live pid (with its start time), port and URL in `<root>/stack.json`."""
        health = {
            "postgres": f"tcp://127.0.0.1:{self.postgres.port}",
            "kafka": f"tcp://{self.kafka.bootstrap}",
            "s3": f"{self.s3.url}/healthz",
            "runpod-sim": f"{self.sim_url}/healthz",
            **{service: f"{self.url_of(service)}/healthz" for service in SERVICES},
        }
        with self.supervisor.lock:  # self.processes changes under this lock
            procs = [(name, self.server(name).process) for name in SERVERS]
            procs += list(self.processes.items())
        recorded = [
            record(
                name,
                proc.pid,
                stop_signal=proc.stop_signal,
                restarts=self.supervisor.restarts(name),
                health=health.get(name),
            )
            for name, proc in procs
            if proc is not None and proc.pid is not None and proc.running
        ]
        urls = {name: self.url_of(name) for name in SERVICES}
        if self.simulated:
            urls["runpod-sim"] = self.sim_url
        state = StackState(
            record("owner", os.getpid(), stop_signal=signal.SIGTERM),
            tuple(recorded),
            self.gateway_url,
            urls,
        )
        write_state(self.root, state)

    def _start_simulator(self) -> None:
        self._spawn_simulator()
        wait_healthy("runpod-sim", self.sim_url, self.processes["runpod-sim"])

    def _spawn_simulator(self) -> None:
        env = {
            **os.environ,
            "RUNPOD_SIM_API_KEY": RUNPOD_API_KEY,
            "RUNPOD_SIM_HOST": "127.0.0.1",
            "RUNPOD_SIM_PORT": str(self.sim_port),
            "RUNPOD_SIM_DEFAULT_DURATION_S": str(self.options.sim_duration_s),
            "RUNPOD_SIM_DEFAULT_QUEUE_S": str(self.options.sim_queue_s),
            **self.options.sim_env,
        }
        proc = simulator_process(env, self.root / "logs")
        proc.start()
        self.processes["runpod-sim"] = proc

    def _run_migrations(self) -> None:
        """`python -m <service> migrate` for each service with a database, side by side."""
        envs = {service: self.service_env(service) for service in MIGRATED}
        run_migrations(envs, self.root / "logs")

    def _start_service(self, service: str) -> None:
        proc = service_process(service, self.service_env(service), self.root / "logs")
        proc.start()
        self.processes[service] = proc

    def _wait_ready(self, service: str) -> None:
        """Alive on its port, then ready (its dependencies answer) on its admin port."""
        process = self.processes[service]
        wait_ready(service, self.url_of(service), self.admin_url_of(service), process)

    def stop(self) -> None:
        """Stop everything this stack started, services first, by their own pids."""
        self.supervisor.stop()
        for name in [*reversed(SERVICES), "runpod-sim"]:
            proc = self.processes.pop(name, None)
            if proc is not None:
                proc.stop()
        for server in (self.kafka, self.s3, self.postgres):  # the broker may write to S3
            server.stop()
        remove_state(self.root)

    def server(self, name: str) -> EmbeddedPostgres | TansuBroker | SeaweedS3:
        """One of the stack's servers by name: "postgres", "kafka" or "s3"."""
        servers: dict[str, EmbeddedPostgres | TansuBroker | SeaweedS3] = {
            "postgres": self.postgres,
            "kafka": self.kafka,
            "s3": self.s3,
        }
        return servers[name]

    def stop_server(self, name: str) -> None:
        """Stop one server (an outage of Postgres, the broker or S3); ports stay reserved.

        The supervisor leaves it stopped until `start_server`."""
        self._take_down(name)

    def start_server(self, name: str) -> None:
        """Start a stopped server on its old port, with its topics or bucket in place."""
        self._bring_up(name)

    def _start_server(self, name: str) -> None:
        self.server(name).start()
        if name == "kafka":
            self.kafka.create_topics(topics.DEFAULT_PARTITIONS)
        elif name == "s3":
            self.s3.ensure_bucket(BUCKET)

    def restart_service(self, service: str) -> None:
        self.stop_service(service)
        time.sleep(0.1)
        self.start_service(service)

    def stop_service(self, service: str) -> None:
        """Stop one service (an outage); the supervisor leaves it stopped until `start_service`."""
        self._take_down(service)

    def start_service(self, service: str) -> None:
        self._bring_up(service)
        self._wait_ready(service)

    def _take_down(self, name: str) -> None:
        """Stop a server or service; the supervisor leaves it stopped until `_bring_up`."""
        with self.supervisor.lock:
            self.supervisor.release(name)
            if name in SERVERS:
                self.server(name).stop()
            else:
                self.processes.pop(name).stop()
        self.write_state()

    def _bring_up(self, name: str) -> None:
        """Start a server or service again, and watch it."""
        with self.supervisor.lock:
            self._starter(name)()
            self._watch(name)
        self.write_state()
