"""Estimator-level behaviour of GroupLassoMLPClassifier / GroupLassoMLPRegressor."""

import doctest
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectFromModel
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skgroupsparse import GroupLassoMLPClassifier, GroupLassoMLPRegressor

ESTIMATORS = [GroupLassoMLPClassifier, GroupLassoMLPRegressor]
FAST = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def _data(est_cls, rng, n=40, p=4):
    X = rng.normal(size=(n, p))
    y = (
        (X[:, 0] > 0).astype(int)
        if est_cls is GroupLassoMLPClassifier
        else X[:, 0].copy()
    )
    return X, y


def _forward_numpy(est, X):
    """The full (uncompacted) network from coefs_/intercepts_, in NumPy."""
    act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[est.activation]
    h = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        h = h @ W.astype(np.float64) + b.astype(np.float64)
        if i < len(est.coefs_) - 1:
            h = act(h)
    return h


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("est_cls", ESTIMATORS)
@pytest.mark.parametrize(
    "bad, match",
    [
        (np.nan, "NaN"),
        (np.inf, "infinity"),
    ],
)
def test_non_finite_X_is_named(est_cls, bad, match, rng):
    X, y = _data(est_cls, rng)
    X[3, 1] = bad
    with pytest.raises(ValueError, match=match):
        est_cls(**FAST).fit(X, y)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_empty_X_is_named(est_cls):
    with pytest.raises(ValueError, match="0 sample"):
        est_cls(**FAST).fit(np.empty((0, 3)), np.empty(0))


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_three_d_X_is_named(est_cls, rng):
    X = rng.normal(size=(10, 2, 2))
    with pytest.raises(ValueError, match="dim 3"):
        est_cls(**FAST).fit(X, np.arange(10) % 2)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_string_features_are_named(est_cls):
    X = np.array([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]], dtype=object)
    with pytest.raises(ValueError, match="string|could not convert"):
        est_cls(**FAST).fit(X, [0, 1, 0, 1])


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_wrong_number_of_features_at_predict(est_cls, rng):
    X, y = _data(est_cls, rng)
    est = est_cls(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="4 features"):
        est.predict(X[:, :3])


def test_one_class_is_named(rng):
    X = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="only one class"):
        GroupLassoMLPClassifier(**FAST).fit(X, np.ones(10))


def test_regressor_nan_target_is_named(rng):
    X, y = _data(GroupLassoMLPRegressor, rng)
    y[0] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        GroupLassoMLPRegressor(**FAST).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=[1e-3, 1e-3, 1e-3]), "sequence of 2 values"),
        (dict(alpha=[1e-3, -1.0]), "non-negative"),
        (dict(alpha=-1.0), "alpha"),
        (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(penalty="ridge"), "penalty"),
        (dict(device="tpu"), "device"),
        (dict(groups="incoming", hidden_layer_sizes=()), "hidden layer"),
    ],
)
def test_bad_parameters_are_named(params, match, rng):
    X, y = _data(GroupLassoMLPRegressor, rng)
    with pytest.raises(ValueError, match=match):
        GroupLassoMLPRegressor(**{**FAST, **params}).fit(X, y)


