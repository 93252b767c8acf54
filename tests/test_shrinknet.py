"""ShrinkNets and the removal of dead units while training, against oracles.

* autograd on a switch network written from scratch (gradients);
* scipy's brute-force minimisation (the elastic-net prox in a metric);
* scikit-learn's ``MultiTaskLasso`` and perturbations (Proposition A.1);
* first-order optimality: the balance ``alpha |beta_j| = p alpha2
  ||W[:, j]||_p^p`` that every stationary point satisfies (derived from the
  scale invariance of a switch and the weights it scales);
* a masked full network trained side by side (removal is exact);
* hand-simulated sign statistics (the death detector).
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    ShrinkNetClassifier,
    ShrinkNetRegressor,
    _kernels,
)
from skgroupsparse.groups import build_group_map, build_switch_group_map
from skgroupsparse.network import SparseMLP, kept_units, select_units
from skgroupsparse.penalties import ElasticNet, GroupLasso
from skgroupsparse.training import (
    ProximalTrainer,
    SignVarianceDetector,
    TrainConfig,
)

DT = torch.float64
ACT = {
    "identity": lambda z: z,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
    "tanh": torch.tanh,
    "logistic": torch.sigmoid,
}


def _quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _where(mask, a, b):
    return torch.where(mask, torch.tensor(a, dtype=DT), torch.tensor(b, dtype=DT))


def _switch_net(sizes, activation, seed, zero_switches=()):
    net = SparseMLP(sizes, activation, dtype=DT, switches=True)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.theta.copy_(torch.randn(net.theta.shape, dtype=DT, generator=g))
        net.theta[-1] = 0.0
        for layer, unit in zero_switches:
            net.switches[layer][unit] = 0.0
    return net


# --------------------------------------------------------------------------
# the switch network: gradient, folding (the numba engine's kernels against
# this tensor code: the parity matrix of test_kernels.py)
# --------------------------------------------------------------------------
def _reference_loss(out, y, loss):
    if loss == "squared":
        return 0.5 * ((out - y) ** 2).sum(dim=1).mean()
    if loss == "softmax":
        return F.cross_entropy(out, y.argmax(dim=1))
    return F.binary_cross_entropy_with_logits(out, y, reduction="none").sum(1).mean()


def _targets(loss, n, n_out, g):
    if loss == "squared":
        return torch.randn(n, n_out, dtype=DT, generator=g)
    if loss == "softmax":
        idx = torch.randint(0, n_out, (n,), generator=g)
        return F.one_hot(idx, n_out).to(DT)
    return torch.randint(0, 2, (n, n_out), generator=g).to(DT)


@pytest.mark.parametrize("loss", ["squared", "softmax", "logistic"])
@pytest.mark.parametrize("activation", sorted(ACT))
def test_switch_network_gradient_matches_autograd(loss, activation):
    sizes = (5, 7, 4, 3)
    net = _switch_net(sizes, activation, seed=1, zero_switches=[(1, 2)])
    g = torch.Generator().manual_seed(2)
    X = torch.randn(11, sizes[0], dtype=DT, generator=g)
    Y = _targets(loss, 11, sizes[-1], g)
    # reference: h_l = act(W_l (beta_{l-1} * h_{l-1}) + b_l), from scratch
    theta = net.theta.detach().clone().requires_grad_(True)
    weights, biases = net.layout.views(theta)
    betas = net.layout.switch_views(theta)
    h = X
    for l, (W, b, beta) in enumerate(zip(weights, biases, betas, strict=True)):
        h = (h * beta) @ W.T + b
        if l < len(weights) - 1:
            h = ACT[activation](h)
    expected_loss = _reference_loss(h, Y, loss)
    (expected,) = torch.autograd.grad(expected_loss, theta)
    grad = torch.zeros_like(theta)
    value = net.loss_and_grad(X, Y.clone(), loss, grad)
    assert float(value) == pytest.approx(expected_loss.item(), rel=1e-12)
    torch.testing.assert_close(grad[:-1], expected[:-1], rtol=1e-10, atol=1e-12)


def test_switches_fold_into_weights_exactly():
    net = _switch_net((4, 6, 2), "logistic", seed=3, zero_switches=[(0, 1), (1, 4)])
    X = torch.randn(9, 4, dtype=DT)
    plain = SparseMLP((4, 6, 2), "logistic", dtype=DT)
    with torch.no_grad():
        for W, W_eff in zip(plain.weights, net.effective_weights(), strict=True):
            W.copy_(W_eff)
        for b, b_net in zip(plain.biases, net.biases, strict=True):
            b.copy_(b_net)
    torch.testing.assert_close(plain(X), net(X), rtol=1e-14, atol=1e-14)


# --------------------------------------------------------------------------
# the elastic-net penalty (switches: l1; weights: l_p^p)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("with_metric", [False, True])
def test_elastic_net_prox_is_brute_force_minimiser(with_metric):
    rng = np.random.default_rng(4)
    V = torch.tensor(rng.normal(size=(3, 4)) * 2, dtype=DT)
    D = torch.tensor(np.exp(rng.uniform(-3, 3, size=(3, 4))), dtype=DT)
    l1 = torch.tensor([0.3, 0.0, 1.2], dtype=DT)
    l2 = torch.tensor([0.5, 2.0, 0.0], dtype=DT)
    step = 0.7
    metric = D if with_metric else None
    X = ElasticNet(l1, l2).prox(V, step, metric=metric)
    d = D.numpy() if with_metric else np.ones((3, 4))
    for g in range(3):
        for i in range(4):
            z, di = float(V[g, i]), d[g, i]

            def objective(x, z=z, di=di, g=g):
                return (
                    float(l1[g]) * abs(x)
                    + float(l2[g]) * x * x
                    + di / (2 * step) * (x - z) ** 2
                )

            res = optimize.minimize_scalar(
                objective,
                bounds=(-abs(z) - 1, abs(z) + 1),
                method="bounded",
                options=dict(xatol=1e-12),
            )
            assert float(X[g, i]) == pytest.approx(res.x, abs=1e-7)


# --------------------------------------------------------------------------
# Proposition A.1: linear ShrinkNet with unit-norm columns == group lasso
# --------------------------------------------------------------------------
def _objective(net, penalty, group_map, X, Y):
    """Mean squared loss + penalty, through the package's own pieces."""
    grad = torch.zeros_like(net.theta.detach())
    loss = net.loss_and_grad(X, Y.clone(), "squared", grad)
    V = group_map.gather(net.theta.detach())
    return float(loss + penalty.value(V, sizes=group_map.sizes.to(DT)))


