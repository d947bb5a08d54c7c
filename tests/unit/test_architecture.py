"""The house rules of docs/architecture.md ("Map"), checked on the source so they stay true:
which layer may import what, no service importing another, contracts depending on nothing of
ours, no module too big to read at a glance, and no unit test casting a fake into a class."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.source_imports import imported

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "openv_gateway": ROOT / "services/gateway/openv_gateway",
    "openv_jobs": ROOT / "services/jobs/openv_jobs",
    "openv_bridge": ROOT / "services/runpod-bridge/openv_bridge",
    "openv_storage": ROOT / "services/storage/openv_storage",
    "openv_webhooks": ROOT / "services/webhooks/openv_webhooks",
    "openv_mochi": ROOT / "workers/mochi/openv_mochi",
}
#: Libraries that do I/O: adapters and entrypoints use them, the inner layers never do.
IO_LIBRARIES = frozenset(
    {"asyncpg", "sqlalchemy", "sqlmodel", "aiokafka", "faststream", "httpx", "minio"}
    | {"torch", "diffusers", "transformers", "runpod", "av", "numpy"}  # the GPU worker's
)
INNER_LAYERS = ("domain", "service_layer")
MAX_LINES = 350


def _modules(folder: Path) -> Iterator[Path]:
    yield from (p for p in sorted(folder.rglob("*.py")) if "migrations" not in p.parts)


def _top(name: str) -> str:
    return name.split(".", 1)[0]


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_domain_and_service_layer_import_no_io_library(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for layer in INNER_LAYERS
        for path in _modules(SERVICES[package] / layer)
        for name in sorted(imported(path))
        if _top(name) in IO_LIBRARIES
    ]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_domain_imports_neither_adapters_service_layer_nor_entrypoints(package: str) -> None:
    outer = {f"{package}.{layer}" for layer in ("adapters", "service_layer", "entrypoints")}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(SERVICES[package] / "domain")
        for name in sorted(imported(path))
        if any(name == layer or name.startswith(layer + ".") for layer in outer)
    ]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_no_service_imports_another(package: str) -> None:
    others = set(SERVICES) - {package}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(SERVICES[package])
        for name in sorted(imported(path))
        if _top(name) in others
    ]
    assert offenders == []


def test_contracts_depend_on_no_service_and_no_infrastructure() -> None:
    ours = set(SERVICES) | {"openv_infra", "openv_localstack", "openv_runpod_sim"}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(ROOT / "shared/openv_contracts")
        for name in sorted(imported(path))
        if _top(name) in ours | IO_LIBRARIES
    ]
    assert offenders == []


def test_infrastructure_knows_no_service() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(ROOT / "shared/openv_infra")
        for name in sorted(imported(path))
        if _top(name) in SERVICES
    ]
    assert offenders == []


def test_no_module_is_over_350_lines() -> None:
    folders = [*SERVICES.values(), ROOT / "shared", ROOT / "localstack", ROOT / "runpod-sim"]
    too_long = {
        str(path.relative_to(ROOT)): lines
        for folder in folders
        for path in _modules(folder)
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_no_unit_test_casts_a_fake_into_a_service_class() -> None:
    """A fake passes for the Protocol the code depends on; `cast(Concrete, fake)` hides that
    the code depends on a concrete class instead."""
    ours = tuple(f"{package}." for package in SERVICES)
    offenders = []
    for path in sorted((ROOT / "tests/unit").glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        classes = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(ours)
            for alias in node.names
        }
        offenders += [
            f"{path.name}:{node.lineno} casts into {node.args[0].id}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "cast"
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in classes
        ]
    assert offenders == []


def test_the_readme_table_names_every_folder() -> None:
    """README's "part | folder | owns" table lists every top-level folder, every service and
    both shared packages, and no folder that does not exist."""
    rows = [
        line.split("|")[2].strip().strip("`")
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| ") and line.count("|") == 4 and "`" in line.split("|")[2]
    ]
    named = {row.rstrip("/") for row in rows}
    expected = {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name not in _NOT_OURS
    } - {"services", "shared", "localstack", "runpod-sim", "workers"}
    expected |= {f"services/{path.name}" for path in (ROOT / "services").iterdir()}
    expected |= {f"workers/{path.name}" for path in (ROOT / "workers").iterdir()}
    expected |= {f"shared/{p.name}" for p in (ROOT / "shared").iterdir() if p.name[0] != "_"}
    expected |= {"localstack/openv_localstack", "runpod-sim/openv_runpod_sim"}
    assert named == expected


#: Folders a checkout or a run makes that are not part of the project.
_NOT_OURS = frozenset({"openv.egg-info", "build", "dist", "node_modules"})
