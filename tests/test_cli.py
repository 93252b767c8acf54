"""Tests for skgroupsparse.cli: the ``skgroupsparse`` command line.

Every run uses a few epochs and tiny layers, so each test takes a few seconds
at most on two cores.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skgroupsparse import cli
from skgroupsparse.cli import build_parser, is_classification_target, main

REPO = Path(__file__).resolve().parents[1]
FAST = ["--max-iter", "3", "--hidden", "8,4"]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def table(rng):
    """A mixed-type frame: three numeric columns, one text column, two targets."""
    n = 120
    X = rng.normal(size=(n, 3))
    colour = rng.choice(["red", "green", "blue"], size=n)
    return pd.DataFrame(
        {
            "x0": X[:, 0],
            "x1": X[:, 1],
            "noise": X[:, 2],
            "colour": colour,
            "label": np.where(X[:, 0] + (colour == "red") > 0.5, "yes", "no"),
            "price": 3.0 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=n) + 100.0,
        }
    )


@pytest.fixture
def csv_path(tmp_path, table):
    path = tmp_path / "toy.csv"
    table.to_csv(path, index=False)
    return path


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skgroupsparse: error: ")
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------
# Runs that fit
# --------------------------------------------------------------------------
def test_default_digits_run_prints_architecture_and_both_scores(capsys):
    assert main(FAST) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "digits" in out
    assert "1797 samples x 64 features, 10 classes" in out
    assert "train 1347 / test 450 (stratified, seed 0)" in out
    for label in ("input features", "hidden layer 1", "hidden layer 2"):
        assert label in out
    assert "parameters" in out and "zero weights" in out
    # the dense network 64-8-4-10 has 64*8+8 + 8*4+4 + 4*10+10 = 606 parameters
    assert "606" in out
    sparse = next(ln for ln in out.splitlines() if ln.startswith("GroupLassoMLP"))
    dense = next(ln for ln in out.splitlines() if ln.startswith("MLPClassifier"))
    for line in (sparse, dense):
        score, seconds, _, epochs = line.split(")")[-1].split()
        assert 0.0 <= float(score) <= 1.0
        assert float(seconds) >= 0.0
    assert dense.split()[-1] == "3"
    # the default searches alpha: a path of 16 stages of at most 3 epochs each
    # up to the chosen one, then the relaxed refit (at most 3 more)
    assert "searched alpha=" in sparse
    assert 3 <= int(sparse.split()[-1]) <= 16 * 3 + 3
    assert "search: RegularizationPathCV, 5 folds x 16 alphas, selection=one_se" in out
    assert "chosen (stage " in out and "held-out accuracy" in out
    assert "accuracy" in out and "fit time" in out
    assert "ConvergenceWarning" not in out + err


def test_a_fixed_alpha_fits_that_alpha_without_a_search(capsys):
    assert main([*FAST, "--alpha", "0.001"]) == 0
    out = capsys.readouterr().out
    sparse = next(ln for ln in out.splitlines() if ln.startswith("GroupLassoMLP"))
    assert "(alpha=0.001)" in sparse and sparse.split()[-1] == "3"
    assert "search:" not in out


def test_the_search_takes_its_options(capsys):
    argv = [*FAST, "--cv", "3", "--n-alphas", "4", "--selection", "0.02"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "search: RegularizationPathCV, 3 folds x 4 alphas, selection=0.02" in out


def test_learned_sizes_never_exceed_starting_sizes(capsys):
    assert main([*FAST, "--alpha", "0.05"]) == 0
    out = capsys.readouterr().out
    for line in out.splitlines():
        if line.startswith(("input features", "hidden layer")):
            start, learned = map(int, line.split()[-2:])
            assert 0 <= learned <= start


def test_csv_classification(csv_path, capsys):
    status = main(["--data", str(csv_path), "--target", "label", *FAST])
    assert status == 0
    out, err = capsys.readouterr()
    assert err == ""
    # x0, x1, noise, price, and colour one-hot encoded into three columns
    assert "120 samples x 7 features, 2 classes" in out
    assert "train 90 / test 30 (stratified, seed 0)" in out
    assert "GroupLassoMLPClassifier" in out and "MLPClassifier (dense" in out
    assert "accuracy" in out


def test_csv_regression_reports_r2(csv_path, capsys):
    status = main(["--data", str(csv_path), "--target", "price", *FAST])
    assert status == 0
    out = capsys.readouterr().out
    # x0, x1, noise, then colour and label one-hot encoded: 3 + 3 + 2
    assert "120 samples x 8 features, regression" in out
    assert "R^2" in out
    assert "GroupLassoMLPRegressor" in out and "MLPRegressor (dense" in out
    assert "stratified" not in out


def test_arff_file(tmp_path, capsys):
    rows = "\n".join(f"{i % 7}.5,{(i * 3) % 5},{'ab'[i % 2]}" for i in range(40))
    path = tmp_path / "toy.arff"
    path.write_text(
        "@relation toy\n@attribute u numeric\n@attribute v numeric\n"
        "@attribute class {a,b}\n@data\n" + rows + "\n"
    )
    assert main(["--data", str(path), "--target", "class", *FAST]) == 0
    assert "40 samples x 2 features, 2 classes" in capsys.readouterr().out


# --------------------------------------------------------------------------
# Which targets are classification
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, expected",
    [
        (["a", "b", "a"], True),
        ([True, False, True], True),
        ([0, 1, 2, 1], True),
        ([0.0, 1.0, 1.0], True),
        (list(range(20)), True),
        (list(range(21)), False),
        ([0.5, 1.0, 1.0], False),
        ([1.25, 3.5, -2.0], False),
    ],
)
def test_is_classification_target(values, expected):
    assert is_classification_target(pd.Series(values)) is expected


# --------------------------------------------------------------------------
# Errors: one line on stderr, exit status 2
# --------------------------------------------------------------------------
def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.csv"
    assert main(["--data", str(path), "--target", "y"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(path) in _one_error_line(err)


def test_unknown_column(csv_path, capsys):
    assert main(["--data", str(csv_path), "--target", "lable"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "'lable'" in line and "not found" in line


@pytest.mark.parametrize(
    "name, content",
    [
        ("bad.xlsx", "a,b\n1,2\n"),  # unsupported extension
        ("empty.csv", ""),  # nothing to parse
        ("binary.csv.gz", "not gzip at all"),  # unreadable
    ],
)
def test_unreadable_file(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert main(["--data", str(path), "--target", "a"]) == 2
    assert str(path) in _one_error_line(capsys.readouterr().err)


def test_directory_instead_of_file(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--target", "a"]) == 2
    _one_error_line(capsys.readouterr().err)


def test_missing_values_name_the_column(tmp_path, table, capsys):
    table.loc[3, "x1"] = np.nan
    path = tmp_path / "holes.csv"
    table.to_csv(path, index=False)
    assert main(["--data", str(path), "--target", "label"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "missing values" in line and "'x1'" in line


def test_too_few_rows(tmp_path, capsys):
    path = tmp_path / "tiny.csv"
    path.write_text("a,y\n1,0\n2,1\n3,0\n")
    assert main(["--data", str(path), "--target", "y"]) == 2
    assert "at least 8" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv, needed",
    [
        (["--target", "y"], "--target needs --data"),
        (["--data", "x.csv"], "--data needs --target"),
    ],
)
def test_data_and_target_go_together(argv, needed, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"skgroupsparse: error: {needed}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--hidden", "64,x"],
        ["--hidden", "0"],
        ["--alpha", "-1"],
        ["--alpha", "nan"],
        ["--max-iter", "0"],
        ["--seed", "-3"],
        ["--cv", "1"],
        ["--n-alphas", "0"],
        ["--selection", "median"],
        ["--selection", "-0.1"],
        ["--no-such-option"],
    ],
)
def test_bad_options_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "skgroupsparse: error:" in err and "Traceback" not in err


# --------------------------------------------------------------------------
# Parser and entry points
# --------------------------------------------------------------------------
def test_parser_defaults():
    args = build_parser().parse_args([])
    assert args.data is None and args.target is None
    assert args.hidden == cli.DEFAULT_HIDDEN == (64, 32)
    assert args.alpha is cli.DEFAULT_ALPHA is None  # search
    assert (args.cv, args.n_alphas, args.selection) == (5, 16, "one_se")
    assert args.max_iter == cli.DEFAULT_MAX_ITER
    assert build_parser().parse_args(["--hidden", " 16, 8 ,4"]).hidden == (16, 8, 4)


def test_help_and_version_return_0(capsys):
    assert main(["--help"]) == 0
    assert "--data" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("skgroupsparse ")


def test_python_dash_m_help():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH")) if p
    )
    result = subprocess.run(
        [sys.executable, "-m", "skgroupsparse", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: skgroupsparse")
    for option in ("--data", "--target", "--alpha", "--hidden", "--seed", "--max-iter"):
        assert option in result.stdout


# --------------------------------------------------------------------------
# Warm-up: compiling the kernels stays out of the fit times, and is stated
# --------------------------------------------------------------------------
def test_warm_up_leaves_the_model_unfitted_and_compiles_nothing_twice():
    problem = cli.digits_problem()
    X_train, _, y_train, _ = cli.split(problem, 0)
    sparse, _ = cli.make_models(problem, (8, 4), 1e-3, 3, 0, batch_size=200)
    warm = cli.warm_up(sparse, X_train, y_train, classification=True)
    assert warm.seconds > 0.0
    with pytest.raises(NotFittedError):
        check_is_fitted(sparse)
    assert sparse[-1].max_iter == 3 and sparse[-1].batch_size == 200
    # compiled (or loaded) once: a second warm-up in this process compiles nothing
    assert cli.warm_up(sparse, X_train, y_train, classification=True).compiled == 0


def test_warm_up_rows_hold_every_class():
    y = np.array([0] * 100 + [1] * 100 + [2])
    rows = cli._warm_up_rows(y, classification=True)
    assert set(y[rows]) == {0, 1, 2}
    assert len(rows) == cli.WARM_UP_ROWS + 2
    assert len(cli._warm_up_rows(y.astype(float), classification=False)) == 64


def _fake_warm_up(seconds, compiled):
    return lambda *args, **kwargs: cli.WarmUp(seconds, compiled)


def test_compilation_is_stated_with_the_cache_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "warm_up", _fake_warm_up(5.14, 7))
    monkeypatch.setattr(cli._jit, "CACHE_DIR", tmp_path)
    assert main(FAST) == 0
    out, err = capsys.readouterr()
    assert err == ""
    last = out.strip().splitlines()[-1]
    assert last.startswith("compiled the CPU kernels in 5.1 s")
    assert "not counted in the fit times" in last
    assert f"cached in {tmp_path}, later runs skip this" in last


@pytest.mark.parametrize(
    "value, expected",
    [
        ("off", "caching turned off by SKGROUPSPARSE_CACHE_DIR"),
        ("/nowhere/x", "no writable cache folder (/nowhere/x)"),
    ],
)
def test_compilation_without_cache_says_so(monkeypatch, capsys, value, expected):
    monkeypatch.setattr(cli, "warm_up", _fake_warm_up(2.0, 3))
    monkeypatch.setattr(cli._jit, "CACHE_DIR", None)
    monkeypatch.setenv("SKGROUPSPARSE_CACHE_DIR", value)
    assert main(FAST) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("compiled the CPU kernels in 2.0 s")
    assert expected in last and "every new process compiles again" in last


@pytest.mark.parametrize("seconds, compiled", [(0.2, 7), (5.0, 0)])
def test_no_note_without_slow_compilation(monkeypatch, capsys, seconds, compiled):
    monkeypatch.setattr(cli, "warm_up", _fake_warm_up(seconds, compiled))
    assert main(FAST) == 0
    out = capsys.readouterr().out
    assert "compiled" not in out
    assert out.strip().splitlines()[-1].startswith("MLPClassifier (dense")


# Runs the command in a fresh interpreter, recording the compiled kernel
# signatures before and after each timed fit.
FRESH_RUN = """\
import json
from skgroupsparse import _kernels, cli

