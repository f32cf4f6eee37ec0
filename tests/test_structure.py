"""Structural rules: verbose decoration, no global RNG, security, layering."""

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import neuro_sae

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "neuro_sae"
SCRIPT_DIRS = [PKG, ROOT / "analyses", ROOT / "figures"]


def _modules():
    for info in pkgutil.walk_packages(neuro_sae.__path__, "neuro_sae."):
        yield importlib.import_module(info.name)


def _py_files():
    for d in SCRIPT_DIRS:
        if d.is_dir():
            yield from sorted(d.rglob("*.py"))


def test_verbose_decorated():
    """Every public function or method taking ``verbose`` is wrapped by @verbose."""
    bad = []
    for mod in _modules():
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            cands = [obj]
            if inspect.isclass(obj):
                cands = [
                    m for n, m in vars(obj).items()
                    if inspect.isfunction(m) and (not n.startswith("_") or n == "__init__")
                ]
            for fun in cands:
                if not inspect.isfunction(fun):
                    continue
                params = inspect.signature(fun).parameters
                if "verbose" in params:
                    if params["verbose"].default is not None:
                        bad.append(f"{mod.__name__}.{fun.__qualname__}: verbose must default to None")
                    if fun.__name__ in ("set_log_level", "use_log_level"):
                        continue  # they set the level themselves
                    if inspect.isclass(obj) and fun.__name__ == "__init__":
                        continue  # estimators store verbose; they do not log in __init__
                    if not getattr(fun, "__neuro_sae_verbose__", False):
                        bad.append(f"{mod.__name__}.{fun.__qualname__}")
    assert not bad, "not decorated with @verbose:\n" + "\n".join(bad)


_GLOBAL_RNG = {
    ("np", "random", "seed"),
    ("numpy", "random", "seed"),
    ("torch", "manual_seed"),
    ("random", "seed"),
    ("torch", "cuda", "manual_seed_all"),
}
_LEGACY_NP = {"rand", "randn", "randint", "random", "choice", "permutation", "shuffle", "normal", "uniform"}


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def test_no_global_rng():
    """No global seeding and no legacy global numpy RNG calls."""
    bad = []
    for fname in _py_files():
        tree = ast.parse(fname.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                if name in _GLOBAL_RNG or (
                    len(name) == 3 and name[:2] in {("np", "random"), ("numpy", "random")}
                    and name[2] in _LEGACY_NP
                ):
                    bad.append(f"{fname.relative_to(ROOT)}:{node.lineno} {'.'.join(name)}")
    assert not bad, "global RNG use (pass random_state instead):\n" + "\n".join(bad)


def test_security_rules():
    """torch.load only with weights_only=True; no pickles written; YAML via safe_load."""
    bad = []
    for fname in _py_files():
        tree = ast.parse(fname.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            kw = {k.arg: k.value for k in node.keywords}
            where = f"{fname.relative_to(ROOT)}:{node.lineno}"
            if name[-2:] == ("torch", "load"):
                v = kw.get("weights_only")
                if not (isinstance(v, ast.Constant) and v.value is True):
                    bad.append(f"{where} torch.load without weights_only=True")
            if name[-2:] in {("pickle", "dump"), ("pickle", "dumps"), ("yaml", "load")}:
                bad.append(f"{where} {'.'.join(name)}")
            if "trust_remote_code" in kw:
                v = kw["trust_remote_code"]
                if not (isinstance(v, ast.Constant) and v.value is False):
                    bad.append(f"{where} trust_remote_code")
            if name and name[-1] in {"save", "savez", "savez_compressed"} and "allow_pickle" in kw:
                v = kw["allow_pickle"]
                if not (isinstance(v, ast.Constant) and v.value is False):
                    bad.append(f"{where} allow_pickle")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("subpackage", ["encoding", "stats", "align"])
def test_neuro_side_does_not_import_torch(subpackage):
    """The neuroscience half never imports torch or the SAE half."""
    code = (
        f"import sys, importlib; importlib.import_module('neuro_sae.{subpackage}'); "
        "bad = [m for m in ('torch', 'neuro_sae.sae', 'neuro_sae.backbones') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "", f"neuro_sae.{subpackage} imports {res.stdout.strip()}"


def test_encoding_stats_sources_do_not_import_sae():
    for sub in ("encoding", "stats"):
        for fname in (PKG / sub).rglob("*.py"):
            tree = ast.parse(fname.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    assert not node.module.lstrip(".").startswith(("sae", "backbones")), fname
                    assert "torch" not in node.module.split(".")[0] or node.col_offset > 0, fname
                if isinstance(node, ast.Import):
                    # ``import torch`` only lazily, inside a function (the GPU backends)
                    for alias in node.names:
                        top = alias.name.split(".")[0]
                        assert top != "torch" or node.col_offset > 0, f"{fname}: module-level import torch"
                        assert not alias.name.startswith(("neuro_sae.sae", "neuro_sae.backbones")), fname


def test_docstrings_filled():
    """No public docstring keeps an unfilled docdict placeholder."""
    bad = []
    for mod in _modules():
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            objs = [obj]
            if inspect.isclass(obj):
                objs += [m for n, m in vars(obj).items() if inspect.isfunction(m) and not n.startswith("_")]
            for o in objs:
                if re.search(r"%\(\w+\)s", getattr(o, "__doc__", None) or ""):
                    bad.append(f"{mod.__name__}.{getattr(o, '__qualname__', name)}")
    assert not bad, "unfilled %(...)s in docstrings of: " + ", ".join(bad)


def _lint_imports(root, pkg_parent):
    """Run import-linter with the contracts of ``root/pyproject.toml`` on the package
    found under ``pkg_parent``."""
    import os

    exe = Path(sys.executable).with_name("lint-imports")
    env = dict(os.environ, PYTHONPATH=str(pkg_parent))
    return subprocess.run(
        [str(exe), "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, cwd=pkg_parent, env=env, check=False,
    )  # fmt: skip


def test_import_contracts():
    """The layer contracts in pyproject.toml ([tool.importlinter]) hold: the neuroscience
    half imports neither the SAE half nor torch (but for the lazy GPU backends), private
    modules stay inside their subpackage, no import cycles."""
    res = _lint_imports(ROOT, ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("stats/_multicomp.py", "import torch  # planted", "torch only"),
        ("align/_onsets.py", "from ..sae import SAEConfig  # planted", "never imports the SAE half"),
        ("stats/_tail.py", "from ..encoding._sweep import SweepResult  # planted", "private modules"),
        ("io/_audio.py", "from ..align import align_subject  # planted", "No import cycles"),
    ],
)
def test_import_contracts_catch_crossings(tmp_path, module, line, contract):
    """A planted crossing of each kind breaks the contracts (the check can fail)."""
    import shutil

    shutil.copytree(PKG, tmp_path / "neuro_sae", ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "neuro_sae" / module
    target.write_text(target.read_text() + "\n" + line + "\n")
    res = _lint_imports(tmp_path, tmp_path)
    assert res.returncode != 0
    assert contract.lower() in (res.stdout + res.stderr).lower(), res.stdout
