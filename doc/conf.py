"""Sphinx configuration of the skgroupsparse documentation.

Build from the repository root (the ``docs`` extra installs what it needs)::

    python -m sphinx -b html -W --keep-going doc doc/_build/html
"""

from __future__ import annotations

import sys
from importlib.metadata import version as _version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "skgroupsparse"
author = "the skgroupsparse developers"
release = _version("skgroupsparse")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb"]

autosummary_generate = True
templates_path = ["_templates"]

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath", "amsmath"]

# The gallery: every example runs in every build (also when its file is
# unchanged, as the package may have changed), so every figure in the docs is
# drawn by the current code; an example that raises fails the build.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "run_stale_examples": True,
    "abort_on_example_error": True,
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 0,
}

html_theme = "alabaster"
html_title = "skgroupsparse"


def _plain_sklearn_refs(app, what, name, obj, options, lines):
    """Inherited scikit-learn docstrings cite its user guide and glossary: as text.

    No inventory of scikit-learn's docs is read (the build needs no network), so
    its ``:ref:`` and ``:term:`` roles would not resolve.
    """
    import re

    if getattr(obj, "__module__", "").startswith("sklearn"):
        role = re.compile(r":(?:ref|term):`([^`<]*?)\s*(?:<[^>`]*>)?`")
        lines[:] = [role.sub(r"\1", line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_refs)