def test_proposition_a1_shrinknet_equals_group_lasso_at_unit_norm_columns():
    rng = np.random.default_rng(5)
    n, p, k = 80, 8, 3
    X = rng.normal(size=(n, p))
    A_true = np.zeros((k, p))
    A_true[:, :3] = rng.normal(size=(k, 3))
    Y = X @ A_true.T + 0.3 * rng.normal(size=(n, k))
    lam = 0.15
    # the group-lasso problem (6) with weights 1 (the paper embeds sqrt(n) in
    # lambda), solved by scikit-learn: its objective is ours, loss for loss
    mtl = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=100000)
    A = mtl.fit(X, Y).coef_  # (k, p)
    norms = np.linalg.norm(A, axis=0)
    assert 0 < (norms > 0).sum() < p
    gl_value = 0.5 * np.mean(((Y - X @ A.T) ** 2).sum(1)) + lam * norms.sum()

    Xt, Yt = torch.tensor(X, dtype=DT), torch.tensor(Y, dtype=DT)
    # the ShrinkNet point: beta_j = ||A_j||, A'_j = A_j / ||A_j|| (unit norm;
    # any unit column where beta_j = 0)
    A_unit = np.where(norms > 0, A / np.where(norms > 0, norms, 1), 1 / np.sqrt(k))
    net = SparseMLP((p, k), "identity", dtype=DT, switches=True)
    with torch.no_grad():
        net.theta.zero_()
        net.weights[0].copy_(torch.tensor(A_unit, dtype=DT))
        net.switches[0].copy_(torch.tensor(norms, dtype=DT))
    smap = build_switch_group_map(net.layout)
    sn_penalty = ElasticNet(_where(smap.switch, lam, 0.0), 0.0)
    sn_value = _objective(net, sn_penalty, smap, Xt, Yt)
    assert sn_value == pytest.approx(gl_value, rel=1e-10)

    # and the same value through the package's group lasso at A = A' diag(beta)
    plain = SparseMLP((p, k), "identity", dtype=DT)
    with torch.no_grad():
        plain.theta.zero_()
        plain.weights[0].copy_(net.effective_weights()[0])
    gmap = build_group_map(plain.layout, "outgoing")
    assert _objective(plain, GroupLasso(lam, weights="ones"), gmap, Xt, Yt) == (
        pytest.approx(gl_value, rel=1e-10)
    )

    # the point is a minimum of the constrained ShrinkNet problem: no
    # perturbation on the unit sphere (and of beta) does better
    theta0 = net.theta.detach().clone()
    for trial in range(30):
        g = torch.Generator().manual_seed(trial)
        with torch.no_grad():
            net.theta.copy_(theta0)
            W = net.weights[0]
            W.add_(1e-3 * torch.randn(W.shape, dtype=DT, generator=g))
            W.div_(torch.linalg.vector_norm(W, dim=0, keepdim=True))
            net.switches[0].add_(1e-3 * torch.randn(p, dtype=DT, generator=g))
        assert _objective(net, sn_penalty, smap, Xt, Yt) >= sn_value - 1e-12

    # the paper's proof sets beta_j = ||A_j||^2: that point is not equivalent
    with torch.no_grad():
        net.theta.copy_(theta0)
        net.switches[0].copy_(torch.tensor(norms**2, dtype=DT))
        net.weights[0].copy_(
            torch.tensor(np.where(norms > 0, A / np.where(norms > 0, norms, 1) ** 2, 0))
        )
    assert abs(_objective(net, sn_penalty, smap, Xt, Yt) - gl_value) > 1e-3


