"""Tests for skgroupsparse.datasets: real files of the offline folder, tmp files."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skgroupsparse import datasets
from skgroupsparse.datasets import (
    BENCHMARKS,
    load_benchmark,
    load_table,
    make_mackey_glass,
    shared_datasets_dir,
)


# --------------------------------------------------------------------------
# Real files: shapes as recorded in shared/datasets/PROVENANCE.md
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "file, target, header, shape, target_name",
    [
        # ARFF whose class values have leading blanks (scipy rejects it)
        ("pendigits.arff", None, True, (10992, 16), "class"),
        # target is the first column, found by name
        ("mg_scale.csv", None, True, (1385, 6), "target"),
        # no header row; column 0 is the label
        ("higgs_lightgbm_binary.train.tsv", 0, False, (7000, 28), 0),
        # no 'target'/'class' column: the last attribute is the default
        ("kin8nm.arff", None, True, (8192, 8), "y"),
        ("pmlb_satimage.tsv.gz", None, True, (6435, 36), "target"),
    ],
)
def test_load_table_real_shapes(data_dir, file, target, header, shape, target_name):
    X, y, names = load_table(data_dir / file, target, header=header)
    assert X.shape == shape
    assert isinstance(y, pd.Series) and y.shape == (shape[0],)
    assert names == [target_name]
    assert target_name not in X.columns
    assert not X.isna().any().any() and not y.isna().any()


def test_pendigits_labels_are_clean_integers(data_dir):
    _, y, _ = load_table(data_dir / "pendigits.arff")
    assert pd.api.types.is_integer_dtype(y)
    assert sorted(y.unique()) == list(range(10))


@pytest.mark.parametrize(
    "name, shape, n_classes",
    [
        ("pendigits", (10992, 16), 10),
        ("higgs", (7000, 28), 2),
        ("segment", (2310, 19), 7),
        ("letter", (20000, 16), 26),
        ("mg", (1385, 6), None),
        ("kin8nm", (8192, 8), None),
    ],
)
def test_load_benchmark_real(data_dir, name, shape, n_classes):
    X, y = load_benchmark(name)
    assert X.shape == shape and X.dtype == np.float64
    assert y.shape == (shape[0],)
    assert np.isfinite(X).all()
    if n_classes is None:
        assert y.dtype == np.float64
    else:
        assert len(np.unique(y)) == n_classes


def test_load_benchmark_one_hot_and_multi_target(data_dir):
    # credit-g: 20 columns, 13 of them nominal text, become 0/1 dummies
    X, y = load_benchmark("credit-g")
    assert X.dtype == np.float64 and X.shape[0] == 1000 and X.shape[1] > 20
    raw, _, _ = load_table(data_dir / "credit-g.arff")
    numeric = raw.select_dtypes("number").shape[1]
    assert np.isin(X[:, numeric:], [0.0, 1.0]).all()
    assert set(y) == {"good", "bad"}
    # oes97: the last 16 attributes are the targets
    X, y = load_benchmark("oes97")
    assert X.shape == (334, 263) and y.shape == (334, 16)


def test_benchmark_files_are_present(data_dir):
    missing = [s.file for s in BENCHMARKS.values() if not (data_dir / s.file).is_file()]
    assert missing == []


# --------------------------------------------------------------------------
# Round trips through temporary files
# --------------------------------------------------------------------------
@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "a": [1.5, -2.0, 3.25],
            "b": [1, 2, 3],
            "color": ["red", "green blue", "red"],
            "target": [0, 1, 0],
        }
    )


@pytest.mark.parametrize("name, sep", [("t.csv", ","), ("t.tsv", "\t")])
def test_csv_tsv_round_trip(tmp_path, frame, name, sep):
    path = tmp_path / name
    frame.to_csv(path, sep=sep, index=False)
    X, y, names = load_table(path)
    pd.testing.assert_frame_equal(X, frame.drop(columns="target"), check_dtype=False)
    pd.testing.assert_series_equal(y, frame["target"], check_dtype=False)
    assert names == ["target"]


def test_gzipped_round_trip_and_multi_target(tmp_path, frame):
    path = tmp_path / "t.CSV.gz"  # extension case does not matter
    with gzip.open(path, "wt") as f:
        frame.to_csv(f, index=False)
    X, y, names = load_table(path, target=["b", "a"])
    assert isinstance(y, pd.DataFrame) and list(y.columns) == ["b", "a"]
    assert list(X.columns) == ["color", "target"] and names == ["b", "a"]
    np.testing.assert_array_equal(y.to_numpy(), frame[["b", "a"]].to_numpy())


def test_headerless_file(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("1\t0.5\t2\n0\t1.5\t3\n")
    X, y, names = load_table(path, 0, header=False)
    assert list(X.columns) == [1, 2] and y.tolist() == [1, 0] and names == [0]


ARFF = """% a comment
@RELATION toy

