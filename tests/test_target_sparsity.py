"""TargetSparsityCV: targets met (checked on the fitted weights themselves),
the per-layer and neuron forms, the convex case against scikit-learn's Lasso,
cross-validation, errors."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    ShrinkNetClassifier,
    TargetSparsityCV,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def _classifier(**kw):
    params = dict(
        hidden_layer_sizes=(32,),
        penalty="l1",
        alpha=1e-4,
        max_iter=25,
        tol=0,
        random_state=0,
    )
    params.update(kw)
    return GroupLassoMLPClassifier(**params)


def _zero_fraction(coefs) -> float:
    flat = np.concatenate([W.ravel() for W in coefs])
    return float(np.mean(flat == 0))


def _live_hidden(coefs) -> list:
    """Live neurons per hidden layer: on a path of nonzero weights from an
    input to an output (numpy reachability, independent of the package)."""
    nz = [W != 0 for W in coefs]  # (n_in, n_out) as MLPClassifier
    forward = [np.ones(nz[0].shape[0], bool)]
    for m in nz:
        forward.append((forward[-1][:, None] & m).any(axis=0))
    backward = [np.ones(nz[-1].shape[1], bool)]
    for m in reversed(nz):
        backward.append((m & backward[-1][None, :]).any(axis=1))
    backward.reverse()
    return [int((f & b).sum()) for f, b in zip(forward[1:-1], backward[1:-1])]


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_whole_net_target_is_met_within_tolerance(digits, target):
    X, y = digits
    search = TargetSparsityCV(_classifier(), target_sparsity=target).fit(X, y)
    best = search.search_estimator_
    assert abs(_zero_fraction(best.coefs_) - target) <= 0.01
    assert search.target_met_ and search.n_trainings_ <= 5
    assert search.n_trainings_ == len(search.history_)
    assert search.alpha_ == best.alpha
    last = search.history_[-1]
    assert last["met"] and last["sparsity"] == best.sparsity_
    assert last["live_neurons"] == best.active_neurons_
    assert set(last) >= {"alpha", "score", "epochs", "seconds", "layer_sparsity"}
    # the wrapped estimator is left as it was, the fitted one as configured
    assert best.warm_start is False
    # the model used is the relaxed fit: the same zeros, trained without alpha
    relaxed = search.best_estimator_
    assert relaxed is not best and relaxed.alpha == 0.0
    for W, W_search in zip(relaxed.coefs_, best.coefs_):
        np.testing.assert_array_equal(W == 0, W_search == 0)
    assert search.score(X, y) == relaxed.score(X, y)
    np.testing.assert_array_equal(search.predict_proba(X), relaxed.predict_proba(X))
    np.testing.assert_array_equal(search.classes_, np.arange(10))


def test_per_layer_targets_are_met_within_tolerance(digits):
    X, y = digits
    target = (0.7, 0.4)
    search = TargetSparsityCV(_classifier(), target_sparsity=target).fit(X, y)
    for W, t in zip(search.best_estimator_.coefs_, target):
        assert abs(np.mean(W == 0) - t) <= 0.01
    assert isinstance(search.alpha_, np.ndarray) and search.alpha_.shape == (2,)
    assert search.n_trainings_ <= 5


def test_neuron_target_is_met_within_one_neuron(digits):
    X, y = digits
    est = _classifier(hidden_layer_sizes=(32, 16), penalty="group_lasso")
    search = TargetSparsityCV(est, target_neurons=(12, 6), max_trainings=6)
    search.fit(X, y)
    live = _live_hidden(search.best_estimator_.coefs_)
    assert live == search.best_estimator_.active_neurons_
    assert abs(live[0] - 12) <= 1 and abs(live[1] - 6) <= 1
    assert search.target_met_


def test_shrinknet_target(digits):
    X, y = digits
    est = ShrinkNetClassifier((32,), alpha=1e-4, max_iter=25, random_state=0)
    search = TargetSparsityCV(est, target_neurons=(10,), max_trainings=6).fit(X, y)
    assert abs(_live_hidden(search.best_estimator_.coefs_)[0] - 10) <= 1


def test_linear_lasso_search_agrees_with_scikit_learn():
    """Convex case: a linear l1 model trained to its solution (full-batch
    proximal SGD) has the sparsity scikit-learn's Lasso has at the alpha the
    search returns."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 40))
    w = np.zeros(40)
    w[:15] = rng.normal(size=15)
    y = X @ w + 0.5 * rng.normal(size=200)
    est = GroupLassoMLPRegressor(
        hidden_layer_sizes=(),
        penalty="l1",
        alpha=1e-3,
        optimizer="sgd",
        momentum=0.0,
        learning_rate_init=0.1,
        batch_size=200,
        max_iter=400,
        tol=0,
        n_iter_no_change=400,
        random_state=0,
    )
    # 40 weights, tolerance 1 weight: 25% zeros means 30 nonzero, +-1
    search = TargetSparsityCV(
        est, target_sparsity=0.25, tol=1 / 40, stop_at_target=False
    ).fit(X, y)
    assert search.target_met_
    nonzero = np.count_nonzero(search.search_estimator_.coefs_[0])
    assert abs(nonzero - 30) <= 1
    lasso = Lasso(alpha=search.alpha_, tol=1e-12, max_iter=100000).fit(X, y)
    assert abs(np.count_nonzero(lasso.coef_) - nonzero) <= 1
    np.testing.assert_allclose(
        search.search_estimator_.coefs_[0][:, 0], lasso.coef_, atol=2e-3
    )


