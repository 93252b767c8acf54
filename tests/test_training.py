"""Tests of the training loop (:mod:`skgroupsparse.training`) and of the
estimator behaviour it drives, against independent oracles:

* ``torch.optim`` for the optimizer arithmetic;
* scikit-learn's ``MultiTaskLasso`` for a linear model with a group lasso on
  features (the estimator's docstring states the equivalence);
* first-order optimality conditions computed here with autograd;
* scipy's brute-force minimisation for the preconditioned prox;
* scikit-learn's ``MLPRegressor`` for the stopping rule;
* instrumented runs (recorded weights) for early stopping and interrupts.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from skgroupsparse import GroupLassoMLPClassifier, GroupLassoMLPRegressor
from skgroupsparse.groups import build_group_map
from skgroupsparse.network import SparseMLP
from skgroupsparse.penalties import make_penalty
from skgroupsparse.training import (
    FlatOptimizer,
    NumbaEngine,
    ProximalTrainer,
    TrainConfig,
)

DT = torch.float64


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _regression_data(seed=0, n=60, p=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = np.tanh(X[:, 0] - X[:, 1]) + 0.5 * X[:, 2] + 0.1 * rng.normal(size=n)
    return X, y


# --------------------------------------------------------------------------
# (a) FlatOptimizer == torch.optim
# --------------------------------------------------------------------------
OPT_CASES = {
    "sgd": (
        dict(name="sgd", momentum=0.0, nesterov=False),
        lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.0),
        0.05,
    ),
    "sgd_heavy_ball": (
        dict(name="sgd", momentum=0.9, nesterov=False),
        lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9),
        0.02,
    ),
    "sgd_nesterov": (
        dict(name="sgd", momentum=0.7, nesterov=True),
        lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.7, nesterov=True),
        0.02,
    ),
    "adam": (
        dict(name="adam", beta_1=0.9, beta_2=0.999, epsilon=1e-8),
        lambda p, lr: torch.optim.Adam([p], lr=lr, betas=(0.9, 0.999), eps=1e-8),
        0.05,
    ),
    "adam_other_betas": (
        dict(name="adam", beta_1=0.8, beta_2=0.95, epsilon=1e-3),
        lambda p, lr: torch.optim.Adam([p], lr=lr, betas=(0.8, 0.95), eps=1e-3),
        0.05,
    ),
    "adamax": (
        dict(name="adamax", beta_1=0.85, beta_2=0.99, epsilon=1e-8),
        lambda p, lr: torch.optim.Adamax([p], lr=lr, betas=(0.85, 0.99), eps=1e-8),
        0.05,
    ),
    "rmsprop": (
        dict(name="rmsprop", beta_2=0.9, epsilon=1e-8),
        lambda p, lr: torch.optim.RMSprop(
            [p], lr=lr, alpha=0.9, eps=1e-8, momentum=0.0, centered=False
        ),
        0.01,
    ),
}


def _torch_metric(case, opt, p, t):
    """The diagonal metric ``D`` read from torch.optim's own state."""
    name = OPT_CASES[case][0]["name"]
    state = opt.state[p]
    group = opt.param_groups[0]
    if name == "sgd":
        return None
    if name == "adam":
        b2 = group["betas"][1]
        return (state["exp_avg_sq"] / (1 - b2**t)).sqrt() + group["eps"]
    if name == "adamax":
        return state["exp_inf"]
    return state["square_avg"].sqrt() + group["eps"]


def _optimizer_step(engine, opt, theta, grad, lr):
    """One step as ``engine`` takes it: the tensor reference (torch on the
    CPU), or Adam fused and the others as the numba kernel."""
    if engine == "torch":
        opt.step(theta, grad, lr)
    elif not opt.fused_adam_step(theta, grad, lr):
        arrays = (x.numpy() for x in (theta, grad, opt.first, opt.second))
        NumbaEngine.kernel_step(opt, *arrays, lr)