@ATTRIBUTE 'x one' NUMERIC
@attribute size {small, 'very big'}
% a comment between attributes
@Attribute Class {yes,no}

@DATA
% a comment in the data
1.5, small, yes
?,'very big',no

-3,  small ,yes
"""


def test_arff_round_trip(tmp_path):
    path = tmp_path / "toy.arff"
    path.write_text(ARFF)
    X, y, names = load_table(path)
    assert names == ["Class"]  # 'class' matched ignoring case
    assert list(X.columns) == ["x one", "size"]
    assert X.shape == (3, 2)
    assert np.isnan(X["x one"][1]) and X["x one"][0] == 1.5 and X["x one"][2] == -3
    assert X["size"].tolist() == ["small", "very big", "small"]
    assert y.tolist() == ["yes", "no", "yes"]
    # gzipped ARFF reads the same
    gz = tmp_path / "toy.arff.gz"
    gz.write_bytes(gzip.compress(ARFF.encode()))
    X2, y2, _ = load_table(gz)
    pd.testing.assert_frame_equal(X, X2)
    pd.testing.assert_series_equal(y, y2)


def test_default_target_falls_back_to_last_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("u,v,w\n1,2,3\n4,5,6\n")
    X, y, names = load_table(path)
    assert names == ["w"] and list(X.columns) == ["u", "v"] and y.tolist() == [3, 6]


# --------------------------------------------------------------------------
# Errors: one line, naming the problem
# --------------------------------------------------------------------------
def _one_line(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("target", ["nope", ["a", "nope"]])
def test_bad_target_names_column_and_lists_columns(tmp_path, frame, target):
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="'nope'") as excinfo:
        load_table(path, target)
    message = _one_line(excinfo)
    for column in frame.columns:
        assert repr(column) in message


def test_missing_file(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(FileNotFoundError) as excinfo:
        load_table(path)
    assert str(path) in _one_line(excinfo)


@pytest.mark.parametrize("name", ["t.xlsx", "t.json.gz", "noextension"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="unsupported file type") as excinfo:
        load_table(path)
    assert name in _one_line(excinfo)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("t.arff", "@relation r\n@attribute a numeric\n", "no @data"),
        ("t.arff", "@relation r\n@data\n1\n", "no @attribute"),
        ("t.arff", "@attribute a numeric\n@data\n{0 1}\n", "sparse ARFF"),
        ("t.arff", "@attribute a numeric\n@data\n1,2\n", "more values"),
        ("t.arff", "@attribute a\n@data\n1\n", "malformed @attribute"),
        ("t.csv.gz", "a,b\n1,2\n", "cannot parse"),  # not gzip data
        ("t.csv", "", "cannot parse"),
        ("t.csv", 'a,b\n1,"2\n', "cannot parse"),
    ],
)
def test_unparsable_file(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as excinfo:
        load_table(path)
    _one_line(excinfo)


def test_load_benchmark_unknown_name():
    with pytest.raises(ValueError, match="'mnist'.*pendigits") as excinfo:
        load_benchmark("mnist")
    _one_line(excinfo)


def test_shared_datasets_dir_default_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)
    repo = Path(datasets.__file__).resolve().parent.parent
    assert shared_datasets_dir() == repo.parent / "shared" / "datasets"
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    assert shared_datasets_dir() == tmp_path
    # a folder without the file: the error says where it looked and how to fix it
    with pytest.raises(FileNotFoundError, match=datasets.DATA_ENV_VAR) as excinfo:
        load_benchmark("pendigits")
    assert str(tmp_path) in _one_line(excinfo)


# --------------------------------------------------------------------------
# load_dataset: every shared file, against PROVENANCE.md's summary table
# --------------------------------------------------------------------------
def _provenance_shapes(data_dir):
    """``file -> (rows, features, targets)`` parsed from PROVENANCE.md."""
    import re

    text = (data_dir / "PROVENANCE.md").read_text()
    shapes = {}
    for match in re.finditer(
        r"^\| `([^`]+)` \| [^|]+\| (\d+) x (\d+) \(\+(\d+)\)", text, re.MULTILINE
    ):
        file, rows, features, targets = match.groups()
        shapes[file] = (int(rows), int(features), int(targets))
    return shapes


def test_every_shared_file_loads_with_its_recorded_shape(data_dir):
    from skgroupsparse.datasets import list_datasets, load_dataset

    shapes = _provenance_shapes(data_dir)
    assert len(shapes) == 25
    table = list_datasets()
    by_file = {spec.file: name for name, spec in BENCHMARKS.items()}
    assert set(by_file) == set(shapes)  # every shared file has a name
    for file, (rows, features, targets) in shapes.items():
        name = by_file[file]
        X, y = load_dataset(name)
        assert X.shape == (rows, features), name
        assert y.shape == ((rows,) if targets == 1 else (rows, targets)), name
        assert tuple(table.loc[name, ["n_samples", "n_features", "n_targets"]]) == (
            rows,
            features,
            targets,
        )
        assert table.loc[name, "task"] in ("classification", "regression")


def test_load_dataset_names_and_folders(data_dir, tmp_path, monkeypatch):
    from skgroupsparse.datasets import list_datasets, load_dataset

    X, y = load_dataset("OptDigits")  # case does not matter
    assert X.shape == (5620, 64) and y.name == "class"
    assert list_datasets().loc["optdigits", "openml_id"] == 28
    with pytest.raises(ValueError, match="did you mean 'optdigits'"):
        load_dataset("optdigit")
    # another folder, by argument and by environment variable
    (tmp_path / "mg_scale.csv").write_bytes((data_dir / "mg_scale.csv").read_bytes())
    X, _ = load_dataset("mg", data_home=tmp_path)
    assert X.shape == (1385, 6)
    with pytest.raises(FileNotFoundError, match=r"not found in .*\(data_home\)"):
        load_dataset("letter", data_home=tmp_path)
    monkeypatch.setenv("SKGROUPSPARSE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\$SKGROUPSPARSE_DATA"):
        load_dataset("letter")


def test_load_dataset_falls_back_to_openml_by_id(tmp_path, monkeypatch):
    # no network in tests: scikit-learn's fetch_openml is replaced by a stand-in
    # that records its call; the offline path must not call it at all
    import sklearn.datasets
    from sklearn.utils import Bunch

    from skgroupsparse.datasets import load_dataset

    calls = []
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    target = pd.Series(["x", "y"], name="class")

    def fake_fetch_openml(**kwargs):
        calls.append(kwargs)
        return Bunch(data=frame, target=target)

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch_openml)
    with pytest.raises(
        FileNotFoundError, match="download_if_missing=True for OpenML id 6"
    ):
        load_dataset("letter", data_home=tmp_path)
    assert calls == []
    X, y = load_dataset("letter", data_home=tmp_path, download_if_missing=True)
    assert X is frame and y is target
    assert calls == [dict(data_id=6, as_frame=True, parser="auto")]
    # a dataset without an OpenML id is not downloaded
    with pytest.raises(FileNotFoundError, match="no known OpenML id"):
        load_dataset("mg", data_home=tmp_path, download_if_missing=True)
    assert len(calls) == 1

    def offline(**kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(FileNotFoundError, match="OpenML id 6 failed: network"):
        load_dataset("letter", data_home=tmp_path, download_if_missing=True)


# --------------------------------------------------------------------------
# make_teacher_network
# --------------------------------------------------------------------------
def test_teacher_network_is_deterministic_under_random_state():
    from skgroupsparse.datasets import make_teacher_network

    a = make_teacher_network(200, 12, 4, (6, 3), noise=0.1, random_state=7)
    b = make_teacher_network(200, 12, 4, (6, 3), noise=0.1, random_state=7)
    c = make_teacher_network(200, 12, 4, (6, 3), noise=0.1, random_state=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2]["informative"], b[2]["informative"])
    assert not np.array_equal(a[1], c[1])


def test_teacher_network_reads_only_its_informative_columns():
    from skgroupsparse.datasets import make_teacher_network

    X, y, teacher = make_teacher_network(300, 10, 3, (5,), random_state=0)
    informative = teacher["informative"]
    assert len(informative) == 3 and X.shape == (300, 10) and y.shape == (300,)
    used = np.flatnonzero(np.abs(teacher["coefs"][0]).sum(axis=1))
    np.testing.assert_array_equal(used, informative)

    # without noise y is the teacher's output: changing an uninformative
    # column does not change it, changing an informative one does
    def forward(X):
        h = X
        for i, (W, b) in enumerate(zip(teacher["coefs"], teacher["intercepts"])):
            h = h @ W + b
            h = np.tanh(h) if i < len(teacher["coefs"]) - 1 else h
        return h[:, 0]

    np.testing.assert_allclose(forward(X), y, rtol=1e-12)
    other = np.setdiff1d(np.arange(10), informative)[0]
    X2 = X.copy()
    X2[:, other] += 1.0
    np.testing.assert_allclose(forward(X2), y, rtol=1e-12)
    X2[:, informative[0]] += 1.0
    assert not np.allclose(forward(X2), y)


def test_teacher_network_classification_and_errors():
    from skgroupsparse.datasets import make_teacher_network

    _, y, _ = make_teacher_network(
        500, 8, 3, task="classification", n_classes=4, random_state=0
    )
    assert set(np.unique(y)) <= {0, 1, 2, 3} and len(np.unique(y)) > 1
    _, y, _ = make_teacher_network(500, 8, 3, task="classification", random_state=0)
    assert set(np.unique(y)) == {0, 1}
    with pytest.raises(ValueError, match="n_informative must be between"):
        make_teacher_network(10, 3, 5)
    with pytest.raises(ValueError, match="task must be"):
        make_teacher_network(10, 3, 2, task="ranking")


def _lag_statistics(X, y):
    """Correlation of the first column with each later one; the target's range."""
    lags = [float(np.corrcoef(X[:, 0], X[:, j])[0, 1]) for j in range(1, X.shape[1])]
    return np.array(lags), np.array([y.min(), y.max(), y.mean(), y.std()])