# --------------------------------------------------------------------------
# stationary points balance the two penalties
# --------------------------------------------------------------------------
@pytest.mark.parametrize("p", [1, 2])
def test_fit_reaches_the_balance_of_switch_and_weight_penalties(p, engine):
    """At a stationary point, ``alpha |beta_j| = p alpha2 ||W[:, j]||_p^p``.

    Scaling ``beta_j -> beta_j / c`` and column ``j`` of the weights it scales
    by ``c`` leaves the loss unchanged; the derivative of the penalty in ``c``
    at ``c = 1`` must vanish. A full-batch proximal SGD fit (exact prox, with
    momentum: same fixed points) must end there; after two epochs it is far
    from it (the test can fail).
    """
    rng = np.random.default_rng(6)
    X = rng.normal(size=(120, 5))
    Y = np.c_[np.tanh(X[:, 0] - X[:, 1]), X[:, 2] + 0.5 * X[:, 0]]
    Y += 0.05 * rng.normal(size=Y.shape)
    alpha, alpha2 = 0.01, 0.005

    def fit(max_iter):
        est = ShrinkNetRegressor(
            (6,),
            activation="tanh",
            alpha=alpha,
            alpha2=alpha2,
            p=p,
            optimizer="sgd",
            momentum=0.9,
            batch_size=120,
            learning_rate_init=0.03,
            max_iter=max_iter,
            tol=0.0,
            n_iter_no_change=10**6,
            shuffle=False,
            remove_dead=False,
            random_state=0,
        )
        return _quiet(est, X, Y)

    def worst_imbalance(est):
        worst = 0.0
        net = est._trainer.net
        for beta, W in zip(net.switches, net.weights, strict=True):
            beta, W = beta.detach().double(), W.detach().double()
            live = beta != 0
            lhs = alpha * beta.abs()
            rhs = p * alpha2 * (W.abs() ** p).sum(dim=0)
            gap = ((lhs - rhs).abs() / (lhs + rhs))[live]
            worst = max(worst, float(gap.max()))
        return worst

    assert worst_imbalance(fit(2)) > 0.1
    est = fit(3000)
    # the balance is a flat direction of the loss: the l1 case gets there slower
    assert worst_imbalance(est) < {1: 5e-2, 2: 1e-2}[p]
    assert est.optimality_residual(X, Y) < 1e-3


