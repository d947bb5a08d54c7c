"""What a Python file imports, read from its syntax tree (the architecture and image checks)."""

import ast
from pathlib import Path


def imported(path: Path, with_names: bool = False) -> set[str]:
    """Every module a file imports (also under TYPE_CHECKING and inside functions); with
    `with_names`, also `module.name` for each `from module import name` (a name may be a
    submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if with_names:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names
