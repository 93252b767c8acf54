"""alpha_max, paths over estimators and the target search (``regularization``).

Oracles: scikit-learn's ``Lasso`` and ``MultiTaskLasso`` (``alpha_max`` of a
linear model), fits done by hand, and a stand-in estimator whose sparsity
moves one way only (the search's logic).
"""

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, MultiTaskLasso
from sklearn.model_selection import KFold

from skgroupsparse import GroupLassoMLPClassifier, GroupLassoMLPRegressor
from skgroupsparse.path import SearchTarget, regularization_growing
from skgroupsparse.regularization import (
    alpha_max,
    regularization_path,
    regularization_path_cv,
    target_search,
)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _regression(seed=0, n=80, p=6, k=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    W = np.zeros((p, k or 1))
    W[:3] = rng.normal(size=(3, k or 1)) * 2
    Y = X @ W + 0.3 * rng.normal(size=(n, k or 1)) + 1.5
    return X, (Y[:, 0] if k is None else Y)


# --------------------------------------------------------------------------
# alpha_max
# --------------------------------------------------------------------------
def test_alpha_max_of_a_linear_model_is_the_lasso_one():
    X, y = _regression()
    est = GroupLassoMLPRegressor(hidden_layer_sizes=(), penalty="l1")
    a = alpha_max(est, X, y)
    # the lasso with scikit-learn's scaling (1/(2n)||y - Xw||^2 + a||w||_1)
    assert np.all(Lasso(alpha=a * (1 + 1e-6), tol=1e-10).fit(X, y).coef_ == 0)
    assert np.any(Lasso(alpha=a * (1 - 1e-3), tol=1e-10).fit(X, y).coef_ != 0)


def test_alpha_max_of_a_linear_group_lasso_is_the_multitask_lasso_one():
    X, Y = _regression(k=3)
    est = GroupLassoMLPRegressor(hidden_layer_sizes=())
    a = alpha_max(est, X, Y)
    # our loss sums the outputs and the groups weigh sqrt(3): alpha_mtl = a sqrt(3)
    mtl = a * np.sqrt(3)
    assert np.all(
        MultiTaskLasso(alpha=mtl * (1 + 1e-6), tol=1e-10).fit(X, Y).coef_ == 0
    )
    assert np.any(
        MultiTaskLasso(alpha=mtl * (1 - 1e-3), tol=1e-10).fit(X, Y).coef_ != 0
    )


def test_alpha_max_above_it_a_full_batch_fit_drops_every_feature():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = GroupLassoMLPClassifier(
        hidden_layer_sizes=(),
        optimizer="sgd",
        momentum=0.0,
        learning_rate_init=0.5,
        batch_size=120,
        max_iter=300,
        tol=0,
        n_iter_no_change=300,
        random_state=0,
    )
    a = alpha_max(est, X, y)
    above = _quiet(est.set_params(alpha=1.02 * a).fit, X, y)
    below = _quiet(copy.deepcopy(est).set_params(alpha=0.9 * a).fit, X, y)
    assert not above.support_.any()
    assert below.support_.any()


def test_alpha_max_does_not_touch_the_estimator_and_follows_the_seed():
    X, y = _regression()
    est = GroupLassoMLPRegressor((8,), random_state=0)
    a = alpha_max(est, X, y)
    assert not hasattr(est, "coefs_")
    assert a == alpha_max(est, X, y)
    assert a != alpha_max(est.set_params(random_state=1), X, y)


# --------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------
def _path_estimator(**kw):
    params = dict(hidden_layer_sizes=(8,), max_iter=15, batch_size=20, random_state=0)
    params.update(kw)
    return GroupLassoMLPRegressor(**params)


def test_path_warm_starts_every_alpha_from_the_previous_fit():
    X, y = _regression()
    alphas = [3e-2, 1e-2]
    records = _quiet(
        regularization_path, _path_estimator(), X, y, alphas, return_estimators=True
    )
    # by hand: fit the first alpha, then warm-start the second from it
    first = _quiet(_path_estimator(alpha=alphas[0]).fit, X, y)
    second = _quiet(first.set_params(alpha=alphas[1], warm_start=True).fit, X, y)
    cold = _quiet(_path_estimator(alpha=alphas[1]).fit, X, y)
    path_second = records[1]["estimator"]
    for W_path, W_hand, W_cold in zip(path_second.coefs_, second.coefs_, cold.coefs_):
        np.testing.assert_array_equal(W_path, W_hand)
        assert not np.allclose(W_path, W_cold)
    assert records[1]["epochs"] == 15 and path_second.n_iter_ == 30
    assert [r["alpha"] for r in records] == alphas
    assert records[0]["sparsity"] == pytest.approx(records[0]["estimator"].sparsity_)
    # the training loss: 1/2 mean squared error of the fitted predictions
    residual = path_second.predict(X) - y
    assert records[1]["train_loss"] == pytest.approx(
        0.5 * np.mean(residual**2), rel=1e-5
    )


def test_regularization_growing_path_is_reproducible_with_random_state():
    X, y = _regression()
    schedule = regularization_growing(-1, 0)
    alphas, steps = zip(*schedule)

    def run(seed):
        est = _path_estimator(optimizer="sgd", momentum=0.0, random_state=seed)
        return _quiet(
            regularization_path,
            est,
            X,
            y,
            alphas,
            learning_rates=steps,
            validation_data=(X[:20], y[:20]),
            return_estimators=True,
        )

    a, b, c = run(0), run(0), run(1)
    for ra, rb in zip(a, b):
        for key in ("sparsity", "objective", "live_neurons", "validation_score"):
            assert ra[key] == rb[key]
        assert ra["learning_rate_init"] == rb["estimator"].learning_rate_init
        for Wa, Wb in zip(ra["estimator"].coefs_, rb["estimator"].coefs_):
            np.testing.assert_array_equal(Wa, Wb)
    assert any(ra["objective"] != rc["objective"] for ra, rc in zip(a, c))
    # the heavier stages kill neurons: the path goes somewhere
    assert a[-1]["sparsity"] > a[0]["sparsity"]


def test_default_path_grows_up_to_alpha_max():
    X, y = _regression()
    est = _path_estimator(max_iter=3)
    records = _quiet(regularization_path, est, X, y, n_alphas=3, eps=0.1)
    top = alpha_max(est, X, y)
    np.testing.assert_allclose(
        [r["alpha"] for r in records], [top / 10, top * 10**-0.5, top]
    )


def test_path_cv_in_parallel_equals_serial():
    X, y = _regression(n=90)
    folds = list(KFold(3).split(X))
    est = _path_estimator(max_iter=5)
    serial = _quiet(regularization_path_cv, est, X, y, folds, [1e-2, 3e-3], n_jobs=1)
    parallel = _quiet(regularization_path_cv, est, X, y, folds, [1e-2, 3e-3], n_jobs=2)
    assert len(serial) == 3
    for ps, pp in zip(serial, parallel):
        for rs, rp in zip(ps, pp):
            assert rs["validation_score"] == rp["validation_score"]
            assert rs["sparsity"] == rp["sparsity"]


def test_path_errors_name_the_problem():
    X, y = _regression()
    with pytest.raises(ValueError, match="learning_rates has 1 values for 2 alphas"):
        regularization_path(_path_estimator(), X, y, [1e-2, 1e-3], learning_rates=[0.1])
    with pytest.raises(ValueError, match="alphas must not be empty"):
        regularization_path(_path_estimator(), X, y, [])


# --------------------------------------------------------------------------
# the target search
# --------------------------------------------------------------------------
def test_an_estimators_fit_takes_the_stop_rule_and_keeps_none_of_it():
    # the search hands its check to _fit; it is not part of the fitted model
    X, y = _regression()
    est = GroupLassoMLPRegressor(
        hidden_layer_sizes=(8,), batch_size=20, max_iter=5, random_state=0
    )
    calls = []

    def rule(trainer):
        calls.append(1)
        return len(calls) == 3  # in the first epoch of 4 batches

    est._fit(X, y, incremental=False, stop_rule=rule)
    assert len(calls) == 3 and est.n_iter_ == 1
    assert est._trainer.stop_rule is None
    _quiet(est.fit, X, y)  # a plain fit after it runs its epochs
    assert len(calls) == 3 and est.n_iter_ == 5


class _HysteresisNet:
    """A stand-in estimator for the search logic: training at ``alpha`` moves
    the number of nonzero weights (out of 100) down to ``100 / (1 + 100 alpha)``
    from a denser start, but never up (zeros do not come back), like a
    network whose dead weights and neurons stay dead."""

    def __init__(self, alpha=1e-3, warm_start=False):
        self.alpha = alpha
        self.warm_start = warm_start

    def get_params(self, deep=False):
        return dict(alpha=self.alpha, warm_start=self.warm_start)

    def set_params(self, **params):
        vars(self).update(params)
        return self

    def _validate_params(self):
        pass

    def _fit(self, X, y, incremental, *, stop_rule=None, keep_optimizer=False):
        start = self.nonzero if self.warm_start and hasattr(self, "nonzero") else 100
        self.starts = [*getattr(self, "starts", []), start]
        self.nonzero = min(start, round(100 / (1 + 100 * self.alpha)))
        self.coefs_ = [np.r_[np.ones(self.nonzero), np.zeros(100 - self.nonzero)]]
        self.sparsity_ = 1 - self.nonzero / 100
        self.active_neurons_ = []
        self.support_ = np.ones(1, dtype=bool)
        self.n_iter_ = getattr(self, "n_iter_", 0) + 1
        self._trainer = type("T", (), {"interrupted": False})()
        return self

    def score(self, X, y):
        return 0.0

    def _read_thresholds(self, X, y):
        from skgroupsparse.training import ThresholdReading

        return ThresholdReading([torch.zeros(1, 100)], [])


def test_after_an_overshoot_the_search_restarts_from_the_denser_side():
    target = SearchTarget(
        "weights", np.array([50.0]), np.array([2.0]), [None], [None], 1, [[]]
    )
    # 1e-3: 91 nonzero (too dense); x10 -> 1e-2: 50, met at once; start at 3e-3
    # -> 77 (dense), x10 -> 3e-2: 25 (overshoot), then the bracket's middle
    # 9.5e-3 -> 51 only from the dense side (from 25 it would stay at 25)
    fitted, alpha, history = target_search(
        _HysteresisNet(), None, None, target, 3e-3, update="bracket"
    )
    assert [row["sparsity"] for row in history] == pytest.approx([0.23, 0.75, 0.49])
    # the third training started from the first one (77), not from 25
    assert fitted.starts == [100, 77] and fitted.n_iter_ == 2
    assert history[-1]["met"] and alpha == pytest.approx(np.sqrt(3e-3 * 3e-2))


def test_when_the_first_training_overshoots_the_search_starts_afresh():
    target = SearchTarget(
        "weights", np.array([50.0]), np.array([2.0]), [None], [None], 1, [[]]
    )
    # 3e-2 -> 25 (too sparse); /10 -> 3e-3 from a new network: 77 (dense);
    # the bracket's middle 9.5e-3 -> 51 from there
    fitted, alpha, history = target_search(
        _HysteresisNet(), None, None, target, 3e-2, update="bracket"
    )
    assert [row["sparsity"] for row in history] == pytest.approx([0.75, 0.23, 0.49])
    assert fitted.starts == [100, 77] and history[-1]["met"]
