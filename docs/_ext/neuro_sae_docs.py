"""Sphinx extension of the neuro_sae docs: pages generated from the code at build time.

- ``docs/api/*.rst``: one page per subpackage, listing every name of its ``__all__``
  (autosummary stubs under ``docs/api/generated/``); written at ``builder-inited``.
- ``.. neuro-sae-manifest::``: the manifest reference, from the pydantic schema of
  :mod:`neuro_sae.manifest` (every key, type, default, allowed values, description).
- ``.. neuro-sae-steps::``: the pipeline step table, from ``neuro_sae.pipeline.steps.STEPS``.
- offline intersphinx: references to external projects whose inventory is not available are
  rendered as plain text; references into neuro_sae stay checked (``nitpicky``).
"""

import builtins
import importlib
import importlib.util
import inspect
import tempfile
import types
import typing
from pathlib import Path

from sphinx.util.docutils import SphinxDirective

#: subpackages and modules of the API reference, in the order of the data flow
API_MODULES = (
    ("neuro_sae", "Package version and the log level"),
    ("manifest", "Study manifests: schema, loading, validation"),
    ("io", "Audio, EEG readers, feature series, saved results, atomic writes, hashes"),
    ("backbones", "Whisper and HuBERT encoders, frame timing, intervention hooks"),
    ("activations", "Activation extraction, stores, streaming and mixing"),
    ("sae", "Sparse autoencoders: models, training, metrics, formats, pretrained SAEs"),
    ("corpora", "Clip index, corpus readers, the offline corpus builder"),
    ("interpret", "Feature statistics, labels, phones, probing, erasure, dashboards"),
    ("steering", "Whisper speech detection and steering with SAE features"),
    ("features", "SAE feature time series of stimuli"),
    ("align", "Stimulus alignment onto the EEG clock, acoustic baselines"),
    ("encoding", "TRF estimator, ridge solvers, univariate sweeps, banded ridge"),
    ("stats", "Permutation nulls, max-T, clusters, group-level tests"),
    ("simulation", "Planted-truth EEG and sparse dictionaries"),
    ("viz", "Plotting functions"),
    ("report", "The per-subject mne.Report"),
    ("pipeline", "Step table, cache keys, executors, the neuro-sae CLI"),
    ("utils", "Logging, verbose, validation, randomness, docdict, system dependencies"),
)


def _full(modname):
    return modname if modname == "neuro_sae" else f"neuro_sae.{modname}"


def public_names(modname):
    """Return ``(kind, name)`` for every name of ``neuro_sae.<modname>.__all__``."""
    mod = importlib.import_module(_full(modname))
    out = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.ismodule(obj):
            kind = "module"
        elif inspect.isclass(obj):
            kind = "class"
        elif callable(obj):
            kind = "function"
        else:
            kind = "data"
        out.append((kind, name))
    return out


# kind and section title; autosummary picks the stub template by kind (_templates/autosummary)
_SECTIONS = (("class", "Classes"), ("function", "Functions"), ("data", "Constants"),
             ("module", "Modules"))


def _home(obj):
    """The API page (module name) that documents a class listed in several ``__all__``."""
    mod = getattr(obj, "__module__", "") or ""
    names = [m for m, _ in API_MODULES if m != "neuro_sae"]
    for m in names:
        if mod == f"neuro_sae.{m}" or mod.startswith(f"neuro_sae.{m}."):
            return m
    return None