cli.COMPILE_NOTE_SECONDS = 0.0
kernels = {
    name: obj for name, obj in vars(_kernels).items() if hasattr(obj, "signatures")
}
timed = []
fit_and_score = cli.fit_and_score

def recording(model, *args):
    before = {name: len(k.signatures) for name, k in kernels.items()}
    fit = fit_and_score(model, *args)
    after = {name: len(k.signatures) for name, k in kernels.items()}
    timed.append((type(cli._mlp(fit.model)).__name__, before, after))
    return fit

cli.fit_and_score = recording
assert cli.main(["--max-iter", "3", "--hidden", "8,4"]) == 0
print(json.dumps(timed))
"""


def test_timed_fits_exclude_compilation(tmp_path):
    # fresh caches, so the first run compiles (whichever folder numba uses)
    env = dict(os.environ)
    env["SKGROUPSPARSE_CACHE_DIR"] = str(tmp_path / "cache")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH")) if p
    )
    outputs = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", FRESH_RUN],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        lines = result.stdout.strip().splitlines()
        timed = json.loads(lines[-1])
        assert [name for name, _, _ in timed] == [
            "GroupLassoMLPClassifier",
            "MLPClassifier",
        ]
        # the warm-up ran the kernels before the timed fit, which adds none
        before, after = timed[0][1], timed[0][2]
        assert before["mlp_loss_and_grad"] >= 1
        assert after == before
        assert timed[1][1] == timed[1][2] == after
        outputs.append("\n".join(lines[:-1]))
    first, second = outputs
    note = first.strip().splitlines()[-1]
    assert note.startswith("compiled the CPU kernels in "), first
    assert f"cached in {tmp_path / 'cache'}" in note
    # the second process loads the kernels from the cache: nothing to state
    assert "compiled the CPU kernels" not in second
