"""Layers import downward only (DESIGN.md): a module may import its own layer or a lower one.

    utils/ops/errors < config/registry/structures/evaluation < datasets/visualization < engine
    < models < apis/export/core < analysis/serving < cli

Every ``import`` in the package counts, including those inside functions: a function-level
import that reaches upward is the same dependency, only hidden.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "detforge"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("utils", "ops", "errors"),
    ("config", "registry", "structures", "evaluation"),
    ("datasets", "visualization"),
    ("engine",),
    ("models",),
    ("apis", "export", "core"),
    ("analysis", "serving"),
    ("cli",),
)
RANK = {name: level for level, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str | None:
    """The top-level sub-package of a dotted ``detforge.x.y`` name (None for ``detforge``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "detforge" else None


def _module_name(path: Path) -> str:
    rel = path.relative_to(path.parents[len(path.parts) - 1 - path.parts.index("detforge")])
    rel = rel.with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import in ``path`` (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from detforge import models`` imports the sub-package itself
            if module == "detforge":
                found += [(node.lineno, f"detforge.{alias.name}") for alias in node.names]
    return found


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Every import from a lower layer to a higher one, as ``file:line: a -> b (module)``."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        own = _part(_module_name(path))
        if own is None or own not in RANK:
            continue
        for line, module in _imports(path):
            target = _part(module)
            if target is not None and target in RANK and RANK[target] > RANK[own]:
                rel = path.relative_to(package.parent)
                bad.append(f"{rel}:{line}: {own} -> {target} ({module})")
    return bad


def test_every_subpackage_has_a_layer() -> None:
    names = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    assert sorted(names - set(RANK)) == [], "give these a layer in LAYERS"


def test_no_import_reaches_a_higher_layer() -> None:
    bad = upward_imports()
    assert bad == [], "imports from a lower layer to a higher one:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from detforge.apis.test import x\n", ["engine -> apis"]),
        ("def f():\n    import detforge.cli.main\n", ["engine -> cli"]),
        ("from detforge import models\n", ["engine -> models"]),
        ("from ..models import x\n", ["engine -> models"]),
        ("from detforge.utils import dist\nfrom . import runner\n", []),
    ],
)
def test_the_check_sees_upward_imports(tmp_path: Path, source: str, expected: list[str]) -> None:
    fake = tmp_path / "detforge"
    (fake / "engine").mkdir(parents=True)
    (fake / "engine" / "mod.py").write_text(source)
    found = [line.split(": ", 1)[1].split(" (")[0] for line in upward_imports(fake)]
    assert found == expected