def test_unreachable_target_warns_and_keeps_the_closest(digits):
    X, y = digits
    search = TargetSparsityCV(
        _classifier(alpha=1e-6), target_sparsity=0.95, max_trainings=1
    )
    with pytest.warns(ConvergenceWarning, match="not met in 1 trainings"):
        search.fit(X, y)
    assert not search.target_met_ and search.n_trainings_ == 1


def test_without_the_stop_rule_every_training_runs_its_epochs(digits):
    X, y = digits
    search = TargetSparsityCV(
        _classifier(max_iter=8),
        target_sparsity=0.5,
        stop_at_target=False,
        max_trainings=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert all(row["epochs"] == 8 for row in search.history_)


def test_cross_validation_in_parallel_equals_serial(digits):
    X, y = digits
    kw = dict(target_sparsity=0.6, cv=2)
    serial = TargetSparsityCV(_classifier(), n_jobs=1, **kw).fit(X, y)
    parallel = TargetSparsityCV(_classifier(), n_jobs=2, **kw).fit(X, y)
    assert serial.cv_results_ == parallel.cv_results_
    assert len(serial.cv_results_["score"]) == 2
    assert all(abs(s - 0.6) <= 0.01 for s in serial.cv_results_["sparsity"])
    assert serial.alpha_ == parallel.alpha_


def test_in_a_pipeline_and_pickled(digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(), TargetSparsityCV(_classifier(), target_sparsity=0.6)
    ).fit(X, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict(X), pipe.predict(X))
    assert pipe.score(X, y) > 0.9


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "exactly one of target_sparsity and target_neurons"),
        (
            dict(target_sparsity=0.5, target_neurons=(4,)),
            "exactly one of target_sparsity and target_neurons",
        ),
        (dict(target_sparsity=(0.5, 0.5, 0.5)), "one value per weight matrix"),
        (dict(target_sparsity=(0.5, 1.0)), r"in \[0, 1\)"),
        (dict(target_neurons=(4, 4)), "one per hidden layer"),
        (dict(target_neurons=(40,)), "between 1 and the layer widths"),
        (dict(target_sparsity=(0.5, 0.5), min_layers=3), "min_layers=3"),
        (dict(target_sparsity=0.5, alpha_init=[1e-3, 1e-3]), "single alpha"),
    ],
)
def test_bad_targets_are_named(digits, kwargs, message):
    X, y = digits
    with pytest.raises(ValueError, match=message):
        TargetSparsityCV(_classifier(), **kwargs).fit(X, y)


def test_bad_estimators_are_named(digits):
    X, y = digits
    with pytest.raises(TypeError, match="needs one of skgroupsparse's estimators"):
        TargetSparsityCV(LogisticRegression(), target_sparsity=0.5).fit(X, y)
    with pytest.raises(ValueError, match="decoupled"):
        TargetSparsityCV(_classifier(prox="decoupled"), target_sparsity=0.5).fit(X, y)
    incoming = _classifier(groups="incoming", penalty="group_lasso")
    with pytest.raises(ValueError, match="weight matrix 1 is not penalised"):
        TargetSparsityCV(incoming, target_sparsity=(0.5, 0.5)).fit(X, y)
    linear = _classifier(hidden_layer_sizes=())
    with pytest.raises(ValueError, match="one per hidden layer"):
        TargetSparsityCV(linear, target_neurons=(2,)).fit(X, y)