# --------------------------------------------------------------------------
# removal of dead units is exact
# --------------------------------------------------------------------------
def _trainer(family, optimizer, sizes=(6, 8, 5, 2)):
    torch.manual_seed(0)
    switches = family.startswith("shrinknet")
    detector = None
    net = SparseMLP(sizes, "relu", dtype=DT, switches=switches)
    net.reset_parameters(torch.Generator().manual_seed(7), switch_init="uniform")
    if switches:
        gmap = build_switch_group_map(net.layout)
        switch_l1 = 0.01 if family == "shrinknet" else 0.0
        penalty = ElasticNet(
            _where(gmap.switch, switch_l1, 0.0), _where(gmap.switch, 0.0, 1e-3)
        )
        if family == "shrinknet_sign_variance":
            n_switches = sum(net.layout.switch_sizes)
            detector = SignVarianceDetector(
                torch.full((n_switches,), 0.01, dtype=DT), 0.5, 0.5
            )
    else:
        gmap = build_group_map(net.layout, family)
        strength = {"outgoing": 0.02, "incoming": 0.01}[family]
        penalty = GroupLasso(torch.full((gmap.n_groups,), strength, dtype=DT))
    config = TrainConfig(
        loss="squared",
        optimizer=optimizer,
        learning_rate_init=0.02 if optimizer == "adam" else 0.05,
        momentum=0.9,
        batch_size=16,
    )
    components = [] if detector is None else [detector]
    return ProximalTrainer(net, gmap, penalty, config, components=components)


def _data(seed=8, n=64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, dtype=DT, generator=g)
    Y = torch.stack([torch.tanh(X[:, 0] - X[:, 1]), X[:, 2]], dim=1)
    return X, Y


def _hold_at_zero(trainer, mask):
    """Freeze the coordinates outside ``mask`` at zero: after every optimizer
    step, before the prox (the full network "masked from epoch k")."""
    engine = trainer.engine
    step = engine.optimizer_step

    def step_then_mask(lr):
        step(lr)
        engine.buffers().theta.mul_(mask)

    engine.optimizer_step = step_then_mask


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize(
    "family", ["outgoing", "incoming", "shrinknet", "shrinknet_sign_variance"]
)
def test_removal_equals_training_the_masked_full_network(family, optimizer, engine):
    X, Y = _data()
    trainer = _trainer(family, optimizer)
    gen = torch.Generator().manual_seed(9)
    for _ in range(25):  # until some units are dead
        trainer.run_epoch(X, Y, gen)
    removing = trainer
    masked = copy.deepcopy(trainer)
    gen_masked = torch.Generator()
    gen_masked.set_state(gen.get_state())

    columns = removing.remove_dead()
    assert columns is not None, "the test needs dead units at epoch k"
    old_layout = masked.net.layout
    new_layout, index = select_units(
        old_layout,
        kept_units(
            [W.detach() for W in masked.net.effective_weights()],
            [b.detach() for b in masked.net.biases],
            "relu",
        ),
    )
    assert new_layout == removing.net.layout
    assert new_layout.n_params < old_layout.n_params
    mask = torch.zeros(old_layout.n_params + 1, dtype=DT)
    mask[index] = 1.0
    masked.net.theta.detach().mul_(mask)
    # the function did not change when the units went
    torch.testing.assert_close(removing.outputs(X), masked.outputs(X))
    # the optimizer state on the kept coordinates came along
    torch.testing.assert_close(removing.optimizer.first, masked.optimizer.first[index])
    torch.testing.assert_close(
        removing.optimizer.second, masked.optimizer.second[index]
    )
    _hold_at_zero(masked, mask)
    for _ in range(15):
        removing.run_epoch(X, Y, gen)
        masked.run_epoch(X, Y, gen_masked)
    torch.testing.assert_close(
        removing.net.theta.detach(),
        masked.net.theta.detach()[index],
        rtol=1e-9,
        atol=1e-11,
    )
    assert removing.loss_curve[-1] == pytest.approx(masked.loss_curve[-1], rel=1e-9)