def _api_page(modname, summary):
    full = _full(modname)
    mod = importlib.import_module(full)
    lines = [f".. _api-{modname}:", "", f"``{full}``", "=" * (len(full) + 4), "",
             summary + ".", "", f".. automodule:: {full}", "   :no-members:", "",
             f".. currentmodule:: {full}", ""]
    names = public_names(modname)
    elsewhere = []
    for kind, title in _SECTIONS:
        picked = [n for k, n in names if k == kind]
        if kind == "class":  # a class documented once, on the page of the module defining it
            home = {n: _home(getattr(mod, n)) for n in picked}
            elsewhere = [(n, home[n]) for n in picked if home[n] not in (None, modname)]
            picked = [n for n in picked if home[n] in (None, modname)]
        if kind == "module":
            lines += [title, "-" * len(title), ""]
            for n in picked:
                lines += [f"- :mod:`{full}.{n}`"]
                _write_if_changed(Path(_API_DIR) / "generated" / f"{full}.{n}.rst",
                                  _module_stub(f"{full}.{n}"))
            lines += ["", ".. toctree::", "   :hidden:", ""]
            lines += [f"   generated/{full}.{n}" for n in picked] + [""]
            continue
        if not picked:
            continue
        lines += [title, "-" * len(title), "", ".. autosummary::", "   :toctree: generated/",
                  "   :nosignatures:", ""]
        lines += [f"   {n}" for n in picked] + [""]
    if elsewhere:
        lines += ["Also exported here", "------------------", ""]
        for n, home in elsewhere:
            lines += _alias(getattr(mod, n), n, f"neuro_sae.{home}.{n}")
    lines += _EXTRA.get(modname, [])
    return "\n".join(lines)


def _alias(cls, name, target):
    """Targets for a class documented on another page: the class and its public members."""
    lines = [f".. py:class:: {name}", "", f"   The same class as :class:`{target}` (documented there).", ""]
    for attr in sorted(dir(cls)):
        if attr.startswith("_"):
            continue
        obj = inspect.getattr_static(cls, attr)
        func = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
        if not (getattr(func, "__module__", "") or "").startswith("neuro_sae"):
            continue
        kind = "property" if isinstance(obj, property) else "method" if callable(func) else None
        if kind:
            lines += [f"   .. py:{kind}:: {attr}", "",
                      f"      See :{kind[:4] if kind == 'method' else 'attr'}:`{target}.{attr}`.", ""]
    return lines


def _module_stub(name):
    return "\n".join([f"``{name}``", "=" * (len(name) + 4), "", f".. automodule:: {name}",
                       "   :members:", ""])


#: targets other docstrings reference that are not in an ``__all__``
_EXTRA = {
    "pipeline": ["The step table", "--------------", "",
                 ".. py:data:: neuro_sae.pipeline.steps.STEPS", "",
                 "   The same tuple of :class:`~neuro_sae.pipeline.Step` records as",
                 "   :data:`neuro_sae.pipeline.STEPS` (see :doc:`/pipeline`).", ""],
    "report": ["Implementation", "--------------", "",
               ".. py:module:: neuro_sae.pipeline.report", "",
               "The module that holds the code of :mod:`neuro_sae.report`.", ""],
}
_API_DIR = ""


