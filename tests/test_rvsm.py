"""The relaxed variable splitting method (solver="rvsm") against its iteration.

RVSM (Dinh and Xin 2020; ALGORITHMS.md section 5.2) minimises
``F(w) + alpha P(u) + beta / 2 ||w - u||^2`` by ``u_t = prox_{alpha P / beta}(w_t)``
and ``w_{t+1} = w_t - lr (grad F(w_t) + beta (w_t - u_t))``; ``u`` is the model.
The tests replay that iteration in NumPy on a linear model (full batch, SGD
without momentum, so one optimizer step per epoch) and compare both variables.
"""

import warnings

import numpy as np
import pytest
import torch

from skgroupsparse import GroupLassoMLPClassifier, GroupLassoMLPRegressor
from skgroupsparse.penalties import hard_threshold, tl1_threshold
from skgroupsparse.training import SplitVariable


def _data(n=80, p=5, n_outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    B = np.zeros((p, n_outputs))
    B[0], B[3] = 1.2, -0.7
    Y = X @ B + 0.3 * rng.normal(size=(n, n_outputs)) + 0.5
    return X, Y


def _fit(est, X, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, Y)


def _relaxed(est):
    """``w`` (weights in ``coefs_`` layout, biases) of a fitted RVSM model."""
    trainer = est._trainer
    weights, biases = trainer.net.layout.views(trainer.component(SplitVariable).relaxed)
    return weights[0].t().numpy().astype(np.float64), biases[0].numpy().astype(float)


@pytest.mark.parametrize(
    "penalty, prox",
    [
        ("l0", lambda w, t: hard_threshold(torch.as_tensor(w), t).numpy()),
        ("tl1", lambda w, t: tl1_threshold(torch.as_tensor(w), t, 1.0).numpy()),
    ],
)
def test_rvsm_replays_the_splitting_iteration(penalty, prox, engine):
    X, Y = _data()
    n = len(X)
    lr, alpha, beta, growth, every = 0.1, 0.02, 0.5, 2.0, 2
    alpha2 = 0.03  # the warm start changes alpha: u must follow at once
    est = GroupLassoMLPRegressor(
        hidden_layer_sizes=(),
        penalty=penalty,
        solver="rvsm",
        alpha=alpha,
        rvsm_beta=beta,
        rvsm_beta_growth=growth,
        rvsm_beta_every=every,
        optimizer="sgd",
        momentum=0.0,
        learning_rate_init=lr,
        batch_size=n,
        max_iter=1,
        tol=0,
        shuffle=False,
        random_state=0,
    )
    _fit(est, X, Y[:, 0])
    W, b = _relaxed(est)
    split = est._trainer.component(SplitVariable)
    assert split.beta == beta  # one epoch: no growth yet
    est.set_params(warm_start=True, max_iter=5, alpha=alpha2)
    _fit(est, X, Y[:, 0])
    # replay epochs 2..6 (one full-batch step each); beta doubles after
    # epochs 2, 4 and 6
    Xd = X.astype(np.float64)
    for epoch in range(2, 7):
        U = prox(W, alpha2 / beta)
        residual = Xd @ W + b - Y
        grad_W = Xd.T @ residual / n + beta * (W - U)
        grad_b = residual.mean(axis=0)
        W, b = W - lr * grad_W, b - lr * grad_b
        if epoch % every == 0:
            beta *= growth
    U = prox(W, alpha2 / beta)
    W_fit, b_fit = _relaxed(est)
    assert est._trainer.component(SplitVariable).beta == beta
    np.testing.assert_allclose(W_fit, W, atol=2e-6)
    np.testing.assert_allclose(b_fit, b, atol=2e-6)
    # the model is u: the prox of w, with its exact zeros
    np.testing.assert_allclose(est.coefs_[0], U, atol=2e-6)
    assert np.array_equal(est.coefs_[0] == 0, U == 0)
    np.testing.assert_allclose(est.predict(X), Xd @ U[:, 0] + b, atol=1e-5)
    # one more step through the trainer's public train_step, on this engine
    trainer = est._trainer
    trainer.train_step(
        torch.as_tensor(X, dtype=torch.float32),
        torch.as_tensor(Y, dtype=torch.float32),
    )
    residual = Xd @ W + b - Y
    W = W - lr * (Xd.T @ residual / n + beta * (W - U))
    b = b - lr * residual.mean(axis=0)
    W_fit, b_fit = _relaxed(est)
    np.testing.assert_allclose(W_fit, W, atol=2e-6)
    np.testing.assert_allclose(b_fit, b, atol=2e-6)
    weights, _ = trainer.net.layout.views(trainer.net.theta.detach())
    np.testing.assert_allclose(
        weights[0].t().numpy(), prox(W, alpha2 / beta), atol=2e-6
    )


def test_nonconvex_sparse_group_lasso_splits_the_group_term_off(engine):
    # the group lasso takes the prox steps on w, the nonconvex part acts on u:
    # replay w <- block_soft(w - lr (grad + beta (w - u)), lr alpha (1 - r) w_g)
    X, Y = _data(n_outputs=2, seed=1)
    n = len(X)
    lr, alpha, r, beta = 0.1, 0.05, 0.5, 1.0
    common = dict(
        hidden_layer_sizes=(),
        solver="rvsm",
        alpha=alpha,
        l1_ratio=r,
        rvsm_beta=beta,
        rvsm_beta_every=1000,
        optimizer="sgd",
        momentum=0.0,
        learning_rate_init=lr,
        batch_size=n,
        tol=0,
        shuffle=False,
        random_state=0,
    )
    est = GroupLassoMLPRegressor(penalty="sparse_group_l0", max_iter=1, **common)
    _fit(est, X, Y)
    W, b = _relaxed(est)
    est.set_params(warm_start=True, max_iter=4)
    _fit(est, X, Y)
    group_weight = np.sqrt(Y.shape[1])  # feature groups: one row of coefs_
    for _ in range(4):
        U = hard_threshold(torch.as_tensor(W), r * alpha / beta).numpy()
        residual = X @ W + b - Y
        Z = W - lr * (X.T @ residual / n + beta * (W - U))
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        t = lr * alpha * (1 - r) * group_weight
        W = Z * np.clip(1 - t / np.maximum(norms, 1e-300), 0, None)
        b = b - lr * residual.mean(axis=0)
    U = hard_threshold(torch.as_tensor(W), r * alpha / beta).numpy()
    np.testing.assert_allclose(_relaxed(est)[0], W, atol=2e-6)
    np.testing.assert_allclose(est.coefs_[0], U, atol=2e-6)


def test_rvsm_trains_a_sparse_classifier_under_adam():
    # any optimizer: the split prox is in the identity metric
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16
    common = dict(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
    dense = _fit(GroupLassoMLPClassifier(**common, alpha=0.0), X[:1000], y[:1000])
    est = GroupLassoMLPClassifier(**common, penalty="tl1", solver="rvsm", alpha=1e-3)
    _fit(est, X[:1000], y[:1000])
    # a fifth of the weights exactly zero in the model u, at the dense accuracy
    assert est.score(X[1000:], y[1000:]) >= dense.score(X[1000:], y[1000:]) - 0.01
    assert est.sparsity_ > 0.15
    W, _ = _relaxed(est)
    assert np.count_nonzero(W) > np.count_nonzero(est.coefs_[0])


def test_rvsm_errors_name_the_problem():
    X, Y = _data()
    y = Y[:, 0]
    with pytest.raises(ValueError, match="needs solver='rvsm'"):
        _fit(GroupLassoMLPRegressor((4,), penalty="sparse_group_tl1"), X, y)
    with pytest.raises(ValueError, match="remove_dead=True"):
        _fit(GroupLassoMLPRegressor((4,), solver="rvsm", remove_dead=True), X, y)
    est = _fit(GroupLassoMLPRegressor((4,), max_iter=2), X, y)
    est.set_params(warm_start=True, solver="rvsm")
    with pytest.raises(ValueError, match="solver"):
        _fit(est, X, y)


def test_tools_built_on_the_prox_conditions_refuse_rvsm():
    from skgroupsparse import TargetSparsityCV
    from skgroupsparse.regularization import alpha_max

    X, Y = _data()
    y = Y[:, 0]
    est = GroupLassoMLPRegressor((4,), solver="rvsm", penalty="l1", max_iter=3)
    with pytest.raises(NotImplementedError, match="solver='rvsm'"):
        alpha_max(est, X, y)
    _fit(est, X, y)
    with pytest.raises(NotImplementedError, match="solver='rvsm'"):
        est.optimality_residual(X, y)
    with pytest.raises(NotImplementedError, match="solver='rvsm'"):
        _fit(TargetSparsityCV(est, target_sparsity=0.5, max_trainings=2), X, y)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_model_stays_the_prox_of_w(early_stopping):
    # after early stopping's restore, and through a pickle, u = prox(w) with
    # the beta in force
    import pickle

    X, Y = _data(n=200)
    alpha = 0.05
    est = GroupLassoMLPRegressor(
        hidden_layer_sizes=(),
        penalty="l0",
        solver="rvsm",
        alpha=alpha,
        rvsm_beta_every=3,
        early_stopping=early_stopping,
        n_iter_no_change=2,
        max_iter=30,
        random_state=0,
    )
    _fit(est, X, Y[:, 0])
    again = pickle.loads(pickle.dumps(est))
    for model in (est, again):
        W, _ = _relaxed(model)
        beta = model._trainer.component(SplitVariable).beta
        U = hard_threshold(torch.as_tensor(W), alpha / beta).numpy()
        np.testing.assert_array_equal(model.coefs_[0], U.astype(np.float32))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))


def test_a_warm_start_takes_the_new_growth_and_keeps_beta():
    """beta is learned state (it goes on); growth and every are settings."""
    X, Y = _data()
    est = GroupLassoMLPRegressor(
        hidden_layer_sizes=(),
        solver="rvsm",
        penalty="l0",
        alpha=1e-3,
        optimizer="sgd",
        learning_rate_init=0.05,
        rvsm_beta=1.0,
        rvsm_beta_growth=2.0,
        rvsm_beta_every=2,
        max_iter=4,
        random_state=0,
    )
    _fit(est, X, Y[:, 0])
    split = est._trainer.component(SplitVariable)
    assert split.beta == 4.0  # doubled after epochs 2 and 4
    est.set_params(
        warm_start=True,
        rvsm_beta=100.0,
        rvsm_beta_growth=3.0,
        rvsm_beta_every=1,
        max_iter=2,
    )
    _fit(est, X, Y[:, 0])
    split = est._trainer.component(SplitVariable)
    assert (split.growth, split.every) == (3.0, 1)
    # epochs 5 and 6: the new growth every epoch, from the old beta (not 100)
    assert split.beta == 4.0 * 3.0 * 3.0