@pytest.mark.parametrize("every", [1, 3])
def test_removal_every_k_batches_keeps_the_function(every, engine):
    X, Y = _data()
    trainer = _trainer("shrinknet", "adam")
    trainer.config.remove_every = every
    gen = torch.Generator().manual_seed(10)
    widths = []
    for _ in range(40):
        before = trainer.net.layout.layer_sizes
        trainer.run_epoch(X, Y, gen)
        widths.append(sum(trainer.net.layout.layer_sizes[:-1]))
        assert all(
            a <= b for a, b in zip(trainer.net.layout.layer_sizes, before, strict=True)
        )
    assert widths[-1] < sum((6, 8, 5)), "nothing was removed"
    # each removal is exact: removing again now changes nothing
    outputs = trainer.outputs(X)
    trainer.remove_dead()
    torch.testing.assert_close(trainer.outputs(X), outputs)


def test_kept_units_removes_exactly_the_units_that_cannot_matter():
    # hidden unit 0: zero outgoing column; unit 1: silent (relu, no input, no
    # bias); unit 2: constant (no input, bias 1): kept; feature 2 unused
    W1 = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0, 0]])
    b1 = torch.tensor([0.5, 0.0, 1.0, 0.0])
    W2 = torch.tensor([[0.0, 3.0, 2.0, 1.0]])
    b2 = torch.zeros(1)
    keep = kept_units([W1, W2], [b1, b2], "relu")
    assert keep[0].tolist() == [True, False, False]
    assert keep[1].tolist() == [False, False, True, True]
    # with the logistic activation a unit with no input outputs 0.5: it stays
    keep = kept_units([W1, W2], [b1, b2], "logistic")
    assert keep[1].tolist() == [False, True, True, True]


# --------------------------------------------------------------------------
# the sign-variance detector
# --------------------------------------------------------------------------
def _simulate_detector(values, gamma, tau):
    """ALGORITHMS.md 3.5(c) by hand, on a sequence of switch values."""
    m, v, alive = np.sign(values[0]), 0.0, True
    out = []
    for b in values[1:]:
        s = np.sign(b)
        d = s - m
        v = gamma * v + (1 - gamma) * d * d
        m = gamma * m + (1 - gamma) * s
        alive = alive and v <= tau
        out.append(alive)
    return out


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("kernels", [True, False])
def test_sign_variance_detector_matches_hand_simulation(gamma, kernels):
    rng = np.random.default_rng(11)
    n = 6
    # switches that drift and flip signs at different rates
    paths = np.cumsum(
        rng.normal(scale=[[0.05, 0.2, 0.5, 1.0, 0.01, 2.0]], size=(40, n)), 0
    )
    paths += rng.uniform(-1, 1, size=n)
    det = SignVarianceDetector(torch.zeros(n, dtype=DT), gamma, 0.5)
    det.reset(torch.tensor(paths[0], dtype=DT))
    seen = []
    for row in paths[1:]:
        beta = torch.tensor(row, dtype=DT)
        if kernels:
            arrays = (beta, det.m, det.v, det.alive)
            _kernels.sign_variance_update(*(a.numpy() for a in arrays), gamma, 0.5)
        else:
            det.update(beta)
        seen.append(det.alive.clone())
        # dead switches are held at zero
        assert torch.all(beta[~det.alive] == 0)
    for j in range(n):
        expected = _simulate_detector(paths[:, j], gamma, 0.5)
        assert [bool(a[j]) for a in seen] == expected
    if gamma == 0.0:
        # inertia 0: the first sign change kills
        flips = np.diff(np.sign(paths), axis=0) != 0
        first = [int(np.argmax(f)) if f.any() else None for f in flips.T]
        for j, k in enumerate(first):
            if k is not None:
                assert seen[k][j].item() is False and (k == 0 or seen[k - 1][j])