def _write_if_changed(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def write_api_pages(app):
    """Write ``api/index.rst`` and one page per subpackage (before autosummary reads them)."""
    global _API_DIR
    api = Path(app.srcdir) / "api"
    _API_DIR = str(api)
    index = ["API reference", "=============", "",
             "Every public name of neuro_sae: each entry of each subpackage's ``__all__``, "
             "generated from the numpydoc docstrings.", "",
             ".. list-table::", "   :header-rows: 1", "   :widths: 25 75", "",
             "   * - module", "     - what it holds"]
    for modname, summary in API_MODULES:
        index += [f"   * - :ref:`{_full(modname)} <api-{modname}>`", f"     - {summary}"]
    index += ["", ".. toctree::", "   :hidden:", ""]
    index += [f"   {modname}" for modname, _ in API_MODULES] + [""]
    _write_if_changed(api / "index.rst", "\n".join(index))
    for modname, summary in API_MODULES:
        _write_if_changed(api / f"{modname}.rst", _api_page(modname, summary))


# -- manifest reference ---------------------------------------------------------------------


def _is_model(tp):
    from pydantic import BaseModel

    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _type_str(tp):
    """A readable type of a pydantic annotation (``int | None``, ``'a' | 'b'``, ...)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "None"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_str(a) for a in args)
    if origin in (list, tuple, set):
        return f"{origin.__name__} of {', '.join(_type_str(a) for a in args if a is not Ellipsis)}"
    if origin is dict:
        return f"dict of {_type_str(args[0])} -> {_type_str(args[1])}"
    if _is_model(tp):
        return f"mapping ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _allowed(tp, field):
    """Allowed values and bounds of a field, as text."""
    parts = []
    lits = []

    def walk(t):
        if typing.get_origin(t) is typing.Literal:
            lits.extend(typing.get_args(t))
        for a in typing.get_args(t):
            if not isinstance(a, str | int | float):
                walk(a)

    walk(tp)
    if lits:
        parts.append("one of " + ", ".join(repr(v) for v in lits))
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "at least {} items",
               "max_length": "at most {} items"}
    for meta in field.metadata:
        for attr, sym in symbols.items():
            val = getattr(meta, attr, None)
            if val is not None:
                parts.append(sym.format(val) if "{}" in sym else f"{sym} {val}")
    return "; ".join(parts)


def _default_str(field):
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        val = field.default_factory()
        if _is_model(type(val)):
            return "(section defaults)"
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        val = field.default
    return f"``{val!r}``"


def _sub_models(tp):
    """The pydantic models inside an annotation, with the key suffix they sit under."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_model(tp):
        return [("", tp)]
    out = []
    if origin in (list, tuple, set):
        for a in args:
            out += [("[]" + s, m) for s, m in _sub_models(a)]
    elif origin is dict:
        out += [(".<key>" + s, m) for s, m in _sub_models(args[1])]
    elif origin in (typing.Union, types.UnionType):
        for a in args:
            out += _sub_models(a)
    return out


def manifest_sections(model=None, prefix=""):
    """``[(prefix, model)]`` of the manifest and every nested section, depth first."""
    from neuro_sae.manifest import Manifest

    model = Manifest if model is None else model
    out = [(prefix, model)]
    for name, field in model.model_fields.items():
        for suffix, sub in _sub_models(field.annotation):
            out += manifest_sections(sub, f"{prefix}{name}{suffix}.")
    return out


NONE = "\u2013"  # an en dash: a bare "-" in a table cell would be a bullet list


def _escape(text):
    return text.replace("|", "\\|").replace("*", "\\*")


def manifest_rst():
    """The manifest reference as reStructuredText."""
    lines = []
    for prefix, model in manifest_sections():
        title = f"``{prefix[:-1]}``" if prefix else "Top level"
        lines += [f".. _manifest-{(prefix[:-1] or 'top').replace('.', '-').replace('[]', '')}:",
                  "", title, "-" * len(title), ""]
        doc = inspect.getdoc(model) or ""
        if prefix and doc:
            lines += [doc.split("\n\n")[0].replace("\n", " "), ""]
        lines += [".. list-table::", "   :header-rows: 1", "   :widths: 24 22 18 36", "",
                  "   * - key", "     - type", "     - default", "     - description"]
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            key = f"{prefix}{name}"
            desc = (field.description or "").replace("\n", " ").strip()
            allowed = _escape(_allowed(field.annotation, field))
            if allowed:
                desc = f"{desc} *Allowed:* {allowed}." if desc else f"*Allowed:* {allowed}."
            lines += [f"   * - ``{key}``", f"     - {_escape(_type_str(field.annotation))}",
                      f"     - {_default_str(field)}", f"     - {desc or NONE}"]
        lines.append("")
    return "\n".join(lines)


class _RstDirective(SphinxDirective):
    has_content = False

    def make_rst(self):
        raise NotImplementedError

    def run(self):
        return self.parse_text_to_nodes(self.make_rst(), allow_section_headings=True)


class ManifestDirective(_RstDirective):
    """``.. neuro-sae-manifest::``: every manifest key, from the pydantic schema."""

    def make_rst(self):
        import neuro_sae.manifest

        self.env.note_dependency(neuro_sae.manifest.__file__)
        return manifest_rst()


def _step_context(tmp):
    """A study of the demo manifest in a temporary folder, to evaluate the steps' slices."""
    from neuro_sae.manifest import load_manifest
    from neuro_sae.pipeline import default_manifest
    from neuro_sae.pipeline._registry import Study

    return Study(load_manifest(default_manifest(), check_files=False), out=tmp)


def _config_sections(step, study):
    try:
        units = step.units(study) if step.units is not None else None
        unit = units[0] if units else (study.manifest.subjects[0] if step.scope == "subject" else None)
        cfg = step.config(study, unit)
        return ", ".join(f"``{k}``" for k in cfg) or NONE
    except Exception:  # the slice needs files of an earlier step: not shown
        return NONE


def steps_rst():
    """The pipeline step table as reStructuredText."""
    with tempfile.TemporaryDirectory(prefix="neuro_sae_docs_") as tmp:
        return _steps_rst(tmp)


def _steps_rst(tmp):
    from neuro_sae.pipeline.steps import STEPS

    try:
        study = _step_context(tmp)
    except Exception:  # the demo manifest cannot be read: no config slices
        study = None
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 11 11 10 6 10 12 40", "",
             "   * - step", "     - command", "     - scope", "     - in ``run``/``demo``",
             "     - options", "     - config slice (demo manifest)", "     - what it does"]
    for step in STEPS:
        opts = ", ".join(f"``{flag}``" for flag, _ in step.options) or NONE
        cfg = _config_sections(step, study) if study is not None else NONE
        lines += [f"   * - ``{step.name}``", f"     - ``neuro-sae {step.cli}``",
                  f"     - {step.scope}", f"     - {'yes' if step.in_study else 'on request'}",
                  f"     - {opts}", f"     - {cfg}", f"     - {_escape(step.help)}"]
    return "\n".join(lines + [""])