def test_cuda_without_cuda_is_clear(rng):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = _data(GroupLassoMLPRegressor, rng)
    with pytest.raises(ValueError, match="CUDA is not available"):
        GroupLassoMLPRegressor(**FAST, device="cuda").fit(X, y)


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
def test_predict_runs_the_compacted_network_and_matches_coefs(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((32,), alpha=3e-3, max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.active_neurons_[0] < 32, "the penalty should remove neurons"
    assert est.support_.sum() < 64, "constant pixels of digits must be dropped"
    n_full = sum(W.size + b.size for W, b in zip(est.coefs_, est.intercepts_))
    assert est.network_.n_params < n_full
    logits = _forward_numpy(est, X)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(est.predict_proba(X), proba, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(est.predict(X), est.classes_[logits.argmax(axis=1)])


def test_fitted_attributes_agree_with_coefs(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((32,), alpha=3e-3, max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    W1, W2 = est.coefs_
    zeros = sum(int((W == 0).sum()) for W in est.coefs_)
    assert est.sparsity_ == pytest.approx(zeros / (W1.size + W2.size))
    # outgoing groups: a hidden neuron is dead iff its row of coefs_[1] is zero
    # (or no input reaches it)
    alive_out = np.linalg.norm(W2, axis=1) > 0
    reached = np.linalg.norm(W1, axis=0) > 0
    assert est.active_neurons_ == [int((alive_out & reached).sum())]
    # features: row of coefs_[0] into live neurons
    live = alive_out & reached
    norms = np.linalg.norm(W1[:, live], axis=1)
    np.testing.assert_allclose(est.feature_importances_, norms, rtol=1e-6)
    np.testing.assert_array_equal(est.support_, norms > 0)


def test_larger_alpha_gives_smaller_network(digits):
    X, y = digits
    sizes = []
    for alpha in (1e-4, 1e-2):
        est = GroupLassoMLPClassifier((32,), alpha=alpha, max_iter=15, random_state=0)
        with pytest.warns(ConvergenceWarning):
            est.fit(X, y)
        sizes.append((est.active_neurons_[0], est.support_.sum(), est.sparsity_))
    assert sizes[1][0] < sizes[0][0]
    assert sizes[1][1] < sizes[0][1]
    assert sizes[1][2] > sizes[0][2]


def test_per_layer_alpha_targets_features_only(digits):
    X, y = digits
    # a huge strength on input features only, none on neurons
    est = GroupLassoMLPClassifier(
        (16,), alpha=[0.05, 0.0], batch_size=32, max_iter=10, random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.support_.sum() < 20
    W2 = est.coefs_[1]
    assert np.all(np.linalg.norm(W2, axis=1) > 0), "neurons must not be penalised"


@pytest.mark.parametrize("penalty", ["group_lasso", "sparse_group_lasso", "l1"])
@pytest.mark.parametrize("groups", ["outgoing", "incoming"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamax", "rmsprop"])
def test_every_combination_trains(penalty, groups, optimizer, digits):
    X, y = digits
    lr = {"sgd": 0.1, "adam": 1e-2, "adamax": 1e-2, "rmsprop": 3e-3}[optimizer]
    est = GroupLassoMLPClassifier(
        (16,),
        alpha=1e-3,
        penalty=penalty,
        groups=groups,
        optimizer=optimizer,
        learning_rate_init=lr,
        batch_size=32,
        max_iter=8,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.score(X, y) > 0.8
    assert np.isfinite(est.loss_curve_).all()
    assert est.sparsity_ > 0, "the prox must produce exact zeros"


def test_incoming_groups_zero_whole_rows_with_bias(digits):
    X, y = digits
    est = GroupLassoMLPClassifier(
        (32,), alpha=1e-2, groups="incoming", max_iter=15, random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    W1, b1 = est.coefs_[0], est.intercepts_[0]
    dead_rows = (np.abs(W1).sum(axis=0) == 0) & (b1 == 0)
    assert dead_rows.any(), "some neuron should die"
    assert est.active_neurons_[0] == int((~dead_rows).sum())


def test_multi_output_regression(rng):
    X = rng.normal(size=(120, 6))
    Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 0] - X[:, 1]])
    est = GroupLassoMLPRegressor(
        (16,), alpha=1e-3, max_iter=200, learning_rate_init=1e-2, random_state=0
    ).fit(X, Y)
    assert est.predict(X).shape == (120, 2)
    assert est.score(X, Y) > 0.9


# ---------------------------------------------------------------------------
# scikit-learn integration
# ---------------------------------------------------------------------------
def test_pipeline_gridsearch_over_alpha_and_clone(digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(), GroupLassoMLPClassifier((16,), max_iter=5, random_state=0)
    )
    search = GridSearchCV(
        pipe,
        {"grouplassomlpclassifier__alpha": [1e-4, 1e-1]},
        cv=2,
        error_score="raise",
    )
    with pytest.warns(ConvergenceWarning):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > scores[1], "alpha=0.1 should kill most of the network"
    assert search.best_params_ == {"grouplassomlpclassifier__alpha": 1e-4}
    est = clone(search.best_estimator_[-1])
    assert est.get_params()["alpha"] == 1e-4
    assert not hasattr(est, "coefs_")


def test_select_from_model_keeps_the_support(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((16,), alpha=3e-3, max_iter=10, random_state=0)
    with pytest.warns(ConvergenceWarning):
        selector = SelectFromModel(est, threshold=1e-12).fit(X, y)
    np.testing.assert_array_equal(selector.get_support(), selector.estimator_.support_)


def test_feature_names_in(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    est = GroupLassoMLPClassifier(**FAST)
    with pytest.warns(ConvergenceWarning):
        est.fit(frame, y)
    assert list(est.feature_names_in_) == list(frame.columns)


def test_partial_fit_matches_epochs_and_needs_classes(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((16,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    for _ in range(3):
        est.partial_fit(X, y, classes=np.arange(10))
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3
    assert est.loss_curve_[-1] < est.loss_curve_[0]


def test_warm_start_continues(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((16,), max_iter=3, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    first = est.loss_curve_[-1]
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    # as in MLPClassifier, the curve and the epoch count go on
    assert len(est.loss_curve_) == est.n_iter_ == 6
    assert est.loss_curve_[3] < first + 1e-3


def test_warm_start_refuses_a_changed_model(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((16,), max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    coefs = [c.copy() for c in est.coefs_]
    for change in ({"activation": "tanh"}, {"groups": "incoming"}):
        est.set_params(**change)
        with pytest.raises(ValueError, match=next(iter(change))):
            est.fit(X, y)
        est.set_params(activation="relu", groups="outgoing")
    for old, new in zip(coefs, est.coefs_):
        np.testing.assert_array_equal(old, new)


def test_partial_fit_refuses_another_optimizer(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((16,), random_state=0)
    est.partial_fit(X, y, classes=np.arange(10))
    est.set_params(optimizer="sgd")
    with pytest.raises(ValueError, match="optimizer"):
        est.partial_fit(X, y)


def test_probabilities_do_not_overflow(digits):
    X, y = digits
    est = GroupLassoMLPClassifier((16,), max_iter=2, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = est.predict_proba(X * 1e6)
        log_proba = est.predict_log_proba(X * 1e6)
    assert np.isfinite(log_proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_docstring_examples_run():
    import skgroupsparse.group_lasso as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6
    assert result.failed == 0


def test_verbose_prints_live_neurons(digits, capsys):
    X, y = digits
    est = GroupLassoMLPClassifier(
        (16,), max_iter=2, verbose=True, early_stopping=True, random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2
    assert "validation score" in out[0] and "live neurons = [" in out[0]


def test_classifier_binary_multiclass_multilabel(rng):
    X, y = make_classification(
        n_samples=200, n_features=6, n_informative=4, random_state=0, n_classes=3
    )
    Y = np.column_stack([y == 0, y == 1]).astype(int)
    for target in (y == 0, np.array(["a", "b", "c"])[y], Y):
        est = GroupLassoMLPClassifier(
            (16,), max_iter=60, learning_rate_init=1e-2, random_state=0
        ).fit(X, target)
        pred = est.predict(X)
        assert pred.shape == np.asarray(target).shape
        proba = est.predict_proba(X)
        assert proba.shape[0] == 200
        assert est.score(X, target) > 0.7


def test_regression_data_from_make_regression():
    X, y = make_regression(n_samples=150, n_features=8, n_informative=3, random_state=0)
    est = GroupLassoMLPRegressor(
        (),
        alpha=1.0,
        optimizer="sgd",
        learning_rate_init=0.05,
        momentum=0.0,
        batch_size=150,
        max_iter=500,
        tol=0,
        n_iter_no_change=500,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning):
        est.fit(StandardScaler().fit_transform(X), y)
    # make_regression's informative features are the ones with nonzero truth
    assert 3 <= est.support_.sum() < 8