def test_mackey_glass_matches_the_shared_mg_data(data_dir):
    mg = pd.read_csv(data_dir / "mg_scale.csv")
    X_file = mg[[f"x{j}" for j in range(1, 7)]].to_numpy()
    file_lags, file_target = _lag_statistics(X_file, mg["target"].to_numpy())
    X, y = make_mackey_glass(random_state=0)
    assert X.shape == X_file.shape and y.shape == (len(mg),)
    lags, target = _lag_statistics(X, y)
    # the file's lag-6k autocorrelations swing between -0.65 and +0.45. Over
    # random_state 0..9 the generator's differ from them by at most 0.058;
    # sampling every 5.5 or 6.5 time units instead of 6 misses by 0.86 and
    # 1.27, every time unit (the usual reading of mg) by more than 0.5
    np.testing.assert_allclose(lags, file_lags, atol=0.08)
    np.testing.assert_allclose(target[:2], file_target[:2], atol=0.01)  # range
    np.testing.assert_allclose(target[2:], file_target[2:], atol=0.005)  # mean, std
    # the same layout: column j is column 0 six rows back, the target 85 ahead
    np.testing.assert_array_equal(X[6:, 1], X[:-6, 0])
    np.testing.assert_array_equal(X[30:, 5], X[:-30, 0])
    np.testing.assert_array_equal(y[:-85], X[85:, 0])


