#!/usr/bin/env python3
"""Set-up and everyday commands; needs only Python >= 3.11 on the machine.

    python3 dev.py up              # install into .venv, start the whole system locally;
                                   # restarts what crashes, stops a stale stack of .stack first
    python3 dev.py up --runpod-endpoint ID --webhook-base-url URL
                                   # the same against a real RunPod endpoint (README)
    python3 dev.py status          # each process of the stack: running, pid, restarts, health
    python3 dev.py down            # stop the stack (also one whose `up` was killed)
    python3 dev.py test            # install into .venv, lint, type-check, run every test
    python3 dev.py token USER_ID   # print an access token for the local stack

The first run creates `.venv` and installs the locked dependencies (requirements.lock);
later runs reinstall only when the lock or pyproject.toml changed.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".openv-installed"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (this file runs before any venv exists)
        sys.exit("OpenV needs Python >= 3.11")
    if not PY.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    print("installing locked dependencies into .venv ...", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(fingerprint)


def run(*argv: str) -> int:
    return subprocess.run([str(PY), *argv], cwd=ROOT, env={**os.environ}).returncode


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    rest = sys.argv[2:]
    if command not in {"up", "status", "down", "test", "token", "lint"}:
        print(__doc__)
        return 0 if command == "help" else 2
    ensure_venv()
    if command in {"up", "status", "down", "token"}:
        # Replace this process so Ctrl-C reaches the stack directly and it stops what it started;
        # from the repository root, so the data folder is always ./.stack there.
        os.chdir(ROOT)
        os.execv(PY, [str(PY), "-m", "openv_localstack", command, *rest])  # noqa: S606
    for check in (
        ["-m", "ruff", "check", "."],
        ["-m", "ruff", "format", "--check", "."],
        ["-m", "mypy", "."],
    ):
        if code := run(*check):
            return code
    if command == "lint":
        return 0
    return run("-m", "pytest", *rest)


if __name__ == "__main__":
    sys.exit(main())
