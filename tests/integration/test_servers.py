"""The local stack's servers are real: real protocols, real auth, data on disk, clean stops."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import signal
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from minio.error import S3Error

from openv_localstack.ports import free_port
from openv_localstack.processes import ManagedProcess, ProcessExitedError, wait_until
from openv_localstack.servers import EmbeddedPostgres, SeaweedS3, TansuBroker

pytestmark = pytest.mark.integration

S3_ACCESS_KEY = "openv-test"
S3_SECRET_KEY = "openv-test-secret-0123456789"


def accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listening_ports(pid: int) -> set[tuple[str, int]]:
    conns = psutil.Process(pid).net_connections(kind="inet")
    return {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[TansuBroker]:
    broker = TansuBroker(free_port(), tmp_path / "tansu")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def seaweed(tmp_path: Path) -> Iterator[SeaweedS3]:
    s3 = SeaweedS3(tmp_path / "s3", free_port(), S3_ACCESS_KEY, S3_SECRET_KEY)
    s3.start()
    try:
        yield s3
    finally:
        s3.stop()


# --------------------------------------------------------------------------- processes


def test_stop_escalates_to_sigkill_and_is_idempotent(tmp_path: Path) -> None:
    # The log starts with the argv, so the marker is assembled at run time.
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + (
        "print('ignoring' + '-sigterm', flush=True); time.sleep(60)"
    )
    proc = ManagedProcess("stubborn", [sys.executable, "-c", stubborn], None, tmp_path / "s.log")
    proc.start()
    wait_until(lambda: "ignoring-sigterm" in proc.tail(), 10, "stubborn ready", proc)
    started = time.monotonic()
    proc.stop(timeout=0.5)
    assert time.monotonic() - started < 5
    assert not proc.running
    assert proc.returncode == -signal.SIGKILL
    assert proc.pid is not None and not pid_alive(proc.pid)
    proc.stop()  # again: no error


def test_wait_until_reports_exit_code_log_and_timeout(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "crasher", ["sh", "-c", "echo boom-marker; exit 3"], None, tmp_path / "c.log"
    )
    proc.start()
    with pytest.raises(ProcessExitedError) as exited:
        wait_until(lambda: False, 10, "the impossible", proc)
    assert "code 3" in str(exited.value)
    assert "boom-marker" in str(exited.value)
    assert "the impossible" in str(exited.value)

    def failing_check() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(TimeoutError, match=r"widget.*nobody home"):
        wait_until(failing_check, 0.2, "widget")


def test_start_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with pytest.raises(RuntimeError, match="in use"):
            TansuBroker(busy, tmp_path / "t").start()
        with pytest.raises(RuntimeError, match="in use"):
            EmbeddedPostgres(tmp_path / "pg", busy).start()


# --------------------------------------------------------------------------- Postgres


async def test_postgres_is_real_durable_and_stops(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    try:
        assert pg.running and pg.pid is not None
        assert pg.dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        pg.create_database("openv_test")
        pg.create_database("openv_test")  # idempotent
        conn = await asyncpg.connect(pg.dsn_for("openv_test"))
        try:
            assert (await conn.fetchval("SHOW server_version")).startswith("18.")
            assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
            await conn.execute("CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL)")
            await conn.executemany("INSERT INTO jobs VALUES ($1, $2)", [(1, "queued"), (2, "done")])
            rows = await conn.fetch("SELECT id, state FROM jobs ORDER BY id")
            assert [tuple(r) for r in rows] == [(1, "queued"), (2, "done")]
        finally:
            await conn.close()

        pid = pg.pid
        pg.stop()
        assert not pg.running
        assert not pid_alive(pid)
        assert not accepts(pg.port)
        with pytest.raises(OSError):
            await asyncpg.connect(pg.dsn, timeout=2)

        pg.start()  # same data dir: no initdb, data still there
        assert pg.pid != pid
        conn = await asyncpg.connect(pg.dsn_for("openv_test"))
        try:
            rows = await conn.fetch("SELECT id, state FROM jobs ORDER BY id")
            assert [tuple(r) for r in rows] == [(1, "queued"), (2, "done")]
        finally:
            await conn.close()
    finally:
        pg.stop()
    assert not accepts(pg.port)


# --------------------------------------------------------------------------- Tansu


async def test_tansu_topics_keys_and_consumer_group(tansu: TansuBroker) -> None:
    assert tansu.bootstrap == f"127.0.0.1:{tansu.port}"
    assert listening_ports(tansu.pid or 0) == {("127.0.0.1", tansu.port)}
    tansu.create_topics({"events": 3})
    tansu.create_topics({"events": 3, "other": 1})  # existing topic is fine

    admin = AIOKafkaAdminClient(bootstrap_servers=tansu.bootstrap)
    await admin.start()
    try:
        assert {"events", "other"} <= set(await admin.list_topics())
        [events] = await admin.describe_topics(["events"])
        assert len(events["partitions"]) == 3
    finally:
        await admin.close()

    keys = [f"job-{i}" for i in range(6)]
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap)
    await producer.start()
    try:
        for seq in range(3):
            for key in keys:
                await producer.send_and_wait("events", f"{key}:{seq}".encode(), key=key.encode())
    finally:
        await producer.stop()

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            "events",
            bootstrap_servers=tansu.bootstrap,
            group_id="openv-test",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            # Tansu lets a new member in only after the previous one's session expires.
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        )

    async def drain(c: AIOKafkaConsumer, expected: int) -> list[tuple[str, int, str]]:
        got: list[tuple[str, int, str]] = []
        deadline = time.monotonic() + 15
        while len(got) < expected and time.monotonic() < deadline:
            batches = await c.getmany(timeout_ms=200)
            for records in batches.values():
                got += [(r.key.decode(), r.partition, r.value.decode()) for r in records]
        return got

    first = consumer()
    await first.start()
    try:
        got = await drain(first, 18)
        await first.commit()
    finally:
        await first.stop()
    assert len(got) == 18
    by_key: dict[str, list[str]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for key, partition, value in got:
        by_key[key].append(value)
        partitions[key].add(partition)
    assert by_key == {key: [f"{key}:{seq}" for seq in range(3)] for key in keys}  # per-key order
    assert all(len(p) == 1 for p in partitions.values())  # a key sticks to one partition
    assert len(set().union(*partitions.values())) > 1  # keys really spread over partitions

    # The group's committed offsets hold: a new member sees only what came after.
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("events", b"late", key=b"job-0")
    finally:
        await producer.stop()
    second = consumer()
    await second.start()
    try:
        later = await drain(second, 1)
        extra = await second.getmany(timeout_ms=300)  # and nothing else shows up
        later += [("", 0, r.value.decode()) for records in extra.values() for r in records]
    finally:
        await second.stop()
    assert [value for _, _, value in later] == ["late"]

    pid = tansu.pid
    tansu.stop()
    assert pid is not None and not pid_alive(pid)
    assert not accepts(tansu.port)


# --------------------------------------------------------------------------- SeaweedFS


def test_s3_objects_presigned_put_and_real_auth(seaweed: SeaweedS3) -> None:
    assert seaweed.endpoint == f"127.0.0.1:{seaweed.port}"
    seaweed.ensure_bucket("videos")
    seaweed.ensure_bucket("videos")  # idempotent
    client = seaweed.client()
    client.put_object("videos", "a/clip.bin", io.BytesIO(b"frame-data"), 10)
    assert client.get_object("videos", "a/clip.bin").read() == b"frame-data"

    body = os.urandom(64 * 1024)
    url = client.presigned_put_object("videos", "up/direct.mp4", expires=timedelta(minutes=5))
    response = httpx.put(url, content=body)
    assert response.status_code == 200, response.text
    assert client.stat_object("videos", "up/direct.mp4").size == len(body)
    assert client.get_object("videos", "up/direct.mp4").read() == body

    tampered = url.replace("up%2Fdirect.mp4", "up%2Fother.mp4").replace(
        "up/direct.mp4", "up/other.mp4"
    )
    assert tampered != url
    assert httpx.put(tampered, content=b"x").status_code == 403

    with pytest.raises(S3Error) as denied:
        seaweed.client(secret_key="not-the-secret").list_buckets()
    assert denied.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as missing:
        client.stat_object("videos", "nope")
    assert missing.value.code == "NoSuchKey"


def test_s3_two_instances_side_by_side_and_data_survives_restart(tmp_path: Path) -> None:
    a = SeaweedS3(tmp_path / "a", free_port(), S3_ACCESS_KEY, S3_SECRET_KEY)
    b = SeaweedS3(tmp_path / "b", free_port(), S3_ACCESS_KEY, S3_SECRET_KEY)
    try:
        a.start()
        b.start()
        assert set(a.ports.values()).isdisjoint(b.ports.values())
        for s3 in (a, b):
            # Every port it opened is one we chose, on loopback only (no 8888, 9333, ...).
            assert s3.pid is not None
            # Components start at their own pace, so some chosen ports may not listen yet;
            # what matters is that nothing listens outside the chosen set.
            opened = listening_ports(s3.pid)
            assert ("127.0.0.1", s3.port) in opened
            assert opened <= {("127.0.0.1", p) for p in s3.ports.values()}
            s3.ensure_bucket("shared-name")
            me = s3.endpoint.encode()
            s3.client().put_object("shared-name", "who", io.BytesIO(me), len(me))
        assert a.client().get_object("shared-name", "who").read() == a.endpoint.encode()
        assert b.client().get_object("shared-name", "who").read() == b.endpoint.encode()

        old_pid = a.pid
        assert old_pid is not None
        a.stop()
        assert not pid_alive(old_pid)
        assert not any(accepts(p) for p in a.ports.values())
        assert b.client().bucket_exists("shared-name")  # b unaffected

        a.start()  # same data dir: the object is still there
        assert a.pid != old_pid
        assert a.client().get_object("shared-name", "who").read() == a.endpoint.encode()
    finally:
        a.stop()
        b.stop()
    assert not accepts(a.port) and not accepts(b.port)


def test_free_ports_are_outside_the_range_outgoing_connections_use() -> None:
    """A port from the kernel's ephemeral range can be taken by any outgoing connection
    between being chosen and being bound (or while a server restarts on it)."""
    from pathlib import Path

    from openv_localstack.ports import free_port

    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(100)]
    assert len(set(ports)) == len(ports)  # never the same one twice
    assert not [p for p in ports if low <= p <= high]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another user")
def test_postgres_as_root_runs_from_a_private_folder_without_changing_its_mode(
    tmp_path: Path,
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    modes = {path: path.stat().st_mode for path in (private, *private.parents)}
    pg = EmbeddedPostgres(private / "repo" / ".stack" / "postgres", free_port())
    with pg:
        assert asyncio.run(query_one(pg.dsn)) == 1
        # The cluster and binaries live where the postgres user reaches them.
        assert pg.pgdata.is_symlink()
        assert not pg.pgdata.resolve().is_relative_to(private)
        assert not pg.bin_dir.is_relative_to(Path(sys.prefix))
    assert {path: path.stat().st_mode for path in modes} == modes
    # Once its data folder is gone, the next start as root deletes the cluster left outside.
    outside = pg.pgdata.resolve().parent
    shutil.rmtree(private)
    with EmbeddedPostgres(tmp_path / "other", free_port()) as other:
        assert asyncio.run(query_one(other.dsn)) == 1
    assert not outside.exists()


async def query_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()