class StepsDirective(_RstDirective):
    """``.. neuro-sae-steps::``: one row per record of ``STEPS``."""

    def make_rst(self):
        return steps_rst()


# -- result pages (docs/results/*.md, written by the studies; any may be absent) --------------


def _result_pages(srcdir):
    return sorted(p.stem for p in (Path(srcdir) / "results").glob("*.md"))


class ResultsDirective(_RstDirective):
    """``.. neuro-sae-results::``: a toctree of the result pages present (none: a sentence)."""

    def make_rst(self):
        pages = _result_pages(self.env.srcdir)
        if not pages:
            return "No result pages have been written yet (``docs/results/*.md``).\n"
        return "\n".join([".. toctree::", "   :maxdepth: 1", ""] + [f"   results/{p}" for p in pages])


def result_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:result:`steering```: a link to ``docs/results/steering.md`` when it exists."""
    from docutils import nodes
    from sphinx.addnodes import pending_xref

    env = inliner.document.settings.env
    if text in _result_pages(env.srcdir):
        ref = pending_xref("", nodes.inline(text=f"results/{text}"), refdomain="std",
                           reftype="doc", reftarget=f"/results/{text}", refexplicit=False)
        return [ref], []
    return [nodes.literal(text=f"docs/results/{text}.md")], []


# -- offline intersphinx ---------------------------------------------------------------------


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _external_reference(app, env, node, contnode):
    """Render an unresolved reference to an external project as plain text."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    top = target.split(".")[0]
    if node.get("reftype") == "class" and any(p.startswith("_") for p in target.split(".")):
        return contnode  # a private base class (show-inheritance): not documented by design
    if top == "neuro_sae" or not top:
        return None
    if top in app.config.external_modules or (("." not in target) and hasattr(builtins, target)) \
            or _importable(top):
        if top in app.config.intersphinx_mapping:
            return None  # the inventory is there: let a broken reference fail
        return contnode
    return None


def _skip_member(app, what, name, obj, skip, options):
    """Document inherited members only where neuro_sae defines them (not torch, pydantic,
    scikit-learn)."""
    if what != "class":
        return None
    if name.startswith("model_") or name in ("model_config", "model_fields"):
        return True
    target = obj.fget if isinstance(obj, property) else obj
    target = getattr(target, "__func__", target)
    if inspect.isroutine(target) or isinstance(obj, property):
        mod = getattr(target, "__module__", None) or ""
        if not mod.startswith("neuro_sae"):
            return True
    return None


def _always_reread(app, env, added, changed, removed):
    """Pages whose content depends on which result pages exist: reread on every build."""
    return [doc for doc in ("paper", "results") if doc in env.found_docs]


def setup(app):
    app.connect("env-get-outdated", _always_reread)
    app.connect("autodoc-skip-member", _skip_member)
    app.add_config_value("external_modules", (), "env")
    app.connect("builder-inited", write_api_pages, priority=100)
    app.add_directive("neuro-sae-manifest", ManifestDirective)
    app.add_directive("neuro-sae-steps", StepsDirective)
    app.add_directive("neuro-sae-results", ResultsDirective)
    app.add_role("result", result_role)
    app.connect("missing-reference", _external_reference, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