@pytest.mark.parametrize("case", sorted(OPT_CASES))
def test_flat_optimizer_equals_torch_optim(case, engine):
    kwargs, make_torch, lr = OPT_CASES[case]
    gen = torch.Generator().manual_seed(0)
    d = 12
    Q, _ = torch.linalg.qr(torch.randn(d, d, dtype=DT, generator=gen))
    A = Q @ torch.diag(torch.linspace(0.1, 5.0, d, dtype=DT)) @ Q.T
    b = torch.randn(d, dtype=DT, generator=gen)
    x0 = torch.randn(d, dtype=DT, generator=gen)

    p = torch.nn.Parameter(x0.clone())
    ref = make_torch(p, lr)
    theta = x0.clone()
    kwargs = dict(kwargs)
    opt = FlatOptimizer(kwargs.pop("name"), theta, **kwargs)
    for t in range(1, 21):
        p.grad = A @ p.detach() - b
        ref.step()
        _optimizer_step(engine, opt, theta, A @ theta - b, lr)
        assert torch.allclose(theta, p.detach(), rtol=1e-12, atol=1e-14), (
            t,
            (theta - p.detach()).abs().max(),
        )
        D_ref = _torch_metric(case, ref, p, t)
        D = opt.metric()
        if D_ref is None:
            assert D is None
        else:
            assert torch.allclose(D, D_ref, rtol=1e-12, atol=0)
    # the run moved far from the start (the comparison is not vacuous)
    assert (theta - x0).norm() > 0.1


