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
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "generated/*.examples"]

autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3

# no network at build time: intersphinx reads no inventories
intersphinx_mapping: dict = {}

html_theme = "alabaster"
html_title = "skgroupsparse"


def _plain_sklearn_refs(app, what, name, obj, options, lines):
    """Inherited scikit-learn docstrings cite its user guide's labels: as text."""
    import re

    if getattr(obj, "__module__", "").startswith("sklearn"):
        role = re.compile(r":ref:`([^`<]*?)\s*(?:<[^>`]*>)?`")
        lines[:] = [role.sub(r"\1", line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_refs)
