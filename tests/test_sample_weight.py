"""sample_weight: every mini-batch's loss is the weighted mean of its rows.

Oracles, in full-batch deterministic training (one batch of all rows, no
shuffling), where they hold exactly: integer weights equal the rows repeated,
zero weights equal the rows dropped, weights of one give the weights of no
weights bit for bit. scikit-learn's own checks run in ``test_estimator_checks.py``.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    ShrinkNetClassifier,
)
from skgroupsparse.training import use_engine


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    X, y = X[:240] / 16.0, y[:240]
    weights = np.random.default_rng(0).integers(0, 4, len(y)).astype(float)
    return X, y, weights


TASKS = {
    "multiclass": (GroupLassoMLPClassifier, lambda X, y: y),
    "binary": (GroupLassoMLPClassifier, lambda X, y: (y < 5).astype(int)),
    "regression": (GroupLassoMLPRegressor, lambda X, y: X[:, 20] - X[:, 42]),
    "switches": (ShrinkNetClassifier, lambda X, y: y),
}


def _full_batch(cls, **kw):
    params = dict(
        hidden_layer_sizes=(16,),
        batch_size=10**6,
        shuffle=False,
        max_iter=15,
        tol=0.0,
        random_state=0,
        alpha=1e-3,
    )
    params.update(kw)
    return cls(**params)


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _assert_same_model(a, b, atol):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=atol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-5)


@pytest.mark.parametrize("engine", ["numba", "torch"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_integer_weights_equal_repeated_rows(data, engine, task):
    X, y, w = data
    cls, target = TASKS[task]
    t = target(X, y)
    repeat = np.repeat(np.arange(len(t)), w.astype(int))
    with use_engine(engine):
        weighted = _fit(_full_batch(cls), X, t, sample_weight=w)
        repeated = _fit(_full_batch(cls), X[repeat], t[repeat])
    _assert_same_model(weighted, repeated, atol=5e-5)


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_zero_weights_equal_dropped_rows_and_ones_equal_none(data, engine):
    X, y, w = data
    kept = w > 0
    with use_engine(engine):
        weighted = _fit(_full_batch(GroupLassoMLPClassifier), X, y, sample_weight=kept)
        dropped = _fit(_full_batch(GroupLassoMLPClassifier), X[kept], y[kept])
        ones = _fit(
            _full_batch(GroupLassoMLPClassifier), X, y, sample_weight=np.ones(len(y))
        )
        plain = _fit(_full_batch(GroupLassoMLPClassifier), X, y)
    _assert_same_model(weighted, dropped, atol=5e-5)
    for p, q in zip(ones.coefs_, plain.coefs_):
        np.testing.assert_array_equal(p, q)
    # the objective reported is summed in another order on the torch engine
    np.testing.assert_allclose(ones.loss_curve_, plain.loss_curve_, rtol=1e-6)


def test_partial_fit_takes_weights_as_fit_does(data):
    X, y, w = data
    repeat = np.repeat(np.arange(len(y)), w.astype(int))
    a = _full_batch(GroupLassoMLPClassifier)
    b = _full_batch(GroupLassoMLPClassifier)
    for _ in range(3):
        a.partial_fit(X, y, classes=np.unique(y), sample_weight=w)
        b.partial_fit(X[repeat], y[repeat], classes=np.unique(y))
    _assert_same_model(a, b, atol=5e-5)
    r = _full_batch(GroupLassoMLPRegressor)
    r.partial_fit(X, X[:, 20], sample_weight=w)
    assert r.n_iter_ == 1


def test_weights_reach_early_stopping_and_bad_weights_are_refused(data):
    X, y, w = data
    est = GroupLassoMLPClassifier(
        (16,), max_iter=5, early_stopping=True, random_state=0
    )
    _fit(est, X, y, sample_weight=w + 1.0)
    assert len(est.validation_scores_) == est.n_iter_
    with pytest.raises(ValueError, match="[Nn]egative"):
        _fit(est, X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="shape|length|consistent"):
        _fit(est, X, y, sample_weight=np.ones(3))


def test_a_heavier_class_is_predicted_more_often(data):
    # the weights act: weighting class 0's rows by 20 makes the model predict
    # class 0 at least as often on rows of other classes than without
    X, y, _ = data
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0, alpha=1e-4)
    plain = _fit(GroupLassoMLPClassifier(**kw), X, y)
    heavy = _fit(
        GroupLassoMLPClassifier(**kw), X, y, sample_weight=np.where(y == 0, 20.0, 1.0)
    )
    p_plain = plain.predict_proba(X)[:, 0]
    p_heavy = heavy.predict_proba(X)[:, 0]
    assert p_heavy[y != 0].mean() > 2 * p_plain[y != 0].mean()


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_alpha_max_of_integer_weights_is_that_of_the_rows_repeated(data, task):
    from skgroupsparse.regularization import alpha_max

    X, y, w = data
    cls, target = TASKS[task]
    t = target(X, y)
    repeat = np.repeat(np.arange(len(t)), w.astype(int))
    est = cls((16,), random_state=0)
    weighted = alpha_max(est, X, t, sample_weight=w)
    assert weighted == pytest.approx(alpha_max(est, X[repeat], t[repeat]), rel=1e-9)
    assert weighted == pytest.approx(
        alpha_max(est, X, t, sample_weight=3 * w), rel=1e-9
    )
    assert weighted != pytest.approx(alpha_max(est, X, t), rel=1e-3)


def test_the_epoch_objective_is_the_weighted_mean_of_its_batches(data):
    # two batches in order; the second weighs nothing: the epoch's objective
    # (alpha=0: its loss alone) is the first batch's loss at the initial weights,
    # which a one-batch epoch on the first batch alone also reports
    X, y, _ = data
    kw = dict(hidden_layer_sizes=(16,), alpha=0.0, shuffle=False, max_iter=1)
    kw.update(random_state=0, tol=0.0)
    first = _fit(GroupLassoMLPClassifier(batch_size=120, **kw), X[:120], y[:120])
    halves = np.r_[np.ones(120), np.zeros(120)]
    both = _fit(
        GroupLassoMLPClassifier(batch_size=120, **kw), X, y, sample_weight=halves
    )
    assert both.loss_curve_[0] == pytest.approx(first.loss_curve_[0], rel=1e-6)
