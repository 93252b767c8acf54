"""The documentation builds, gallery included, with every warning an error.

Runs Sphinx on ``doc/`` into a temporary folder, the way a user or CI would:
``python -m sphinx -b html -W --keep-going doc <out>``. The build runs every
example of ``examples/`` (sphinx-gallery; an example that raises fails it), and
the test checks that every figure in the built pages is one an example drew.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_parser")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "doc"
EXAMPLES = sorted(path.stem for path in (ROOT / "examples").glob("plot_*.py"))


def test_docs_build_without_warnings(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-W",
            "--keep-going",
            "-q",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOC),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    html = tmp_path / "html"
    for page in ("index", "getting_started", "user_guide", "api", "references"):
        assert (html / f"{page}.html").is_file(), page
    # the gallery: every example ran and drew its figure ...
    assert len(EXAMPLES) >= 6, EXAMPLES
    for example in EXAMPLES:
        assert (html / "auto_examples" / f"{example}.html").is_file(), example
        assert (html / "_images" / f"sphx_glr_{example}_001.png").is_file(), example
    # ... and every image the pages show is one of those figures (or its thumbnail)
    shown = set()
    for page in html.rglob("*.html"):
        shown.update(re.findall(r'<img[^>]*src="([^"]+)"', page.read_text()))
    assert shown
    names = "|".join(EXAMPLES)
    drawn = re.compile(rf"sphx_glr_({names})_(\d{{3}}|thumb)\.png$")
    assert all(drawn.search(src) for src in shown), sorted(shown)
    # every public estimator has its API page
    for name in (
        "GroupLassoMLPClassifier",
        "GroupLassoMLPRegressor",
        "ShrinkNetClassifier",
        "ShrinkNetRegressor",
        "TargetSparsityCV",
    ):
        assert (html / "generated" / f"skgroupsparse.{name}.html").is_file(), name
