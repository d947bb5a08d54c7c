"""`python -m openv_localstack up` starts the whole system; `token USER_ID` prints a JWT."""

import argparse
import signal
import sys
import threading
from pathlib import Path

from openv_localstack.ports import free_port
from openv_localstack.stack import LocalStack, StackOptions
from openv_localstack.tokens import make_token


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def up(args: argparse.Namespace) -> None:
    port = args.port if _port_free(args.port) else free_port()
    stack = LocalStack(StackOptions(root=Path(args.dir), gateway_port=port))
    stopping = threading.Event()
    # Explicit handlers: a shell may start us with SIGINT ignored (background jobs).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    print(f"starting the OpenV stack; data and logs under {stack.root}", flush=True)
    try:
        stack.start()
        admin_ports = ", ".join(f"{name} {port}" for name, port in stack.admin_ports.items())
        print(
            f"\nOpenV is up.\n"
            f"  gateway:   {stack.gateway_url}  (OpenAPI: {stack.gateway_url}/docs)\n"
            f"  admin:     {admin_ports}  (/readyz, /metrics, internal /docs)\n"
            f"  token:     python -m openv_localstack token <user-id>\n"
            f"             (or: python3 dev.py token <user-id>)\n"
            f"  S3:        http://{stack.s3.endpoint}  bucket openv-videos\n"
            f"  Postgres:  {stack.postgres.dsn}\n"
            f"  Kafka:     {stack.kafka.bootstrap}\n"
            f"  RunPod:    {stack.sim_url} (simulator)\n"
            f"  logs:      {stack.root / 'logs'}\n"
            f"Press Ctrl-C to stop everything.",
            flush=True,
        )
        while not stopping.wait(0.5):
            for name, proc in stack.processes.items():
                if not proc.running:
                    print(f"{name} exited:\n{proc.tail()}", file=sys.stderr)
                    stopping.set()
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped.", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="openv_localstack")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the whole system locally")
    p_up.add_argument("--dir", default=".stack", help="folder for data and logs")
    p_up.add_argument("--port", type=int, default=8000, help="gateway port (if free)")
    p_token = sub.add_parser("token", help="print a local access token for a user id")
    p_token.add_argument("user_id")
    p_token.add_argument("--admin", action="store_true")
    p_token.add_argument("--ttl", type=int, default=24 * 3600)
    args = parser.parse_args()
    if args.command == "up":
        up(args)
    else:
        print(make_token(args.user_id, ttl_s=args.ttl, role="admin" if args.admin else None))


if __name__ == "__main__":
    main()