def test_mackey_glass_solves_the_delay_equation():
    # sampled on the solver's own grid, the series must satisfy
    # dx/dt = beta x(t - tau) / (1 + x(t - tau)^10) - gamma x(t) to O(dt^2)
    # with a central difference
    dt = 0.05
    X, y = make_mackey_glass(
        3000, n_lags=1, horizon=1, sampling_interval=dt, dt=dt, random_state=1
    )
    x = np.append(X[:, 0], y[-1])
    delay = int(round(17 / dt))
    t = np.arange(delay, len(x) - 1)
    slope = (x[t + 1] - x[t - 1]) / (2 * dt)
    rate = 0.2 * x[t - delay] / (1 + x[t - delay] ** 10) - 0.1 * x[t]
    assert np.max(np.abs(slope - rate)) < 1e-3 * np.max(np.abs(rate))


def test_mackey_glass_random_state_and_errors():
    X0, y0 = make_mackey_glass(200, random_state=3)
    X1, y1 = make_mackey_glass(200, random_state=3)
    np.testing.assert_array_equal(X0, X1)
    np.testing.assert_array_equal(y0, y1)
    assert not np.allclose(make_mackey_glass(200, random_state=4)[1], y0)
    with pytest.raises(ValueError, match="multiple of dt"):
        make_mackey_glass(10, tau=17.05)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        make_mackey_glass(0)
    with pytest.raises(ValueError, match="lag must be a non-negative integer"):
        make_mackey_glass(10, lag=2.5)
    with pytest.raises(ValueError, match="at least 2 dt"):
        make_mackey_glass(10, tau=0.1)
