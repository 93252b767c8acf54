"""class_weight: each row weighs its class's weight (times its sample weight).

Oracles: the same fit with the equivalent ``sample_weight`` (bit for bit), and
the minority class's recall on an imbalanced 9:1 split of ``phoneme``.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    ShrinkNetClassifier,
    datasets,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _same(a, b):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("cls", [GroupLassoMLPClassifier, ShrinkNetClassifier])
def test_class_weights_are_the_sample_weights_of_their_classes(digits, cls):
    X, y = digits
    kw = dict(hidden_layer_sizes=(12,), max_iter=4, random_state=0)
    table = {0: 5.0, 3: 0.5}
    by_class = _fit(cls(class_weight=table, **kw), X, y)
    by_row = _fit(cls(**kw), X, y, sample_weight=compute_sample_weight(table, y))
    _same(by_class, by_row)
    balanced = _fit(cls(class_weight="balanced", **kw), X, y)
    rows = compute_sample_weight("balanced", y)
    _same(balanced, _fit(cls(**kw), X, y, sample_weight=rows))
    # with sample weights too: the product
    w = np.linspace(0.5, 2.0, len(y))
    both = _fit(cls(class_weight=table, **kw), X, y, sample_weight=w)
    product = compute_sample_weight(table, y) * w
    _same(both, _fit(cls(**kw), X, y, sample_weight=product))


def test_balanced_weights_raise_the_minority_recall_on_a_9_to_1_split(data_dir):
    X, y = datasets.load_dataset("phoneme")
    X, y = np.asarray(X, dtype=float), np.asarray(y)
    minority = 1
    assert (y == minority).mean() < 0.5
    rng = np.random.default_rng(0)
    major = np.flatnonzero(y != minority)
    few = rng.choice(np.flatnonzero(y == minority), len(major) // 9, replace=False)
    keep = np.r_[major, few]
    X_tr, X_te, y_tr, y_te = train_test_split(
        X[keep], y[keep], test_size=0.3, stratify=y[keep], random_state=0
    )
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    kw = dict(hidden_layer_sizes=(16,), max_iter=30, random_state=0, alpha=1e-4)
    plain = _fit(GroupLassoMLPClassifier(**kw), X_tr, y_tr)
    balanced = _fit(GroupLassoMLPClassifier(class_weight="balanced", **kw), X_tr, y_tr)
    recall = [
        recall_score(y_te, m.predict(X_te), pos_label=minority)
        for m in (plain, balanced)
    ]
    assert recall[1] >= recall[0] + 0.3, recall


def test_partial_fit_takes_a_dict_but_not_balanced(digits):
    X, y = digits
    classes = np.unique(y)
    table = {1: 3.0}
    a = GroupLassoMLPClassifier((12,), class_weight=table, random_state=0)
    b = GroupLassoMLPClassifier((12,), random_state=0)
    a.partial_fit(X, y, classes=classes)
    b.partial_fit(X, y, classes=classes, sample_weight=compute_sample_weight(table, y))
    _same(a, b)
    with pytest.raises(
        ValueError, match="'balanced' is not available with partial_fit"
    ):
        GroupLassoMLPClassifier(class_weight="balanced").partial_fit(
            X, y, classes=classes
        )


def test_the_parameter_is_the_classifiers_and_checked(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((8,), class_weight="balanced", alpha=2e-3)
    assert clone(est).get_params()["class_weight"] == "balanced"
    assert clone(est).alpha == 2e-3
    assert "class_weight" not in GroupLassoMLPRegressor().get_params()
    with pytest.raises(ValueError, match="class_weight"):
        GroupLassoMLPClassifier(class_weight="heavy").fit(X, y)
    multilabel = np.c_[y % 2, y < 3]
    with pytest.raises(ValueError, match="single-label"):
        GroupLassoMLPClassifier(class_weight={0: 2.0}).fit(X, multilabel)


def _linear(alpha, **kw):
    """A full-batch linear classifier trained to convergence (prox-gradient)."""
    return GroupLassoMLPClassifier(
        (),
        alpha=alpha,
        batch_size=10**6,
        max_iter=2000,
        tol=0.0,
        n_iter_no_change=10**6,
        optimizer="sgd",
        learning_rate_init=0.5,
        random_state=0,
        **kw,
    )


def test_alpha_max_and_the_optimality_residual_weigh_the_classes():
    from sklearn.datasets import make_classification

    from skgroupsparse.regularization import alpha_max

    X, y = make_classification(200, 6, n_informative=3, weights=[0.8], random_state=0)
    w = compute_sample_weight("balanced", y)
    balanced = _linear(0.02, class_weight="balanced")
    top = alpha_max(balanced, X, y)
    # the equivalent sample weights give the same alpha_max, the unweighted
    # problem another one
    assert top == pytest.approx(alpha_max(_linear(0.02), X, y, sample_weight=w))
    assert top != pytest.approx(alpha_max(_linear(0.02), X, y), rel=0.05)
    # the lasso's alpha_max: every feature zero just above it, not below
    assert _fit(_linear(1.05 * top, class_weight="balanced"), X, y).support_.sum() == 0
    assert _fit(_linear(0.8 * top, class_weight="balanced"), X, y).support_.sum() > 0
    # a converged weighted fit is stationary for the weighted objective only
    _fit(balanced, X, y)
    assert balanced.optimality_residual(X, y) < 1e-5
    unweighted = clone(balanced).set_params(class_weight=None)
    unweighted.__dict__.update(
        {k: v for k, v in vars(balanced).items() if k.endswith("_") or k[0] == "_"}
    )
    assert unweighted.optimality_residual(X, y) > 1e-3
    assert unweighted.optimality_residual(X, y, sample_weight=w) < 1e-5