def test_sign_variance_estimator_kills_and_removes_units(engine):
    rng = np.random.default_rng(12)
    X = rng.normal(size=(200, 8))
    y = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=200)
    est = _quiet(
        ShrinkNetRegressor(
            (32,),
            alpha=0.02,
            switch_death="sign_variance",
            inertia=0.9,
            max_iter=40,
            batch_size=20,
            learning_rate_init=0.01,
            random_state=0,
        ),
        X,
        y,
    )
    sizes = [row["layer_sizes"] for row in est.history_]
    assert sizes[-1][1] < 32 and sizes[-1][0] < 8
    detector = est._trainer.component(SignVarianceDetector)
    assert detector.alive.all()  # the dead were removed
    assert est.score(X, y) > 0.8


# --------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------
def _classification(seed=13, n=240):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y


def test_exported_model_has_no_switches_and_predicts_like_the_switch_network():
    X, y = _classification()
    clf = _quiet(
        ShrinkNetClassifier(
            (24, 12),
            alpha=0.01,
            learning_rate_init=0.01,
            batch_size=32,
            max_iter=30,
            random_state=0,
        ),
        X,
        y,
    )
    assert clf.score(X, y) > 0.85
    modules = [type(m).__name__ for m in clf.network_.layers]
    assert set(modules) <= {"Linear", "ReLU"}
    with torch.no_grad():
        Xt = torch.tensor(X, dtype=torch.float32)
        switch_out = clf._trainer.outputs(Xt).double().numpy()
    raw = clf._raw_outputs(X)
    np.testing.assert_allclose(raw, switch_out, rtol=1e-4, atol=1e-5)
    # the history shows the shrinking network; coefs_ keep the original widths
    assert [c.shape for c in clf.coefs_] == [(10, 24), (24, 12), (12, 3)]
    first, last = clf.history_[0]["layer_sizes"], clf.history_[-1]["layer_sizes"]
    assert sum(last) < sum(first)
    assert all(a <= b for a, b in zip(clf.active_neurons_, last[1:-1], strict=True))
    assert [s.shape for s in clf.switches_] == [(10,), (24,), (12,)]
    # a feature the model reads has a live switch
    assert np.all(clf.switches_[0][clf.support_] != 0)


def test_training_cost_sums_the_input_widths_of_every_epoch():
    X, y = _classification()
    kwargs = dict(
        hidden_layer_sizes=(24, 12),
        alpha=0.01,
        learning_rate_init=0.01,
        batch_size=32,
        max_iter=20,
        random_state=0,
    )
    clf = _quiet(ShrinkNetClassifier(**kwargs), X, y)
    widths = [10 + 24 + 12] + [sum(r["layer_sizes"][:-1]) for r in clf.history_]
    # removal runs after each epoch: an epoch runs at the previous epoch's size
    assert [r["input_neurons"] for r in clf.history_] == widths[:-1]
    assert clf.training_cost_ == pytest.approx(sum(widths[:-1]))
    assert clf.training_cost_ < 20 * (10 + 24 + 12)
    assert all(r["seconds"] > 0 for r in clf.history_)
    no_removal = _quiet(ShrinkNetClassifier(remove_dead=False, **kwargs), X, y)
    assert no_removal.training_cost_ == 20 * (10 + 24 + 12)


@pytest.mark.parametrize("Estimator", [GroupLassoMLPRegressor, ShrinkNetRegressor])
def test_warm_start_partial_fit_pickle_after_removal(Estimator):
    rng = np.random.default_rng(14)
    X = rng.normal(size=(150, 7))
    y = X[:, 0] - 2 * X[:, 1] + 0.05 * rng.normal(size=150)
    est = Estimator(
        (20,),
        alpha=0.02,
        remove_dead=True,
        max_iter=30,
        batch_size=16,
        learning_rate_init=0.01,
        random_state=0,
    )
    _quiet(est, X, y)
    assert est.history_[-1]["layer_sizes"][0] < 7
    assert est.score(X, y) > 0.95
    before = est.predict(X)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), before)
    # training goes on from the removed state, reading the full feature matrix
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    est.set_params(warm_start=True, max_iter=5)
    _quiet(est, X, y)
    assert est.n_iter_ == 30 + 1 + 5
    assert len(est.history_) == est.n_iter_


