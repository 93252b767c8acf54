"""The documentation builds, with every warning an error (issue 7).

Runs Sphinx on ``doc/`` into a temporary folder, the way a user or CI would:
``python -m sphinx -b html -W --keep-going doc <out>``.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_parser")

DOC = Path(__file__).resolve().parents[1] / "doc"


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
    for page in ("index", "getting_started", "user_guide", "api"):
        assert (html / f"{page}.html").is_file(), page
    # every public estimator has its API page
    for name in (
        "GroupLassoMLPClassifier",
        "GroupLassoMLPRegressor",
        "ShrinkNetClassifier",
        "ShrinkNetRegressor",
        "TargetSparsityCV",
    ):
        assert (html / "generated" / f"skgroupsparse.{name}.html").is_file(), name
