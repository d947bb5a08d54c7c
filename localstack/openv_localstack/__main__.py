"""`python -m openv_localstack up` starts the whole system and restarts what crashes; `status`
and `down` report on and stop the stack of a data folder; `token USER_ID` prints a JWT."""

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from openv_localstack import realrunpod
from openv_localstack.control import StackRunningError, status_lines, stop_stack, stop_stale_stack
from openv_localstack.ports import free_port
from openv_localstack.realrunpod import RunPodConfigError, real_runpod_from, s3_public_problem
from openv_localstack.stack import BROKER_STORAGES, LocalStack, StackOptions
from openv_localstack.tokens import make_token


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _port_or_free(port: int) -> int:
    return port if _port_free(port) else free_port()


def stack_options(args: argparse.Namespace, env: Mapping[str, str]) -> StackOptions:
    """`up`'s options; raises RunPodConfigError for a real endpoint with missing pieces."""
    runpod = real_runpod_from(
        env,
        endpoint_id=args.runpod_endpoint,
        webhook_base_url=args.webhook_base_url,
        base_url=args.runpod_base_url,
    )
    options = StackOptions(
        root=Path(args.dir),
        gateway_port=_port_or_free(args.port),
        broker_storage=args.broker_storage,
    )
    if runpod is not None:
        # Tunnels point at fixed ports: keep the bridge and S3 where they were last time.
        options.runpod = runpod
        options.bridge_port = _port_or_free(realrunpod.BRIDGE_PORT)
        options.s3_port = _port_or_free(realrunpod.S3_PORT)
    return options


def runpod_lines(stack: LocalStack, env: Mapping[str, str]) -> str:
    """What `up` says about RunPod: the simulator, or what a real endpoint needs to reach."""
    real = stack.options.runpod
    if real is None:
        return f"  RunPod:    {stack.sim_url} (simulator)\n"
    base = real.base_url or "https://api.runpod.ai/v2 (the bridge's default)"
    lines = [
        f"  RunPod:    endpoint {real.endpoint_id} at {base} (real; no simulator)",
        f"  webhook:   RunPod must reach {real.webhook_base_url}/webhooks/runpod/<video-id>",
        f"             forward it to the bridge at {stack.url_of('runpod-bridge')}",
    ]
    public_s3 = env.get("OPENV_S3_PUBLIC_ENDPOINT") or stack.s3.endpoint
    lines.append(
        f"  WARNING:   the workers' presigned upload URLs point at the local S3 via "
        f"OPENV_S3_PUBLIC_ENDPOINT={public_s3}; RunPod's workers must reach it too"
    )
    if s3_public_problem(public_s3) is not None:
        lines.append(
            f"             ({public_s3} is not public: expose http://{stack.s3.endpoint} with "
            f"a tunnel and set OPENV_S3_PUBLIC_ENDPOINT to its host, or uploads will fail)"
        )
    return "".join(f"{line}\n" for line in lines)


def up(args: argparse.Namespace) -> None:
    try:
        options = stack_options(args, os.environ)
    except RunPodConfigError as exc:
        sys.exit(f"openv_localstack up: {exc}")
    stack = LocalStack(options)
    try:
        stop_stale_stack(stack.root, lambda line: print(line, flush=True))
    except StackRunningError as exc:
        sys.exit(f"openv_localstack up: {exc}")
    stopping = threading.Event()
    # Explicit handlers: a shell may start us with SIGINT ignored (background jobs).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    print(f"starting the OpenV stack; data and logs under {stack.root}", flush=True)
    try:
        stack.start()
        stack.supervise()
        kafka_storage = (
            f"durable: S3 bucket {stack.kafka.bucket}" if stack.kafka.durable else "in memory"
        )
        admin_ports = ", ".join(f"{name} {port}" for name, port in stack.admin_ports.items())
        print(
            f"\nOpenV is up.\n"
            f"  web app:   {stack.gateway_url}/  (open it in a browser; sign in as any user id)\n"
            f"  gateway:   {stack.gateway_url}  (OpenAPI: {stack.gateway_url}/docs)\n"
            f"  admin:     {admin_ports}  (/readyz, /metrics, internal /docs)\n"
            f"  token:     python -m openv_localstack token <user-id>\n"
            f"             (or: python3 dev.py token <user-id>)\n"
            f"  S3:        http://{stack.s3.endpoint}  bucket openv-videos\n"
            f"  Postgres:  {stack.postgres.dsn}\n"
            f"  Kafka:     {stack.kafka.bootstrap}  ({kafka_storage})\n"
            f"{runpod_lines(stack, os.environ)}"
            f"  logs:      {stack.root / 'logs'}\n"
            f"A crashed server or service is restarted (python3 dev.py status counts restarts).\n"
            f"Press Ctrl-C (or run python3 dev.py down) to stop everything.",
            flush=True,
        )
        while not stopping.wait(0.5):
            pass  # short waits: signal handlers run between them
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped.", flush=True)


def status(args: argparse.Namespace) -> None:
    running, lines = status_lines(Path(args.dir).absolute())
    print("\n".join(lines))
    sys.exit(0 if running else 3)


def down(args: argparse.Namespace) -> None:
    root = Path(args.dir).absolute()
    if stop_stack(root, lambda line: print(line, flush=True)):
        print(f"stopped the stack in {root}")
    else:
        print(f"no stack running in {root}")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openv_localstack")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the whole system locally")
    p_up.add_argument("--dir", default=".stack", help="folder for data and logs")
    p_up.add_argument("--port", type=int, default=8000, help="gateway port (if free)")
    p_up.add_argument(
        "--broker-storage",
        choices=BROKER_STORAGES,
        default="memory",
        help="where the Kafka broker keeps topics and offsets: memory (lost when the broker "
        "restarts; default) or s3 (the local SeaweedFS: survives a broker restart, but falls "
        "behind under a steady video a second)",
    )
    real = p_up.add_argument_group(
        "a real RunPod endpoint instead of the simulator",
        "The API key is read from OPENV_RUNPOD_API_KEY only (never a flag).",
    )
    real.add_argument("--runpod-endpoint", metavar="ID", help="or OPENV_RUNPOD_ENDPOINT_ID")
    real.add_argument(
        "--webhook-base-url",
        metavar="URL",
        help="public URL that reaches the bridge (a tunnel); or OPENV_WEBHOOK_BASE_URL",
    )
    real.add_argument("--runpod-base-url", metavar="URL", help="or OPENV_RUNPOD_BASE_URL")
    for name, what in (
        ("status", "each process of the folder's stack: running, pid, restarts, health"),
        ("down", "stop the folder's stack, whether its `up` process is alive or not"),
    ):
        sub.add_parser(name, help=what).add_argument(
            "--dir", default=".stack", help="the stack's data folder"
        )
    p_token = sub.add_parser("token", help="print a local access token for a user id")
    p_token.add_argument("user_id")
    p_token.add_argument("--admin", action="store_true")
    p_token.add_argument("--ttl", type=int, default=24 * 3600)
    return parser


def main() -> None:
    args = parser().parse_args()
    if args.command == "up":
        up(args)
    elif args.command == "status":
        status(args)
    elif args.command == "down":
        down(args)
    else:
        print(make_token(args.user_id, ttl_s=args.ttl, role="admin" if args.admin else None))


if __name__ == "__main__":
    main()
