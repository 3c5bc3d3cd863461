"""The package's surface and its purity: an explicit __all__, the domain modules importing only the standard
library, and nothing under connector/cosell pulling in HTTP, Salesforce or database libraries."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import connector.cosell as cosell

PACKAGE = Path(cosell.__file__).resolve().parent
PURE = ("roles", "splits", "registration", "channel")
FORBIDDEN = ("requests", "simple_salesforce", "sqlalchemy")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_public_surface_is_explicit_and_resolves(cosell_policies):
    assert len(cosell.__all__) == len(set(cosell.__all__))
    assert [name for name in cosell.__all__ if not hasattr(cosell, name)] == []
    assert cosell.COSELL_POLICY_NAMES is cosell_policies.COSELL_POLICY_NAMES


def test_importing_the_domain_registers_no_policy():
    # the policies, which change the process-wide registry, load only on first use of their names
    assert not any(name.startswith("connector.cosell.policies")
                   for name in imported_modules(PACKAGE / "__init__.py"))


def test_the_domain_modules_import_only_the_standard_library():
    for module in PURE:
        outside = {name for name in imported_modules(PACKAGE / f"{module}.py")
                   if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("connector.cosell")}
        assert outside == set(), module


def test_nothing_in_the_package_imports_io_libraries():
    for path in PACKAGE.glob("*.py"):
        assert {n for n in imported_modules(path) if n.split(".")[0] in FORBIDDEN} == set(), path.name


def test_nothing_the_package_imports_in_turn_imports_io_libraries():
    """Followed through the connector's own modules (connector.cosell.policies reaches the sync's policy
    registry and the mapping), statically: the test session itself has long imported them for other layers."""
    root = PACKAGE.parents[1]
    seen: set[str] = set()
    todo = [f"connector.cosell.{path.stem}" for path in PACKAGE.glob("*.py")]
    reached: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        base = root.joinpath(*module.split("."))
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if not path.exists():
            continue  # a name imported from a package, not a module
        for name in imported_modules(path):
            reached.add(name.split(".")[0])
            if name.startswith("connector"):
                parts = name.split(".")
                todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    assert "connector.sync.policies" in seen  # the walk does follow the connector's own imports
    assert reached & set(FORBIDDEN) == set()