def test_early_stopping_restores_a_larger_network_when_it_was_best(monkeypatch):
    X, y = _classification(n=300)
    scores = iter([0.9, 0.5] + [0.1] * 100)  # the first epoch is the best
    monkeypatch.setattr(
        ShrinkNetClassifier,
        "_validation_score",
        lambda self, out, yv, sw=None: next(scores),
    )
    clf = ShrinkNetClassifier(
        (24,),
        alpha=0.05,
        learning_rate_init=0.01,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=30,
        random_state=0,
    )
    _quiet(clf, X, y)
    assert clf.n_iter_ == 5
    sizes = clf.history_[0]["layer_sizes"]
    assert clf._trainer.net.layout.layer_sizes == tuple(sizes)
    assert clf.history_[-1]["layer_sizes"] != sizes


def test_group_lasso_estimators_remove_units_on_request(engine):
    X, y = _classification()
    kwargs = dict(
        hidden_layer_sizes=(32,),
        alpha=0.01,
        max_iter=40,
        batch_size=32,
        learning_rate_init=0.01,
        random_state=0,
    )
    removing = _quiet(GroupLassoMLPClassifier(remove_dead=True, **kwargs), X, y)
    keeping = _quiet(GroupLassoMLPClassifier(**kwargs), X, y)
    assert removing.history_[-1]["layer_sizes"][1] < 32
    assert keeping.history_[-1]["layer_sizes"][1] == 32
    assert removing.training_cost_ < keeping.training_cost_
    assert abs(removing.score(X, y) - keeping.score(X, y)) < 0.05
    assert removing.score(X, y) > 0.85


def test_parameter_errors_name_the_problem():
    X, y = _classification(n=40)
    with pytest.raises(ValueError, match="switch_death"):
        ShrinkNetClassifier(switch_death="forever").fit(X, y)
    with pytest.raises(ValueError, match="'p' parameter"):
        ShrinkNetClassifier(p=3).fit(X, y)
    with pytest.raises(ValueError, match="inertia"):
        ShrinkNetClassifier(inertia=1.0).fit(X, y)
    with pytest.raises(ValueError, match="remove_every"):
        GroupLassoMLPClassifier(remove_every=0).fit(X, y)
    est = _quiet(ShrinkNetClassifier((8,), max_iter=2, random_state=0), X, y)
    est.set_params(warm_start=True, switch_death="sign_variance")
    with pytest.raises(ValueError, match="switch_death"):
        est.fit(X, y)


def test_optimality_residual_after_removal_uses_the_original_group_weights():
    rng = np.random.default_rng(15)
    X = rng.normal(size=(100, 6))
    y = np.tanh(X[:, 0] - X[:, 1]) + 0.05 * rng.normal(size=100)
    kwargs = dict(
        hidden_layer_sizes=(8,),
        activation="tanh",
        alpha=0.02,
        optimizer="sgd",
        momentum=0.9,
        batch_size=100,
        learning_rate_init=0.05,
        max_iter=1500,
        tol=0.0,
        n_iter_no_change=10**6,
        shuffle=False,
        random_state=0,
    )
    removing = _quiet(GroupLassoMLPRegressor(remove_dead=True, **kwargs), X, y)
    assert removing.history_[-1]["layer_sizes"] != [6, 8, 1], "nothing removed"
    # converged on the reduced problem: the residual with sqrt(original size)
    # group weights is small (with the shrunk sizes it would not be)
    assert removing.optimality_residual(X, y) < 1e-3


def test_sign_variance_residual_includes_the_switch_penalty():
    rng = np.random.default_rng(16)
    X = rng.normal(size=(80, 4))
    y = X[:, 0] + 0.05 * rng.normal(size=80)
    est = _quiet(
        ShrinkNetRegressor(
            (), alpha=0.05, switch_death="sign_variance", max_iter=5, random_state=0
        ),
        X,
        y,
    )
    tr = est._trainer
    beta = tr.net.switches[0].detach()
    assert (beta != 0).any()
    # a switch's gradient alone is not its residual: alpha * sign(beta) enters
    res = est.optimality_residual(X, y)
    grad = torch.zeros_like(tr.net.theta.detach())
    Xt = torch.tensor(X, dtype=torch.float32)[:, tr.kept[0]]
    tr.net.loss_and_grad(
        Xt, torch.tensor(y[:, None], dtype=torch.float32), "squared", grad
    )
    g = grad[tr.net.layout.n_plain : tr.net.layout.n_params]
    expected = torch.where(
        beta != 0, (g + 0.05 * torch.sign(beta)).abs(), (g.abs() - 0.05).clamp(min=0)
    )
    assert res >= float(expected.max()) - 1e-6


