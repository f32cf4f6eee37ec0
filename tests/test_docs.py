"""The documentation builds, and covers the public API and every manifest key.

The site is built once (``sphinx -W --keep-going -n``: warnings and broken references into
neuro_sae fail) without executing the gallery (``-D plot_gallery=0``), so a broken docstring
fails ``make test``; ``make docs`` builds the same site with the examples executed.
"""

import html
import importlib
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neuro_sae
from tests.conftest import IN_CI

DOCS = Path(__file__).resolve().parents[1] / "docs"

try:
    import myst_parser  # noqa: F401
    import numpydoc  # noqa: F401
    import pydata_sphinx_theme  # noqa: F401
    import sphinx  # noqa: F401
    import sphinx_gallery  # noqa: F401

    HAVE_DOCS_DEPS = True
except ImportError:
    HAVE_DOCS_DEPS = False

pytestmark = pytest.mark.skipif(
    not HAVE_DOCS_DEPS and not IN_CI,
    reason="the documentation tools are missing: pip install -e '.[docs]' (part of 'dev')",
)


def public_modules():
    """``neuro_sae`` and every public subpackage or module of it that declares ``__all__``."""
    out = ["neuro_sae"]
    for info in pkgutil.iter_modules(neuro_sae.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"neuro_sae.{info.name}")
        if hasattr(mod, "__all__"):
            out.append(mod.__name__)
    return out


def manifest_keys(model=None, prefix=""):
    """Every key of the manifest schema as a dotted path (``trf.tmin``, ``stimuli.runs[].id``)."""
    import types
    import typing

    from pydantic import BaseModel

    from neuro_sae.manifest import Manifest

    model = Manifest if model is None else model

    def models_in(tp, suffix=""):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return [(suffix, tp)]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (list, tuple, set):
            return [m for a in args for m in models_in(a, suffix + "[]")]
        if origin is dict:
            return models_in(args[1], suffix + ".<key>")
        if origin in (typing.Union, types.UnionType):
            return [m for a in args for m in models_in(a, suffix)]
        return []

    keys = []
    for name, field in model.model_fields.items():
        if field.exclude:  # set by the loader, never written in a manifest
            continue
        keys.append(prefix + name)
        for suffix, sub in models_in(field.annotation):
            keys += manifest_keys(sub, f"{prefix}{name}{suffix}.")
    return keys


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    """Build the HTML site once without running the gallery; return its folder."""
    out = tmp_path_factory.mktemp("docs_html")
    doctrees = tmp_path_factory.mktemp("docs_doctrees")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-q",
           "-D", "plot_gallery=0", "-d", str(doctrees), str(DOCS), str(out)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    took = time.perf_counter() - t0
    assert proc.returncode == 0, (
        f"the documentation build failed ({took:.0f} s; run `make docs` to see it):\n"
        + proc.stdout[-4000:] + proc.stderr[-8000:]
    )
    return out


def test_docs_build(built_docs):
    """The site builds with warnings as errors and has its pages."""
    for page in ["index", "getting_started", "configuration", "pipeline", "performance",
                 "paper", "changelog", "api/index", "auto_examples/index"]:  # fmt: skip
        assert (built_docs / f"{page}.html").is_file(), page


def _ids(folder):
    ids = set()
    for page in folder.rglob("*.html"):
        ids.update(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
    return ids


def test_every_public_name_in_api_reference(built_docs):
    """Every name of every public ``__all__`` has an entry in the API reference."""
    ids = _ids(built_docs / "api")
    missing = []
    modules = public_modules()
    assert {"neuro_sae.encoding", "neuro_sae.sae", "neuro_sae.manifest"} <= set(modules)
    for modname in modules:
        mod = importlib.import_module(modname)
        assert (built_docs / "api" / f"{modname.removeprefix('neuro_sae.')}.html").is_file(), (
            f"{modname} has no API page: add it to API_MODULES in docs/_ext/neuro_sae_docs.py"
        )
        for name in mod.__all__:
            full = f"{modname}.{name}"
            if full not in ids and f"module-{full}" not in ids:
                missing.append(full)
    assert not missing, f"public names missing from the API reference: {missing}"


def test_every_manifest_key_on_configuration_page(built_docs):
    """Every key of the pydantic manifest schema is on the configuration page."""
    page = (built_docs / "configuration.html").read_text(encoding="utf-8")
    keys = manifest_keys()
    assert {"trf.tmin", "stats.n_permutations", "stimuli.runs[].id"} <= set(keys)
    missing = [k for k in keys if f'<span class="pre">{html.escape(k)}</span>' not in page]
    assert not missing, f"manifest keys missing from the configuration page: {missing}"


def test_every_step_in_steps_table(built_docs):
    """Every record of ``STEPS`` is a row of the generated step table."""
    from neuro_sae.pipeline.steps import STEPS

    page = (built_docs / "pipeline.html").read_text(encoding="utf-8")
    missing = [s.name for s in STEPS if f'<span class="pre">{s.name}</span>' not in page]
    assert not missing, missing
