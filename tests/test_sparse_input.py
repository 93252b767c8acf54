"""Sparse input: taken as scikit-learn's MLP takes it, made dense batch by batch.

Oracles: the same fit on the dense copy (same seed); a process whose peak
memory is read while it fits a matrix whose dense copy is many times larger.
"""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
    ShrinkNetClassifier,
    datasets,
)
from skgroupsparse.training import use_engine


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:500] / 16.0, y[:500]  # about half the pixels are zero


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


SETTINGS = {
    "plain": dict(),
    "removing units while training": dict(alpha=3e-3, remove_dead=True, remove_every=3),
    "early stopping": dict(early_stopping=True),
    "sgd": dict(optimizer="sgd", learning_rate_init=1e-2),
}


@pytest.mark.parametrize("engine", ["numba", "torch"])
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_a_sparse_matrix_fits_as_its_dense_copy(digits, engine, setting):
    X, y = digits
    kw = dict(hidden_layer_sizes=(24,), max_iter=6, random_state=0)
    kw.update(SETTINGS[setting])
    with use_engine(engine):
        dense = _quiet(GroupLassoMLPClassifier(**kw).fit, X, y)
        sparse = _quiet(GroupLassoMLPClassifier(**kw).fit, sp.csr_matrix(X), y)
    np.testing.assert_allclose(
        sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), atol=1e-6
    )
    for a, b in zip(sparse.coefs_, dense.coefs_):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert sparse.loss_curve_ == pytest.approx(dense.loss_curve_, abs=1e-6)
    assert sparse.active_neurons_ == dense.active_neurons_


@pytest.mark.parametrize("fmt", ["csc", "coo", "lil"])
def test_other_sparse_formats_regressors_and_shrinknets(digits, fmt):
    X, y = digits
    Xs = sp.csr_matrix(X).asformat(fmt)
    for est, target in (
        (GroupLassoMLPRegressor((12,), max_iter=4, random_state=0), X[:, 20]),
        (ShrinkNetClassifier((12,), max_iter=4, random_state=0), y),
    ):
        a = _quiet(est.fit, X, target).predict(X)
        b = _quiet(est.fit, Xs, target).predict(Xs)
        np.testing.assert_allclose(a, b, atol=1e-6)
    # partial_fit takes it too
    net = GroupLassoMLPClassifier((12,), random_state=0)
    net.partial_fit(Xs, y, classes=np.unique(y))
    assert net.score(Xs, y) == net.score(X, y)


def test_one_hot_encoder_in_a_pipeline_on_credit_g(data_dir):
    X, y = datasets.load_dataset("credit-g")
    numeric = X.select_dtypes("number").columns
    nominal = [c for c in X.columns if c not in numeric]
    assert len(nominal) == 13  # the point: OneHotEncoder's sparse output
    encoded = OneHotEncoder(handle_unknown="ignore").fit_transform(X[nominal])
    assert sp.issparse(encoded)
    pipe = make_pipeline(
        OneHotEncoder(handle_unknown="ignore"),
        GroupLassoMLPClassifier((16,), max_iter=20, random_state=0),
    )
    _quiet(pipe.fit, X[nominal][:800], y[:800])
    assert pipe.score(X[nominal][800:], y[800:]) > 0.6


def test_the_search_takes_sparse_input_one_fold_at_a_time(digits):
    X, y = digits
    net = GroupLassoMLPClassifier((12,), max_iter=3, random_state=0)
    dense = _quiet(RegularizationPathCV(net, [1e-3, 1e-2], cv=2).fit, X, y)
    sparse = _quiet(
        RegularizationPathCV(net, [1e-3, 1e-2], cv=2).fit, sp.csr_matrix(X), y
    )
    np.testing.assert_allclose(
        sparse.cv_results_["mean_test_score"], dense.cv_results_["mean_test_score"]
    )
    assert sparse.alpha_ == dense.alpha_


def test_a_matrix_whose_dense_copy_would_not_fit_in_the_bound_still_fits(tmp_path):
    # 200,000 x 5,000 with 3 non-zeros a row: 600,000 non-zeros (7 MB as
    # CSR); its dense copy is 4 GB in float32. The child's peak resident
    # memory must stay under 1.5 GB, torch and scikit-learn included.
    script = textwrap.dedent(
        """
        import resource, warnings
        import numpy as np, scipy.sparse as sp
        from skgroupsparse import GroupLassoMLPClassifier
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(0)
        n, d, k = 200_000, 5_000, 3  # k non-zeros a row (sp.random would draw
        # its positions from all n * d: an 8 GB permutation)
        X = sp.csr_matrix(
            (rng.random(n * k, dtype=np.float32), rng.integers(0, d, n * k),
             np.arange(0, n * k + 1, k)),
            shape=(n, d),
        )
        y = (X[:, :2500].sum(axis=1).A1 > X[:, 2500:].sum(axis=1).A1).astype(int)
        net = GroupLassoMLPClassifier((4,), max_iter=1, batch_size=512,
                                      random_state=0).fit(X, y)
        same = np.array_equal(
            net.predict_proba(X[:2_000]), net.predict_proba(X[:2_000].toarray())
        )
        full = net.predict(X)  # all rows, made dense a chunk at a time
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB
        print(f"{peak:.3f} {int(same)} {len(full)} {net.n_iter_}")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak, same, n_predicted, epochs = map(float, done.stdout.split())
    assert peak < 1.5, f"peak resident memory {peak:.2f} GiB"
    assert same == 1 and n_predicted == 200_000 and epochs == 1
