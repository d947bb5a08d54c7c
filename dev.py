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

`test` also builds the GPU worker's own environment (workers/mochi: PyTorch's CPU build,
diffusers, transformers, the runpod SDK; about 1.5 GB) outside the repository, in
`$XDG_CACHE_HOME/openv/` (default `~/.cache/openv/`), keyed by the worker's requirements, so
clones share it; `OPENV_WORKER_VENV` names another place. It is built, and the worker's tests
run, beside the main suite (their output is printed after it).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
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


WORKER = ROOT / "workers" / "mochi"
#: Files the worker's environment is built from; a change to any of them builds a new one.
WORKER_INPUTS = (WORKER / "torch.txt", WORKER / "requirements.txt", ROOT / "requirements.lock")
#: Pytest marker of the main suite's tests that run the worker's handler (after it is built).
WORKER_MARK = "worker"


def worker_venv() -> Path:
    if named := os.environ.get("OPENV_WORKER_VENV"):
        return Path(named).resolve()
    digest = hashlib.sha256(sys.version.encode())
    for path in WORKER_INPUTS:
        digest.update(path.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openv"
    return cache / f"worker-venv-{digest.hexdigest()[:16]}"


def ensure_worker_venv() -> Path:
    """The worker's environment (third-party packages only: the project's code comes from
    PYTHONPATH, so clones in other folders can share it). Returns its python."""
    target = worker_venv()
    python, stamp = target / "bin" / "python", target / ".openv-installed"
    if stamp.exists():
        return python
    print(f"building the worker's environment in {target} ...", flush=True)
    if target.exists():  # a build that did not finish
        shutil.rmtree(target)
    if not os.environ.get("OPENV_WORKER_VENV"):
        for old in target.parent.glob("worker-venv-*"):
            shutil.rmtree(old, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(target)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # torch alone first, from a pinned version: a resolver free to choose would fetch a CUDA build.
    subprocess.run([*pip, "-r", str(WORKER / "torch.txt")], check=True)
    subprocess.run(
        [
            *pip,
            *("-c", str(WORKER / "torch.txt"), "-c", str(ROOT / "requirements.lock")),
            *("-r", str(WORKER / "requirements.txt"), "pytest", "pytest-asyncio"),
        ],
        check=True,
    )
    stamp.write_text("ok")
    return python


def worker_env(python: Path) -> dict[str, str]:
    """Environment for the worker's python and for tests that start it."""
    path = os.pathsep.join(str(p) for p in (WORKER, ROOT / "shared"))
    return {**os.environ, "PYTHONPATH": path, "OPENV_WORKER_PYTHON": str(python)}


def run(*argv: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run([str(PY), *argv], cwd=ROOT, env=env or {**os.environ}).returncode


def lint() -> int:
    for check in (
        ["-m", "ruff", "check", "."],
        ["-m", "ruff", "format", "--check", "."],
        ["-m", "mypy", "."],
    ):
        if code := run(*check):
            return code
    return 0


def worker_tests(log: Path) -> int:
    """The worker's environment (built if missing), its own tests, then the main suite's tests
    marked `worker`; all output to `log`. Runs beside the main suite, which leaves most of the
    machine idle while it waits on servers; one thread per render keeps a core for it."""
    with log.open("w") as out:

        def step(argv: list[str], env: dict[str, str] | None = None) -> int:
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            return subprocess.run(argv, cwd=ROOT, env=env, stdout=out, stderr=out).returncode

        if code := step([sys.executable, __file__, "worker-env"]):
            return code
        env = {**worker_env(ensure_worker_venv()), "OMP_NUM_THREADS": "1"}
        python = env["OPENV_WORKER_PYTHON"]
        own = step([python, "-m", "pytest", "-p", "no:cacheprovider", str(WORKER / "tests")], env)
        basetemp = tempfile.mkdtemp(prefix="openv-worker-tests-")
        marked = step(
            [
                str(PY),
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-m",
                WORKER_MARK,
                f"--basetemp={basetemp}",
            ],
            env,
        )
        shutil.rmtree(basetemp, ignore_errors=True)
        return own or marked


def test(rest: list[str]) -> int:
    """Every test: with arguments, as pytest is told (the worker's environment is built first);
    without, the main suite and, beside it, the worker's (see worker_tests)."""
    if code := lint():
        return code
    if rest:
        return run("-m", "pytest", *rest, env=worker_env(ensure_worker_venv()))
    log = ROOT / ".worker-tests.log"
    print(f"the GPU worker's tests run beside the main suite (log: {log.name}) ...", flush=True)
    result: list[int] = []
    beside = threading.Thread(target=lambda: result.append(worker_tests(log)), daemon=True)
    beside.start()
    code = run("-m", "pytest", "-m", f"not {WORKER_MARK}")
    beside.join()
    print(f"\n---- the GPU worker's tests ({log.name}) ----\n{log.read_text()}", flush=True)
    return code or result[0]


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    rest = sys.argv[2:]
    if command == "worker-env":  # used by `test`, to build it in the background
        ensure_worker_venv()
        return 0
    if command not in {"up", "status", "down", "test", "token", "lint"}:
        print(__doc__)
        return 0 if command == "help" else 2
    ensure_venv()
    if command in {"up", "status", "down", "token"}:
        # Replace this process so Ctrl-C reaches the stack directly and it stops what it started;
        # from the repository root, so the data folder is always ./.stack there.
        os.chdir(ROOT)
        os.execv(PY, [str(PY), "-m", "openv_localstack", command, *rest])  # noqa: S606
    if command == "lint":
        return lint()
    return test(rest)


if __name__ == "__main__":
    sys.exit(main())