def test_warm_start_gives_the_detector_the_new_settings():
    X, y = _classification(n=60)
    est = _quiet(
        ShrinkNetClassifier(
            (8,), alpha=0.02, switch_death="sign_variance", max_iter=2, random_state=0
        ),
        X,
        y,
    )
    est.set_params(warm_start=True, alpha=0.5, inertia=0.0, threshold=0.1)
    _quiet(est, X, y)
    det = est._trainer.component(SignVarianceDetector)
    assert det.inertia == 0.0 and det.threshold == 0.1
    assert torch.all(det.strengths == 0.5)
    assert len(det.strengths) == len(det.m)


def test_remove_every_accepts_numpy_integers_and_rejects_booleans():
    X, y = _classification(n=120)
    kwargs = dict(hidden_layer_sizes=(16,), alpha=0.05, batch_size=20, max_iter=3)
    a = _quiet(ShrinkNetClassifier(remove_every=1, random_state=0, **kwargs), X, y)
    b = _quiet(
        ShrinkNetClassifier(remove_every=np.int64(1), random_state=0, **kwargs), X, y
    )
    assert [r["input_neurons"] for r in a.history_] == [
        r["input_neurons"] for r in b.history_
    ]
    with pytest.raises(ValueError, match="remove_every"):
        ShrinkNetClassifier(remove_every=True, **kwargs).fit(X, y)


def test_interrupt_after_an_epoch_is_recorded_keeps_that_epoch(monkeypatch):
    X, y = _classification(n=120)
    kwargs = dict(hidden_layer_sizes=(8,), alpha=0.02, random_state=0)
    reference = _quiet(ShrinkNetClassifier(max_iter=3, **kwargs), X, y)
    original = ProximalTrainer.update_no_improvement
    calls = []

    def interrupting(self, score):
        calls.append(1)
        if len(calls) == 3:  # after epoch 3 is recorded
            raise KeyboardInterrupt
        return original(self, score)

    monkeypatch.setattr(ProximalTrainer, "update_no_improvement", interrupting)
    est = ShrinkNetClassifier(max_iter=50, **kwargs)
    with pytest.warns(UserWarning, match="last complete epoch"):
        est.fit(X, y)
    assert est.n_iter_ == 3 == len(est.history_) == len(est.loss_curve_)
    for ca, cb in zip(est.coefs_, reference.coefs_, strict=True):
        np.testing.assert_array_equal(ca, cb)


def test_removal_keeps_a_map_without_feature_groups():
    X, Y = _data()
    net = SparseMLP((6, 8, 2), "relu", dtype=DT)
    net.reset_parameters(torch.Generator().manual_seed(0))
    gmap = build_group_map(net.layout, "outgoing", features=False)
    trainer = ProximalTrainer(
        net,
        gmap,
        GroupLasso(0.05),
        TrainConfig(loss="squared", learning_rate_init=0.02, batch_size=16),
    )
    gen = torch.Generator().manual_seed(1)
    for _ in range(30):
        trainer.run_epoch(X, Y, gen)
    assert trainer.remove_dead() is not None
    assert not trainer.group_map.features
    assert bool((trainer.group_map.unit_layer > 0).all())


def test_a_network_whose_every_unit_died_predicts_a_constant_quietly():
    X, y = _classification(n=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = ShrinkNetClassifier((8,), alpha=50.0, max_iter=5, random_state=0)
        clf.fit(X, y)
    assert not [w for w in caught if "zero-element" in str(w.message)]
    assert clf.support_.sum() == 0 and clf.active_neurons_ == [0]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, np.broadcast_to(proba[0], proba.shape))
