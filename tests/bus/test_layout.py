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


def _state_writes(path: Path) -> list[int]:
    """Lines that assign a document's state: `<x>.state = …` (not `self.state`, a simulator's own
    state), or `state=` in the values of an UPDATE of documents."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
        for target in targets:
            if (isinstance(target, ast.Attribute) and target.attr == "state"
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")):
                lines.append(node.lineno)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "values"
                and any(k.arg == "state" for k in node.keywords) and "Document" in ast.unparse(node.func.value)):
            lines.append(node.lineno)
    return lines


def test_the_engine_is_the_only_writer_of_a_documents_state() -> None:
    """Annulations, replays and stage outcomes all reach the state through bus/engine.py (a deposit
    creates the document in its first state)."""
    writers = {}
    for top in ("bus", "connectors"):
        for path in sorted((ROOT / top).rglob("*.py")):
            lines = _state_writes(path)
            if lines:
                writers[path.relative_to(ROOT).as_posix()] = lines
    assert set(writers) == {"bus/engine.py"}, writers
