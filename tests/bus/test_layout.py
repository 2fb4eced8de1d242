"""The rooms keep to themselves: the command line's modules import none of each other but their
common module, nothing in `bus/` imports the faces (`connectors/inbound`, `connectors/console`)
but the composition root, and `schemas/` imports nothing from `bus/` or `connectors/`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_cli_modules_import_only_their_common_module() -> None:
    modules = sorted((ROOT / "bus" / "cli").glob("*.py"))
    assert {p.stem for p in modules} >= {"common", "stack", "admin", "documents", "operations", "reports"}
    for path in modules:
        if path.stem == "__init__":
            continue
        siblings = {n for n in imported(path) if n.startswith("bus.cli") and n != "bus.cli.common"
                    and not n.startswith("bus.cli.common.")}
        assert not siblings, f"{path.name} imports {siblings}: only bus.cli.common is shared"


def test_only_the_composition_root_of_bus_imports_the_faces() -> None:
    for path in sorted((ROOT / "bus").rglob("*.py")):
        faces = {n for n in imported(path) if n.startswith(("connectors.inbound", "connectors.console"))}
        if path.relative_to(ROOT).as_posix() != "bus/processes.py":
            assert not faces, f"{path.relative_to(ROOT)} imports {faces}"


def test_schemas_import_nothing_from_the_bus_or_the_connectors() -> None:
    for path in sorted((ROOT / "schemas").rglob("*.py")):
        outside = {n for n in imported(path) if n.split(".")[0] in ("bus", "connectors")}
        assert not outside, f"{path.relative_to(ROOT)} imports {outside}"