@pytest.mark.parametrize(
    "optimizer, prox",
    [
        ("sgd", "preconditioned"),
        ("adam", "preconditioned"),
        ("adam", "decoupled"),
        ("adamax", "preconditioned"),
        ("rmsprop", "preconditioned"),
    ],
)
def test_trainer_with_zero_penalty_follows_torch_optim(optimizer, prox, engine):
    # a linear least-squares model: ProximalTrainer.train_step with alpha=0
    # against torch.optim on nn.Linear with autograd through torch's MSE
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(25, 4, dtype=DT, generator=gen)
    y = torch.randn(25, 2, dtype=DT, generator=gen)
    net = SparseMLP((4, 2), "relu", dtype=DT)
    net.reset_parameters(torch.Generator().manual_seed(2))
    gm = build_group_map(net.layout)
    config = TrainConfig(
        loss="squared",
        optimizer=optimizer,
        learning_rate_init=0.05,
        momentum=0.0,
        beta_1=0.9,
        beta_2=0.99,
        prox=prox,
    )
    trainer = ProximalTrainer(net, gm, make_penalty("group_lasso", 0.0), config)

    lin = torch.nn.Linear(4, 2, dtype=DT)
    with torch.no_grad():
        lin.weight.copy_(net.weights[0])
        lin.bias.copy_(net.biases[0])
    ref = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.05),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.9, 0.99)),
        "adamax": lambda ps: torch.optim.Adamax(ps, lr=0.05, betas=(0.9, 0.99)),
        "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=0.05, alpha=0.99),
    }[optimizer](list(lin.parameters()))
    for _ in range(20):
        trainer.train_step(X, y)
        ref.zero_grad()
        loss = 0.5 * torch.nn.functional.mse_loss(lin(X), y, reduction="sum") / len(X)
        loss.backward()
        ref.step()
    assert torch.allclose(net.weights[0], lin.weight, rtol=1e-11, atol=1e-13)
    assert torch.allclose(net.biases[0], lin.bias, rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------
# (b) the oracle: a linear model is MultiTaskLasso
# --------------------------------------------------------------------------
def _mtl_problem():
    rng = np.random.default_rng(0)
    n, p, k = 100, 10, 3
    X = StandardScaler().fit_transform(rng.normal(size=(n, p)))
    W = np.zeros((p, k))
    W[:4] = 2 * rng.normal(size=(4, k))
    Y = X @ W + 0.5 * rng.normal(size=(n, k)) + np.array([1.0, -2.0, 0.5])
    return X, Y


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_linear_group_lasso_equals_multitask_lasso(momentum, engine):
    """``hidden_layer_sizes=()`` is MultiTaskLasso with alpha * sqrt(n_targets).

    Our objective: ``1/(2n) sum ||y_i - W x_i - b||^2 + alpha sum_j sqrt(k)
    ||W[:, j]||``; MultiTaskLasso's: ``1/(2n) ||Y - XW||_F^2 + a sum_j ||W_j||``.
    The fixed point of full-batch proximal SGD is the minimiser, with or
    without momentum (momentum changes the path, not the objective).
    """
    X, Y = _mtl_problem()
    n, k = Y.shape
    alpha = 0.1
    mtl = MultiTaskLasso(alpha=alpha * np.sqrt(k), tol=1e-12, max_iter=100000)
    mtl.fit(X, Y)
    ref = mtl.coef_.T  # (n_features, n_targets), like coefs_[0]
    ref_support = np.linalg.norm(ref, axis=1) > 0
    # the test problem has a clear margin: zero features are far from entering
    R = Y - mtl.predict(X)
    dual = np.linalg.norm(X.T @ R / n, axis=1) / (alpha * np.sqrt(k))
    assert 3 <= ref_support.sum() <= 6
    assert dual[~ref_support].max() < 0.8

    X1 = np.hstack([X, np.ones((n, 1))])
    L = np.linalg.eigvalsh(X1.T @ X1 / n).max()  # Lipschitz constant of the loss
    est = GroupLassoMLPRegressor(
        hidden_layer_sizes=(),
        penalty="group_lasso",
        alpha=alpha,
        optimizer="sgd",
        momentum=momentum,
        batch_size=n,
        learning_rate_init=(1 - momentum) / L,
        max_iter=800,
        tol=0.0,
        n_iter_no_change=10**6,
        shuffle=False,
        random_state=0,
    )
    _quiet_fit(est, X, Y)
    coef = est.coefs_[0]
    assert coef.shape == (10, 3)
    rel = np.linalg.norm(coef - ref) / np.linalg.norm(ref)
    assert rel < 1e-3, f"relative error {rel:.3g} against MultiTaskLasso"
    np.testing.assert_array_equal(np.linalg.norm(coef, axis=1) > 0, ref_support)
    np.testing.assert_array_equal(est.support_, ref_support)
    np.testing.assert_allclose(est.intercepts_[0], mtl.intercept_, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------
# (c) optimality residual of a hidden-layer network
# --------------------------------------------------------------------------
def _independent_residual(est, X, y, alpha):
    """Distance of 0 to the subdifferential, by autograd in float64.

    Outgoing groups (columns of every W_l) with weight sqrt(size); biases
    unpenalised. Written from ALGORITHMS.md sections 0 and 1.2 only.
    """
    Ws = [torch.tensor(c.T, dtype=DT, requires_grad=True) for c in est.coefs_]
    bs = [torch.tensor(b, dtype=DT, requires_grad=True) for b in est.intercepts_]
    h = torch.tensor(X, dtype=DT)
    for l, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        h = h @ W.T + b
        if l < len(Ws) - 1:
            h = torch.tanh(h)
    target = torch.tensor(y, dtype=DT).reshape(len(y), -1)
    loss = 0.5 * ((h - target) ** 2).sum(dim=1).mean()
    grads = torch.autograd.grad(loss, Ws + bs)
    res = max(float(g.abs().max()) for g in grads[len(Ws) :])
    for W, G in zip(Ws, grads[: len(Ws)], strict=True):
        W = W.detach()
        t = alpha * np.sqrt(W.shape[0])
        for j in range(W.shape[1]):
            w, g = W[:, j], G[:, j]
            if w.norm() > 0:
                r = float((g + t * w / w.norm()).norm())
            else:
                r = max(0.0, float(g.norm()) - t)
            res = max(res, r)
    return res


def _residual_estimator(max_iter):
    return GroupLassoMLPRegressor(
        hidden_layer_sizes=(6,),
        activation="tanh",
        alpha=0.03,
        optimizer="sgd",
        momentum=0.0,
        batch_size=80,
        learning_rate_init=0.2,
        max_iter=max_iter,
        tol=0.0,
        n_iter_no_change=10**6,
        shuffle=False,
        random_state=0,
    )


def test_full_batch_sgd_reaches_a_stationary_point(engine):
    X, y = _regression_data(seed=0, n=80)
    early = _quiet_fit(_residual_estimator(1), X, y)
    res_early = early.optimality_residual(X, y)
    assert res_early > 1e-2
    assert abs(res_early - _independent_residual(early, X, y, 0.03)) < 1e-4

    est = _quiet_fit(_residual_estimator(1500), X, y)
    res = est.optimality_residual(X, y)
    ref = _independent_residual(est, X, y, 0.03)
    assert abs(res - ref) < 1e-4
    assert res < 1e-3 and ref < 1e-3
    # the penalty did act: some neuron or feature was removed
    assert est.active_neurons_[0] < 6 or not est.support_.all()


# --------------------------------------------------------------------------
# (d) the preconditioned prox is the prox in Adam's metric
# --------------------------------------------------------------------------
def _omega(name, x, alpha, w, l1_ratio=0.5):
    if name == "group_lasso":
        return alpha * w * np.linalg.norm(x)
    if name == "l1":
        return alpha * np.abs(x).sum()
    return alpha * (l1_ratio * np.abs(x).sum() + (1 - l1_ratio) * w * np.linalg.norm(x))


def _brute_force_prox(name, z, D, lr, alpha, w):
    def f(x):
        return _omega(name, x, alpha, w) + 0.5 / lr * np.sum(D * (x - z) ** 2)

    best = None
    # variables scaled by sqrt(D) make the quadratic isotropic for Powell
    s = np.sqrt(D)
    for start in (z, np.zeros_like(z), 0.5 * z):
        r = optimize.minimize(
            lambda u: f(u / s),
            start * s,
            method="Powell",
            options=dict(xtol=1e-12, ftol=1e-15, maxiter=200000),
        )
        if best is None or r.fun < best.fun:
            best = r
    x = best.x / s
    # exact zeros where zero beats the numerical minimiser (nonsmooth points)
    if f(np.zeros_like(z)) <= f(x):
        x = np.zeros_like(z)
    return x, f


@pytest.mark.parametrize("name", ["group_lasso", "sparse_group_lasso", "l1"])
def test_adam_preconditioned_prox_step_is_brute_force_prox(name, engine):
    gen = torch.Generator().manual_seed(0)
    net = SparseMLP((4, 5, 3), "tanh", dtype=DT)
    net.reset_parameters(gen)
    gm = build_group_map(net.layout)
    X = torch.randn(30, 4, dtype=DT, generator=gen)
    y = torch.randn(30, 3, dtype=DT, generator=gen)
    alpha = 0.2
    config = TrainConfig(
        loss="squared", optimizer="adam", learning_rate_init=0.05, prox="preconditioned"
    )
    trainer = ProximalTrainer(net, gm, make_penalty(name, alpha), config)
    for _ in range(3):
        trainer.train_step(X, y)
    # one more step, split: optimizer step, then the prox under test
    trainer.engine.loss_and_grad(X, y)
    trainer.engine.optimizer_step(trainer.lr)
    z = net.theta.detach().clone()
    D = trainer.optimizer.metric().clone()
    # D is Adam's sqrt(v_hat) + eps, recomputed from the optimizer's state
    t = trainer.optimizer.n_steps
    D_ref = (trainer.optimizer.second / (1 - 0.999**t)).sqrt() + 1e-8
    assert t == 4
    assert torch.allclose(D, D_ref, rtol=1e-14, atol=0)
    assert D[:-1].max() / D[:-1].min() > 10  # a genuinely non-uniform metric
    lr = trainer.lr
    trainer.engine.prox(lr)  # Adam: the prox step is lr
    x = net.theta.detach()

    n_zero = n_nonzero = 0
    for g in range(gm.n_groups):
        idx = gm.index[g, : int(gm.sizes[g])]
        zg, Dg, xg = z[idx].numpy(), D[idx].numpy(), x[idx].numpy()
        ref, f = _brute_force_prox(name, zg, Dg, lr, alpha, np.sqrt(len(idx)))
        assert f(xg) <= f(ref) + 1e-12 * max(1.0, abs(f(ref))), (g, f(xg), f(ref))
        np.testing.assert_allclose(xg, ref, rtol=0, atol=1e-6 * (1 + np.abs(zg).max()))
        np.testing.assert_array_equal(xg == 0, ref == 0)
        n_zero += int(np.all(xg == 0))
        n_nonzero += int(np.any(xg != 0))
    # both regimes of the prox are exercised
    if name != "l1":
        assert n_zero >= 1 and n_nonzero >= 1
    # entries outside the groups (biases) are untouched by the prox
    in_group = torch.zeros_like(z, dtype=torch.bool)
    in_group[gm.index.flatten()] = True
    assert torch.equal(x[~in_group], z[~in_group])


def test_adam_group_prox_satisfies_optimality_conditions(engine):
    # KKT of argmin alpha w ||x|| + 1/(2 lr) sum D (x - z)^2, per group:
    # x = 0 iff ||D z|| / lr <= alpha w; else D (x - z) / lr + alpha w x/||x|| = 0
    gen = torch.Generator().manual_seed(3)
    net = SparseMLP((6, 8, 4), "logistic", dtype=DT)
    net.reset_parameters(gen)
    gm = build_group_map(net.layout)
    X = torch.randn(40, 6, dtype=DT, generator=gen)
    y = torch.randn(40, 4, dtype=DT, generator=gen)
    alpha, lr = 0.1, 0.05
    config = TrainConfig(loss="squared", optimizer="adam", learning_rate_init=lr)
    trainer = ProximalTrainer(net, gm, make_penalty("group_lasso", alpha), config)
    for _ in range(5):
        trainer.train_step(X, y)
    trainer.engine.loss_and_grad(X, y)
    trainer.engine.optimizer_step(lr)
    z = net.theta.detach().clone()
    D = trainer.optimizer.metric().clone()
    trainer.engine.prox(lr)  # Adam: the prox step is lr
    x = net.theta.detach()
    for g in range(gm.n_groups):
        idx = gm.index[g, : int(gm.sizes[g])]
        zg, Dg, xg = z[idx], D[idx], x[idx]
        t = alpha * np.sqrt(len(idx))
        if torch.all(xg == 0):
            assert float((Dg * zg).norm()) / lr <= t * (1 + 1e-12)
        else:
            kkt = Dg * (xg - zg) / lr + t * xg / xg.norm()
            assert float(kkt.norm()) <= 1e-9 * (1 + float((Dg * zg).norm()) / lr)


# --------------------------------------------------------------------------
# (e) reproducibility and pickling
# --------------------------------------------------------------------------
def _small_estimator(**kw):
    params = dict(
        hidden_layer_sizes=(8,), alpha=1e-2, max_iter=15, batch_size=16, random_state=0
    )
    params.update(kw)
    return GroupLassoMLPRegressor(**params)


def test_same_seed_gives_bitwise_identical_model(engine):
    X, y = _regression_data(seed=1)
    a = _quiet_fit(_small_estimator(random_state=7), X, y)
    b = _quiet_fit(_small_estimator(random_state=7), X, y)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        assert np.array_equal(ca, cb)
    assert np.array_equal(a.predict(X), b.predict(X))
    # refitting the same object starts afresh and gives the same model
    _quiet_fit(a, X, y)
    for ca, cb in zip(a.coefs_, b.coefs_, strict=True):
        assert np.array_equal(ca, cb)
    c = _quiet_fit(_small_estimator(random_state=8), X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_pickle_round_trip_keeps_predictions():
    X, y = _regression_data(seed=2)
    est = _quiet_fit(_small_estimator(), X, y)
    clone = pickle.loads(pickle.dumps(est))
    assert np.array_equal(clone.predict(X), est.predict(X))
    for ca, cb in zip(clone.coefs_, est.coefs_, strict=True):
        assert np.array_equal(ca, cb)
    yc = (X[:, 0] > 0).astype(int)
    clf = GroupLassoMLPClassifier((8,), max_iter=15, random_state=0)
    _quiet_fit(clf, X, yc)
    clf2 = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(clf2.predict_proba(X), clf.predict_proba(X))


# --------------------------------------------------------------------------
# (f) divergence
# --------------------------------------------------------------------------
def _snapshot(est, X):
    return (
        [c.copy() for c in est.coefs_],
        [b.copy() for b in est.intercepts_],
        est.predict(X).copy(),
        est.n_iter_,
        list(est.loss_curve_),
    )


def _assert_same_snapshot(a, b):
    for ca, cb in zip(a[0] + a[1], b[0] + b[1], strict=True):
        assert np.array_equal(ca, cb)
    assert np.array_equal(a[2], b[2])
    assert a[3] == b[3] and a[4] == b[4]


def _diverge(est, X, y):
    est.set_params(optimizer="sgd", learning_rate_init=1e6, momentum=0.9)
    with pytest.raises(ValueError, match="diverged"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)


@pytest.mark.parametrize("warm_start", [False, True])
def test_divergence_raises_and_keeps_previous_model(warm_start):
    X, y = _regression_data(seed=3)
    est = _quiet_fit(_small_estimator(warm_start=warm_start), X, y)
    twin = _quiet_fit(_small_estimator(warm_start=warm_start), X, y)
    before = _snapshot(est, X)
    residual = est.optimality_residual(X, y)
    _diverge(est, 1000 * X, 1000 * y)  # unscaled data, huge step
    _assert_same_snapshot(before, _snapshot(est, X))
    assert np.all(np.isfinite(est.predict(X)))
    # the state a later fit starts from is intact too: the internal model
    # (optimality_residual reads it) and, with warm_start, the next fit
    assert est.optimality_residual(X, y) == residual
    est.set_params(
        **{
            k: twin.get_params()[k]
            for k in ("optimizer", "momentum", "learning_rate_init")
        }
    )
    _quiet_fit(est, X, y)
    _quiet_fit(twin, X, y)
    for ca, cb in zip(est.coefs_, twin.coefs_, strict=True):
        assert np.array_equal(ca, cb)


def test_divergence_on_new_shape_keeps_previous_regressor():
    # a failed fit on data of another width must not touch n_features_in_
    X, y = _regression_data(seed=3)
    est = _quiet_fit(_small_estimator(), X, y)
    before = _snapshot(est, X)
    rng = np.random.default_rng(4)
    X_new = 1000 * rng.normal(size=(60, 7))
    _diverge(est, X_new, 50 * X_new[:, 0])
    assert est.n_features_in_ == X.shape[1]
    _assert_same_snapshot(before, _snapshot(est, X))


def test_divergence_on_new_classes_keeps_previous_classifier():
    # a failed fit with other classes must not touch classes_ or predictions
    X, _ = _regression_data(seed=5)
    y = (X[:, 0] > 0).astype(int)
    clf = _quiet_fit(GroupLassoMLPClassifier((8,), max_iter=15, random_state=0), X, y)
    proba = clf.predict_proba(X).copy()
    _diverge(clf, 1000 * X, np.arange(len(X)) % 3)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert np.array_equal(clf.predict_proba(X), proba)


# --------------------------------------------------------------------------
# (g) stopping: early stopping, loss curve, ConvergenceWarning
# --------------------------------------------------------------------------
def test_early_stopping_restores_best_weights(monkeypatch, engine):
    X, y = _regression_data(seed=6, n=120)
    recorded = []
    original = ProximalTrainer.update_no_improvement

    def record(self, validation_score):
        recorded.append((validation_score, self.net.theta.detach().clone()))
        return original(self, validation_score)

    monkeypatch.setattr(ProximalTrainer, "update_no_improvement", record)
    est = GroupLassoMLPRegressor(
        (16,),
        alpha=1e-3,
        optimizer="adam",
        learning_rate_init=0.05,
        batch_size=16,
        max_iter=300,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=4,
        tol=1e-4,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # it stops early
        est.fit(X, y)
    scores = est.validation_scores_
    assert len(recorded) == len(scores) == est.n_iter_ == len(est.loss_curve_)
    assert [s for s, _ in recorded] == scores
    best = int(np.argmax(scores))
    assert est.best_validation_score_ == scores[best] == max(scores)
    # sklearn's rule: stop once n_iter_no_change + 1 epochs fail to improve
    assert est.n_iter_ < 300
    assert best < est.n_iter_ - 1  # restoring is not a no-op
    theta_best, theta_last = recorded[best][1], recorded[-1][1]
    assert not torch.equal(theta_best, theta_last)
    # the flat layout read by hand: W_1, b_1, W_2, b_2 (out x in, row-major)
    sizes = (X.shape[1], 16, 1)
    pos = 0
    Ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        Ws.append(theta_best[pos : pos + n_in * n_out].reshape(n_out, n_in))
        pos += n_in * n_out
        bs.append(theta_best[pos : pos + n_out])
        pos += n_out
    for c, W in zip(est.coefs_, Ws, strict=True):
        assert np.array_equal(c, W.T.numpy())
    # predictions come from the restored weights
    h = np.maximum(X @ Ws[0].double().numpy().T + bs[0].double().numpy(), 0)
    pred = (h @ Ws[1].double().numpy().T + bs[1].double().numpy())[:, 0]
    np.testing.assert_allclose(est.predict(X), pred, rtol=1e-10, atol=1e-10)


def test_loss_curve_length_and_convergence_warning():
    X, y = _regression_data(seed=7)
    est = _small_estimator(max_iter=5, tol=0.0)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        est.fit(X, y)
    assert est.n_iter_ == len(est.loss_curve_) == 5
    assert est.loss_ == est.loss_curve_[-1]


@pytest.mark.parametrize("n_iter_no_change", [1, 3])
def test_stopping_rule_matches_mlp_regressor(n_iter_no_change):
    # with a huge tol every epoch after the first counts as no improvement;
    # sklearn's MLPRegressor then stops after a known number of epochs
    X, y = _regression_data(seed=8)
    common = dict(
        tol=1e6, n_iter_no_change=n_iter_no_change, max_iter=50, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ref = MLPRegressor(hidden_layer_sizes=(8,), **common).fit(X, y)
        est = _small_estimator(**common).fit(X, y)
    assert est.n_iter_ == ref.n_iter_ == len(est.loss_curve_)


# --------------------------------------------------------------------------
# (h) Ctrl-C
# --------------------------------------------------------------------------
def test_keyboard_interrupt_gives_warning_and_usable_model(monkeypatch):
    X, y = _regression_data(seed=9)
    reference = _quiet_fit(_small_estimator(max_iter=2), X, y)

    original = ProximalTrainer.run_epoch
    calls = []

    def interrupting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ProximalTrainer, "run_epoch", interrupting)
    est = _small_estimator(max_iter=50)
    try:
        with pytest.warns(UserWarning, match="[Ii]nterrupt"):
            est.fit(X, y)
    except KeyboardInterrupt:  # pragma: no cover - the failure mode
        pytest.fail("KeyboardInterrupt escaped fit")
    assert len(calls) == 3
    assert est.n_iter_ == 2 == len(est.loss_curve_)
    pred = est.predict(X)
    assert pred.shape == (len(X),) and np.all(np.isfinite(pred))
    # the model is the one of the two completed epochs
    for ca, cb in zip(est.coefs_, reference.coefs_, strict=True):
        assert np.array_equal(ca, cb)


def test_keyboard_interrupt_mid_epoch_restores_the_last_complete_epoch(monkeypatch):
    # interrupted between batches of epoch 3: the half-done epoch is dropped
    X, y = _regression_data(seed=9)
    reference = _quiet_fit(_small_estimator(max_iter=2), X, y)
    original = ProximalTrainer._step
    steps = []

    def interrupting(self, *args, **kwargs):
        steps.append(1)
        per_epoch = -(-len(X) // 16)
        if len(steps) == 2 * per_epoch + 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ProximalTrainer, "_step", interrupting)
    est = _small_estimator(max_iter=50)
    with pytest.warns(UserWarning, match="last complete epoch"):
        est.fit(X, y)
    assert est.n_iter_ == 2
    for ca, cb in zip(est.coefs_, reference.coefs_, strict=True):
        assert np.array_equal(ca, cb)


def test_keyboard_interrupt_before_any_epoch_propagates(monkeypatch):
    # there is no model to keep: the interrupt goes on and nothing is fitted
    X, y = _regression_data(seed=9)

    def interrupting(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ProximalTrainer, "run_epoch", interrupting)
    est = _small_estimator()
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


@pytest.mark.parametrize(
    ("engine", "large"),
    [("numba", True), ("numba", False), ("torch", True)],
    ids=["numba-large", "numba-small", "torch"],
)
def test_one_thread_pool_owns_the_cores_and_settings_are_restored(
    monkeypatch, engine, large
):
    """With the numba kernels, torch runs on one thread and BLAS keeps its
    threads (one thread for products below ``BLAS_THREADS_FROM``); with the
    tensor engine torch keeps its threads. Either way the settings are as
    before once the fit ends."""
    import threadpoolctl

    from skgroupsparse.training import device, use_engine

    monkeypatch.setattr(device, "BLAS_THREADS_FROM", 1 if large else 2**40)
    seen = []
    original = ProximalTrainer.run_epoch

    def blas_threads():
        info = threadpoolctl.threadpool_info()
        return [p["num_threads"] for p in info if p["user_api"] == "blas"]

    def spying(self, *args, **kwargs):
        seen.append((torch.get_num_threads(), blas_threads()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ProximalTrainer, "run_epoch", spying)
    X, y = _regression_data(seed=2)
    torch.set_num_threads(2)
    try:
        with threadpoolctl.threadpool_limits(limits=2):
            before = blas_threads()
            all_pools = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
            with use_engine(engine):
                _quiet_fit(_small_estimator(max_iter=2), X, y)
            assert len(seen) == 2
            for torch_threads, blas in seen:
                assert torch_threads == (1 if engine == "numba" else 2)
                if large:
                    assert blas == before, "BLAS keeps its threads"
                else:
                    assert blas == [1] * len(before), "small products: one thread"
            assert torch.get_num_threads() == 2
            after = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
            assert after == all_pools
    finally:
        torch.set_num_threads(1)


def test_fits_in_other_threads_leave_the_settings_alone(monkeypatch):
    """Thread settings are process-wide: a fit outside the main thread does not
    change them (two such fits could otherwise restore each other's)."""
    import threading

    seen = []
    original = ProximalTrainer.run_epoch

    def spying(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ProximalTrainer, "run_epoch", spying)
    X, y = _regression_data(seed=2)
    torch.set_num_threads(2)
    try:
        worker = threading.Thread(
            target=lambda: _quiet_fit(_small_estimator(max_iter=1), X, y)
        )
        worker.start()
        worker.join()
        assert seen == [2]
    finally:
        torch.set_num_threads(1)


def test_training_goes_on_after_a_pickle_round_trip(engine):
    X, y = _regression_data(seed=4)
    a = _quiet_fit(_small_estimator(warm_start=True, max_iter=3), X, y)
    b = pickle.loads(pickle.dumps(a))
    for est in (a, b):
        est.partial_fit(X, y)
        _quiet_fit(est, X, y)
    for ca, cb in zip(a.coefs_, b.coefs_, strict=True):
        assert np.array_equal(ca, cb)
    assert "_epoch_buffers" not in vars(a._trainer), "fit must not keep a copy of X"
