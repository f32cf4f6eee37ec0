"""Layering of the neuroscience half: no private cross-subpackage imports, no cycles."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "neuro_sae"


def _imports(path):
    """``(level, module)`` of every ``from ... import`` in a file (lazy ones included)."""
    tree = ast.parse(path.read_text())
    return [(n.level, n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]


@pytest.mark.parametrize("sub", ["stats", "encoding", "features"])
def test_no_private_cross_imports(sub):
    """``from ..x._private import`` is refused: other subpackages through their __init__."""
    bad = []
    for path in sorted((PKG / sub).glob("*.py")):
        for level, mod in _imports(path):
            parts = mod.split(".")
            if level >= 2 and len(parts) >= 2 and parts[1].startswith("_"):
                bad.append(f"{path.name}: from {'.' * level}{mod}")
            if level == 0 and mod.startswith("neuro_sae.") and any(
                p.startswith("_") for p in parts[2:]
            ):  # fmt: skip
                bad.append(f"{path.name}: from {mod}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("sub", ["stats", "encoding", "io"])
def test_no_cycles_between_modules(sub):
    """The modules of a subpackage import each other without cycles."""
    graph = {}
    for path in sorted((PKG / sub).glob("_*.py")):
        deps = set()
        for level, mod in _imports(path):
            if level == 1 and mod.startswith("_"):
                deps.add(mod.split(".")[0])
        graph[path.stem] = deps & {p.stem for p in (PKG / sub).glob("_*.py")}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                raise AssertionError(f"import cycle in {sub}: {' -> '.join(stack + [dep])}")
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_io_does_not_import_features():
    """io/_stim recognises a FeatureSeries by its interface (features imports io)."""
    for path in (PKG / "io").glob("*.py"):
        assert not any(
            mod.split(".")[0] == "features" for level, mod in _imports(path) if level == 2
        ), path.name
