"""Sphinx configuration of the neuro_sae documentation (``make docs``)."""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import neuro_sae  # noqa: E402

project = "neuro_sae"
author = "the neuro_sae developers"
copyright = "2026, the neuro_sae developers"
version = release = neuro_sae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "neuro_sae_docs",  # docs/_ext: API pages, manifest reference, step table, offline intersphinx
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
root_doc = "index"
default_role = "py:obj"
nitpicky = True  # a broken reference into neuro_sae fails the build (make docs uses -W)
suppress_warnings = ["config.cache",  # sphinx-gallery's callables in the config
                    "myst.header"]  # a result page starting at "##" is fine

# -- autodoc / autosummary / numpydoc ---------------------------------------------------
from neuro_sae_docs import API_MODULES  # noqa: E402

# the API pages are written by neuro_sae_docs at builder-inited, before autosummary reads them
autosummary_generate = [f"api/{name}.rst" for name, _ in API_MODULES]
autodoc_typehints = "none"  # types come from the numpydoc docstrings
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- intersphinx --------------------------------------------------------------------------
# These machines have no internet: inventories are used only when they can be read, from
# docs/_intersphinx/<name>.inv (copy each project's ``<url>/objects.inv`` there where there is a
# network) or, with NEURO_SAE_DOCS_ONLINE=1, from the projects' sites. Otherwise references
# to these projects render as plain text; references into neuro_sae always stay checked.
INTERSPHINX_URLS = {
    "python": "https://docs.python.org/3",
    "numpy": "https://numpy.org/doc/stable",
    "scipy": "https://docs.scipy.org/doc/scipy",
    "mne": "https://mne.tools/stable",
    "sklearn": "https://scikit-learn.org/stable",
    "torch": "https://docs.pytorch.org/docs/stable",
    "pandas": "https://pandas.pydata.org/docs",
    "matplotlib": "https://matplotlib.org/stable",
}
intersphinx_mapping = {}
for _name, _url in INTERSPHINX_URLS.items():
    _local = DOCS / "_intersphinx" / f"{_name}.inv"
    if _local.is_file():
        intersphinx_mapping[_name] = (_url, str(_local))
    elif os.environ.get("NEURO_SAE_DOCS_ONLINE") == "1":
        intersphinx_mapping[_name] = (_url, None)
# the top-level modules whose unresolved references are rendered as plain text offline
external_modules = ("python", "builtins", "numpy", "scipy", "mne", "mne_bids", "sklearn",
                    "torch", "pandas", "matplotlib", "pydantic", "joblib", "dask", "pathlib",
                    "os", "collections", "typing", "argparse", "logging", "concurrent",
                    "huggingface_hub", "transformers", "safetensors", "sae_lens", "nilearn",
                    "statsmodels", "pyarrow", "datetime", "contextlib", "enum", "json",
                    "dataclasses", "io", "abc", "functools", "subprocess", "threading")

# -- sphinx-gallery -----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "reference_url": {"neuro_sae": None},
    "backreferences_dir": None,
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "write_computation_times": False,
}

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"neuro_sae {version}"
html_static_path = ["_static"]
html_css_files = ["neuro_sae.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 4,
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
}
# wide tables: no left sidebar on the pages that have no sub-pages
html_sidebars = {page: [] for page in ("index", "getting_started", "user_guide", "configuration",
                                        "pipeline", "paper", "performance", "changelog",
                                        "results")}
html_show_sourcelink = False
html_copy_source = False
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