def test_early_stopping_does_not_undo_a_training_that_met_the_target(digits):
    X, y = digits
    est = _classifier(early_stopping=True, n_iter_no_change=50)
    search = TargetSparsityCV(est, target_sparsity=0.7).fit(X, y)
    assert search.target_met_
    assert abs(_zero_fraction(search.best_estimator_.coefs_) - 0.7) <= 0.01


@pytest.mark.parametrize("stop_at_target", [True, False])
def test_a_search_keeps_the_optimizer_state_between_trainings(
    digits, monkeypatch, stop_at_target
):
    from skgroupsparse.training import ProximalTrainer

    X, y = digits
    resets = []
    original = ProximalTrainer.reset_optimizer

    def counting(self):
        resets.append(self.n_iter)
        original(self)

    monkeypatch.setattr(ProximalTrainer, "reset_optimizer", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = TargetSparsityCV(
            _classifier(max_iter=5),
            target_sparsity=0.95,
            max_trainings=3,
            stop_at_target=stop_at_target,
            refit=False,
        ).fit(X, y)
    assert search.n_trainings_ == 3
    assert resets == [0]  # only when the first network is built
    # a plain warm start still resets it, as MLPClassifier does
    est = _classifier(max_iter=2).fit(X, y)
    resets.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(warm_start=True).fit(X, y)
    assert resets == [2]


def test_ctrl_c_ends_the_search_with_the_best_training_so_far(digits, monkeypatch):
    from skgroupsparse.path import TargetReached

    X, y = digits
    calls = []
    original = TargetReached.__call__

    def interrupt(self, trainer):
        calls.append(1)
        if len(calls) == 20:  # 3 batches an epoch: in epoch 7 of the first training
            raise KeyboardInterrupt
        return original(self, trainer)

    monkeypatch.setattr(TargetReached, "__call__", interrupt)
    with pytest.warns(UserWarning, match="interrupted by user"):
        search = TargetSparsityCV(_classifier(), target_sparsity=0.7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
    assert search.n_trainings_ == 1 and search.history_[0]["epochs"] == 6


def test_removal_while_training_does_not_change_a_per_layer_search(digits):
    """Removal is exact, and held layers are sliced with it: the search with
    ``remove_dead=True`` retraces the one without, training for training."""
    X, y = digits
    runs = []
    for remove_dead in (False, True):
        est = _classifier(
            hidden_layer_sizes=(32, 16),
            penalty="group_lasso",
            max_iter=20,
            alpha=1e-3,
            remove_dead=remove_dead,
        )
        search = TargetSparsityCV(est, target_neurons=(10, 5)).fit(X, y)
        runs.append(search)
    plain, removing = runs
    assert removing.target_met_
    assert [h["live_neurons"] for h in plain.history_] == [
        h["live_neurons"] for h in removing.history_
    ]
    assert [h["epochs"] for h in plain.history_] == [
        h["epochs"] for h in removing.history_
    ]
    # the same function up to float32 rounding (the matrices differ in shape)
    np.testing.assert_allclose(
        removing.predict_proba(X), plain.predict_proba(X), atol=1e-3
    )


def test_shrinknet_per_layer_neuron_target(digits):
    X, y = digits
    est = ShrinkNetClassifier((32, 16), alpha=1e-3, max_iter=25, random_state=0)
    search = TargetSparsityCV(est, target_neurons=(12, 6)).fit(X, y)
    live = _live_hidden(search.best_estimator_.coefs_)
    assert abs(live[0] - 12) <= 1 and abs(live[1] - 6) <= 1


def test_group_counts_that_jump_over_the_inner_band_still_stop(digits):
    """A group-lasso layer loses a whole column (10 weights here) at a time,
    more than half the tolerance (3.2 weights): the check must still stop
    inside the band."""
    X, y = digits
    est = _classifier(penalty="group_lasso", alpha=1e-3)
    search = TargetSparsityCV(est, target_sparsity=(0.5, 0.6)).fit(X, y)
    assert search.target_met_
    for W, t in zip(search.best_estimator_.coefs_, (0.5, 0.6)):
        assert abs(np.mean(W == 0) - t) <= 0.01
