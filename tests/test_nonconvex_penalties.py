"""Nonconvex penalties: every prox against brute-force minimisation.

The oracle is the prox problem itself, ``argmin_x step * alpha * R(x) + sum_i
D_i (x_i - v_i)^2 / 2``, minimised on a fine grid (1-D, and 2-D for the
penalties that couple a group's coordinates). Where the minimiser is not
unique (at a threshold) only the objective is compared.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skgroupsparse.penalties import (
    L0,
    GroupL0,
    GroupTransformedL1,
    L1MinusL2,
    LHalf,
    TransformedL1,
    half_threshold,
    hard_threshold,
    soft_threshold,
    tl1_threshold,
)

DT = torch.float64


def _t(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=DT)


def _objective(penalty, X, V, step, D=None):
    """Prox objective per row, for a batch of candidates ``X`` (rows)."""
    D = torch.ones_like(V) if D is None else D
    out = []
    for x, v, d in zip(X, V, D):
        x, v, d = x[None], v[None], d[None]
        out.append(float(step * penalty.value(x) + 0.5 * (d * (x - v) ** 2).sum()))
    return np.array(out)


ELEMENTWISE = [
    TransformedL1(1.0, a=0.1),
    TransformedL1(1.0, a=1.0),
    TransformedL1(1.0, a=10.0),
    L0(1.0),
    LHalf(1.0),
]


@pytest.mark.parametrize("penalty", ELEMENTWISE, ids=repr)
@pytest.mark.parametrize("metric", [False, True])
def test_elementwise_prox_is_the_brute_force_minimiser(penalty, metric):
    rng = np.random.default_rng(0)
    grid = np.linspace(-6, 6, 240001)
    for _ in range(60):
        v = rng.uniform(-4, 4)
        step = rng.uniform(0.01, 3.0)
        d = rng.uniform(0.2, 5.0) if metric else 1.0
        V = _t([[v]])
        x = float(penalty.prox(V, step, metric=_t([[d]]) if metric else None)[0, 0])
        f = step * _rho(penalty, grid) + 0.5 * d * (grid - v) ** 2
        f_x = step * _rho(penalty, np.array([x]))[0] + 0.5 * d * (x - v) ** 2
        best = f.argmin()
        assert f_x <= f[best] + 1e-7, (v, step, d, x, grid[best])
        # away from a tie between two minimisers the argmin itself must agree
        second = np.sort(f[np.abs(grid - grid[best]) > 0.05])[0]
        if second - f[best] > 1e-4:
            assert abs(x - grid[best]) < 1e-3, (v, step, d, x, grid[best])


def _rho(penalty, x):
    x = np.asarray(x, dtype=np.float64)
    if isinstance(penalty, TransformedL1):
        a = penalty.a
        return (a + 1) * np.abs(x) / (a + np.abs(x))
    if isinstance(penalty, L0):
        return (x != 0).astype(float)
    if isinstance(penalty, LHalf):
        return np.sqrt(np.abs(x))
    raise TypeError(penalty)


@pytest.mark.parametrize("penalty", ELEMENTWISE, ids=repr)
def test_elementwise_value_matches_its_formula(penalty):
    x = np.array([[-2.0, 0.0, 0.5], [1e-3, 3.0, -0.25]])
    alpha = _t([0.5, 2.0])
    p = type(penalty)(alpha, **({"a": penalty.a} if hasattr(penalty, "a") else {}))
    expected = (np.array([0.5, 2.0]) * _rho(penalty, x).sum(axis=1)).sum()
    assert float(p.value(_t(x))) == pytest.approx(expected, rel=1e-12)


def _grid_2d(n=801, r=4.0):
    g = np.linspace(-r, r, n)
    G0, G1 = np.meshgrid(g, g, indexing="ij")
    return _t(np.stack([G0.ravel(), G1.ravel()], axis=1))


GROUPED = [
    GroupL0(1.0),
    GroupL0(1.0, weights="sqrt_size"),
    GroupTransformedL1(1.0, a=0.5),
    GroupTransformedL1(1.0, a=5.0),
    L1MinusL2(1.0, l2_weight=1.0),
    L1MinusL2(1.0, l2_weight=0.5),
]


@pytest.mark.parametrize("penalty", GROUPED, ids=repr)
def test_group_prox_is_the_brute_force_minimiser_in_2d(penalty):
    rng = np.random.default_rng(1)
    X = _grid_2d()
    for _ in range(25):
        v = rng.uniform(-3, 3, size=2)
        if rng.uniform() < 0.3:
            v[rng.integers(2)] *= 0.05  # one small coordinate
        step = rng.uniform(0.05, 2.5)
        V = _t(v[None])
        x = penalty.prox(V, step)
        f_x = _objective(penalty, x, V, step)[0]
        diff = X - V
        f_grid = (
            step * _row_values(penalty, X) + 0.5 * (diff * diff).sum(dim=1)
        ).numpy()
        # the grid's step is 0.01: its minimum is within O(1e-4) of the true one
        assert f_x <= f_grid.min() + 1e-9, (v, step, x, X[f_grid.argmin()])
        assert f_x >= f_grid.min() - 1e-3


def _row_values(penalty, X):
    """The penalty of every row of ``X`` (one group per row; scalar alpha)."""
    return float(penalty.alpha) * _per_row(penalty, X)


def _per_row(penalty, X):
    norms = torch.linalg.vector_norm(X, dim=1)
    # the group weights, from the definition (not the code under test)
    w = np.sqrt(X.shape[1]) if getattr(penalty, "weights", None) == "sqrt_size" else 1.0
    if isinstance(penalty, GroupL0):
        return w * (norms > 0).to(DT)
    if isinstance(penalty, GroupTransformedL1):
        a = penalty.a
        return w * (a + 1) * norms / (a + norms)
    if isinstance(penalty, L1MinusL2):
        return X.abs().sum(dim=1) - penalty.l2_weight * norms
    raise TypeError(penalty)


def test_row_values_agree_with_value():
    rng = np.random.default_rng(2)
    X = _t(rng.normal(size=(7, 2)))
    X[3] = 0.0
    for penalty in GROUPED:
        total = float(penalty.value(X))
        assert float(_row_values(penalty, X).sum()) == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize(
    "penalty",
    [L1MinusL2(0.7, l2_weight=0.5), L1MinusL2(0.7), GroupTransformedL1(0.3, a=2.0)],
    ids=repr,
)
def test_wide_group_prox_beats_every_perturbation(penalty):
    # 5-coordinate rows: no grid, but the prox must beat its neighbourhood, 0,
    # and every 1-sparse candidate
    rng = np.random.default_rng(3)
    V = _t(rng.normal(scale=1.5, size=(40, 5)))
    step = 0.8
    X = penalty.prox(V, step)
    f = _objective(penalty, X, V, step)
    for _ in range(200):
        Y = X + _t(rng.normal(scale=0.05, size=X.shape)) * _t(
            rng.uniform(size=X.shape) < 0.5
        )
        assert np.all(f <= _objective(penalty, Y, V, step) + 1e-12)
    assert np.all(f <= _objective(penalty, torch.zeros_like(V), V, step) + 1e-12)
    for i in range(5):
        one = torch.zeros_like(V)
        one[:, i] = V[:, i]
        shrunk = one * 0.9
        for Y in (one, shrunk):
            assert np.all(f <= _objective(penalty, Y, V, step) + 1e-12)


def test_group_l0_metric_prox_is_exact():
    # keep-or-zero is the only choice: compare both objectives directly
    rng = np.random.default_rng(4)
    V = _t(rng.normal(size=(200, 3)))
    D = _t(rng.uniform(0.1, 5.0, size=(200, 3)))
    penalty = GroupL0(_t(rng.uniform(0.1, 2.0, size=200)))
    X = penalty.prox(V, 0.5, metric=D)
    keep_cost = 0.5 * penalty._group_alpha(V, None)
    zero_cost = 0.5 * (D * V * V).sum(dim=1)
    kept = torch.linalg.vector_norm(X, dim=1) > 0
    assert torch.equal(kept, zero_cost > keep_cost)
    assert torch.equal(X[kept], V[kept])


def test_non_separable_penalties_refuse_a_metric():
    V = torch.ones(2, 3, dtype=DT)
    for penalty in (L1MinusL2(1.0), GroupTransformedL1(1.0)):
        with pytest.raises(NotImplementedError, match="optimizer='sgd'"):
            penalty.prox(V, 0.1, metric=torch.ones_like(V))


# --------------------------------------------------------------------------
# threshold edges
# --------------------------------------------------------------------------
def test_tl1_threshold_is_computed_in_float64():
    # training steps give tau ~ 1e-6: the float32 result is the float64 one
    # rounded, and never larger than its input
    v = torch.linspace(1e-3, 1.0, 500, dtype=torch.float32)
    for a in (1.0, 10.0):
        for tau in (1e-6, 1e-7):
            x32 = tl1_threshold(v, tau, a)
            assert x32.dtype == torch.float32
            torch.testing.assert_close(
                x32, tl1_threshold(v.double(), tau, a).float(), rtol=0, atol=0
            )
            assert bool((x32.abs() <= v.abs()).all())


def test_hard_threshold_edges():
    tau = 0.5
    t = np.sqrt(2 * tau)
    v = _t([t - 1e-9, t, t + 1e-9, -(t + 1e-9)])
    np.testing.assert_array_equal(
        hard_threshold(v, tau).numpy(), [0, 0, t + 1e-9, -(t + 1e-9)]
    )


@pytest.mark.parametrize("a, tau", [(1.0, 0.1), (1.0, 2.0), (0.2, 0.5), (20.0, 3.0)])
def test_tl1_threshold_edges(a, tau):
    # below t* the prox is 0; just above it it is nonzero, and in the
    # discontinuous regime both sides attain the same objective at t*
    small = tau <= a * a / (2 * (a + 1))
    t_star = tau * (a + 1) / a if small else np.sqrt(2 * tau * (a + 1)) - a / 2
    below = float(tl1_threshold(_t(t_star - 1e-7), tau, a))
    above = float(tl1_threshold(_t(t_star + 1e-7), tau, a))
    assert below == 0.0 and above > 0.0

    def f(x, v):
        return tau * (a + 1) * abs(x) / (a + abs(x)) + 0.5 * (x - v) ** 2

    if small:
        assert above < 1e-5  # continuous: the prox leaves 0 gradually
    else:
        assert f(above, t_star) == pytest.approx(f(0.0, t_star), abs=1e-6)


def test_half_threshold_edges():
    tau = 0.3
    thr = 54 ** (1 / 3) / 4 * (2 * tau) ** (2 / 3)
    assert float(half_threshold(_t(thr - 1e-9), tau)) == 0.0
    above = float(half_threshold(_t(thr + 1e-9), tau))
    assert above > 0

    def f(x):
        return tau * np.sqrt(abs(x)) + 0.5 * (x - thr) ** 2

    # at the threshold 0 and the jump point tie; the jump is 2/3 of it
    assert f(above) == pytest.approx(f(0.0), abs=1e-6)
    assert above == pytest.approx(2 * thr / 3, rel=1e-4)


# --------------------------------------------------------------------------
# TL1's limits
# --------------------------------------------------------------------------
def test_tl1_tends_to_l1_as_a_grows():
    v = _t(np.linspace(-3, 3, 601))
    tau = 0.4
    errors = [
        float((tl1_threshold(v, tau, a) - soft_threshold(v, tau)).abs().max())
        for a in (1e1, 1e3, 1e5)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-4


def test_tl1_tends_to_l0_as_a_shrinks():
    tau = 0.4
    v = _t(np.linspace(-3, 3, 601))
    keep = v.abs() > np.sqrt(2 * tau) + 1e-2  # away from the threshold
    far = keep | (v.abs() < np.sqrt(2 * tau) - 1e-2)
    errors = [
        float((tl1_threshold(v, tau, a) - hard_threshold(v, tau))[far].abs().max())
        for a in (1e-1, 1e-3, 1e-5)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3


# --------------------------------------------------------------------------
# properties (hypothesis)
# --------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    v=st.floats(-20, 20),
    tau=st.floats(1e-4, 10),
    a=st.floats(1e-3, 1e3),
    which=st.sampled_from(["tl1", "l0", "half"]),
)
def test_scalar_prox_properties(v, tau, a, which):
    def prox(x):
        x = _t(x)
        if which == "tl1":
            return float(tl1_threshold(x, tau, a))
        if which == "l0":
            return float(hard_threshold(x, tau))
        return float(half_threshold(x, tau))

    def rho(x):
        if which == "tl1":
            return (a + 1) * abs(x) / (a + abs(x))
        if which == "l0":
            return float(x != 0)
        return np.sqrt(abs(x))

    x = prox(v)
    assert prox(-v) == -x  # odd
    assert abs(x) <= abs(v) + 1e-12 and x * v >= 0  # shrinks, keeps the sign
    f = tau * rho(x) + 0.5 * (x - v) ** 2
    for y in (0.0, v, 0.5 * v, 0.9 * x, 1.1 * x, x + 1e-3, x - 1e-3):
        assert f <= tau * rho(y) + 0.5 * (y - v) ** 2 + 1e-9 * (1 + abs(v)) ** 2
    assert abs(prox(v + 0.5 * np.sign(v))) >= abs(x)  # monotone in |v|


# --------------------------------------------------------------------------
# optimality conditions
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "penalty",
    [
        TransformedL1(0.6, a=0.7),
        L0(0.6),
        LHalf(0.6),
        L1MinusL2(0.6, l2_weight=0.5),
        GroupL0(0.6),
        GroupTransformedL1(0.6, a=1.5),
    ],
    ids=repr,
)
def test_subdiff_distance_vanishes_at_the_prox(penalty):
    # x = prox_{step R}(v) is stationary for step R(x) + ||x - v||^2 / 2, so
    # with grad = (x - v) / step the distance must be zero
    rng = np.random.default_rng(5)
    V = _t(rng.normal(scale=1.5, size=(50, 4)))
    step = 0.7
    X = penalty.prox(V, step)
    dist = penalty.subdiff_distance(X, (X - V) / step)
    assert float(dist.max()) < 1e-9
    # and a non-stationary point is caught
    assert float(penalty.subdiff_distance(X, (X - V) / step + 0.5).max()) > 0.1


def test_tl1_zero_thresholds_match_the_prox():
    # with a small step, the prox-gradient step from 0 stays at 0 exactly when
    # alpha is at least the coordinate's zero threshold
    rng = np.random.default_rng(6)
    g = _t(rng.normal(size=(30, 4)))
    for penalty in (TransformedL1(1.0, a=0.8), GroupTransformedL1(1.0, a=0.8)):
        thresholds = penalty.zero_thresholds(g)
        for alpha in (0.3, 1.0, 2.0):
            penalty.alpha = alpha
            step = 1e-4
            moved = penalty.prox(-step * g, step) != 0
            assert torch.equal(moved, thresholds > alpha)


def test_penalties_without_zero_threshold_say_why():
    g = torch.ones(2, 3, dtype=DT)
    for penalty in (L0(1.0), LHalf(1.0), GroupL0(1.0)):
        with pytest.raises(NotImplementedError, match="choose alpha on a grid"):
            penalty.zero_thresholds(g)
    with pytest.raises(NotImplementedError, match="choose alpha on a grid"):
        L1MinusL2(1.0).alpha_max(g)


def test_l1_minus_l2_alpha_max_zeroes_every_row():
    # at alpha_max (and not below) the prox of a small step from 0 stays at 0
    rng = np.random.default_rng(8)
    g = _t(rng.normal(size=(6, 4)))
    penalty = L1MinusL2(1.0, l2_weight=0.4)
    top = float(penalty.alpha_max(g))
    step = 1e-3
    for factor, zero in ((1.001, True), (0.999, False)):
        penalty.alpha = factor * top
        assert bool((penalty.prox(-step * g, step) == 0).all()) is zero


# --------------------------------------------------------------------------
# through the estimators
# --------------------------------------------------------------------------
def _best_subset(X, Y, alpha):
    """Global minimiser of 1/2 mean ||y - X_S b - c||^2 + alpha |S| over subsets."""
    import itertools

    n, p = X.shape
    best = None
    for k in range(p + 1):
        for S in itertools.combinations(range(p), k):
            A = np.c_[X[:, S], np.ones(n)]
            coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
            value = 0.5 * np.mean(((Y - A @ coef) ** 2).sum(axis=1)) + alpha * k
            if best is None or value < best[0]:
                full = np.zeros((p, Y.shape[1]))
                full[list(S)] = coef[:-1]
                best = (value, full, coef[-1])
    return best[1], best[2]


@pytest.mark.parametrize("penalty, n_outputs", [("l0", 1), ("group_l0", 2)])
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_l0_linear_model_finds_the_best_subset(penalty, n_outputs, alpha):
    # full-batch proximal gradient with the hard threshold (iterative hard
    # thresholding) on a linear model must land on the brute-force best subset
    # here (a clear signal; l0 has local minima in general, e.g. at alpha=0.01)
    import warnings

    from skgroupsparse import GroupLassoMLPRegressor

    rng = np.random.default_rng(0)
    n, p = 200, 6
    X = rng.normal(size=(n, p))
    X = (X - X.mean(0)) / X.std(0)
    B = np.zeros((p, n_outputs))
    B[0], B[2], B[4] = 1.5, -1.0, 0.3
    Y = X @ B + 0.5 * rng.normal(size=(n, n_outputs)) + 2.0
    coef, intercept = _best_subset(X, Y, alpha)
    est = GroupLassoMLPRegressor(
        hidden_layer_sizes=(),
        penalty=penalty,
        alpha=alpha,
        optimizer="sgd",
        momentum=0.0,
        learning_rate_init=0.5,
        batch_size=n,
        max_iter=300,
        tol=0,
        shuffle=False,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y[:, 0] if n_outputs == 1 else Y)
    np.testing.assert_allclose(est.coefs_[0], coef, atol=1e-5)
    np.testing.assert_allclose(est.intercepts_[0], intercept, atol=1e-5)
    assert est.support_.tolist() == (np.abs(coef).sum(axis=1) > 0).tolist()


def test_metric_free_penalties_need_an_identity_metric_prox():
    from skgroupsparse import GroupLassoMLPClassifier

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    for penalty in ("l1_l2", "group_tl1"):
        est = GroupLassoMLPClassifier((4,), penalty=penalty, max_iter=2)
        with pytest.raises(ValueError, match="optimizer='sgd', or prox='decoupled'"):
            est.fit(X, y)
        est.set_params(prox="decoupled").fit(X, y)
        est.set_params(optimizer="sgd", prox="preconditioned").fit(X, y)


# --------------------------------------------------------------------------
# ShrinkNet switches (nonconvex network slimming)
# --------------------------------------------------------------------------
def test_rowwise_composite_dispatches_rows():
    from skgroupsparse.penalties import ElasticNet, RowwiseComposite

    rng = np.random.default_rng(7)
    V = _t(rng.normal(size=(5, 3)))
    D = _t(rng.uniform(0.5, 2.0, size=(5, 3)))
    rows = torch.tensor([True, False, True, False, False])
    first = TransformedL1(_t([0.4, 0.9]), a=0.7)
    second = ElasticNet(_t([0.1, 0.0, 0.2]), _t([0.0, 0.3, 0.05]))
    both = RowwiseComposite(first, second, rows)
    X = both.prox(V, 0.6, metric=D)
    torch.testing.assert_close(X[rows], first.prox(V[rows], 0.6, metric=D[rows]))
    torch.testing.assert_close(X[~rows], second.prox(V[~rows], 0.6, metric=D[~rows]))
    assert float(both.value(V)) == pytest.approx(
        float(first.value(V[rows]) + second.value(V[~rows]))
    )
    keep = torch.tensor([True, True, False, False, True])
    kept = both.select(keep)
    torch.testing.assert_close(
        kept.prox(V[keep], 0.6), both.prox(V, 0.6)[keep], msg="select"
    )


@pytest.mark.parametrize("switch_penalty", ["tl1", "l_half", "l0"])
def test_shrinknet_nonconvex_switches_reach_a_stationary_point(switch_penalty):
    # full-batch proximal gradient on A diag(beta) x: the optimality residual
    # (read from the gradients and the penalty's subdifferential, not from the
    # prox) falls to the training's float32 noise
    import warnings

    from skgroupsparse import ShrinkNetRegressor

    rng = np.random.default_rng(0)
    n, p = 100, 6
    X = rng.normal(size=(n, p))
    y = 1.5 * X[:, 0] - X[:, 2] + 0.2 * rng.normal(size=n)
    common = dict(
        hidden_layer_sizes=(),
        switch_penalty=switch_penalty,
        alpha=0.05,
        alpha2=0.01,
        optimizer="sgd",
        momentum=0.0,
        learning_rate_init=0.05,
        batch_size=n,
        tol=0,
        shuffle=False,
        random_state=0,
        remove_dead=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        early = ShrinkNetRegressor(max_iter=5, **common).fit(X, y)
        late = ShrinkNetRegressor(max_iter=3000, **common).fit(X, y)
    assert early.optimality_residual(X, y) > 0.05
    assert late.optimality_residual(X, y) < 1e-2
    assert np.all(late.switches_[0][[0, 2]] != 0)
    if switch_penalty != "l0":
        # the uninformative features' switches are exactly zero (l0 does not
        # shrink: a switch is cut only below sqrt(2 lr alpha), and the weights'
        # ridge keeps the scale on the switches)
        assert np.all(late.switches_[0][[1, 3, 4, 5]] == 0)


def test_shrinknet_nonconvex_switches_need_the_prox():
    from skgroupsparse import ShrinkNetClassifier

    X = np.random.default_rng(0).normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    est = ShrinkNetClassifier(
        (4,), switch_penalty="tl1", switch_death="sign_variance", max_iter=2
    )
    with pytest.raises(ValueError, match="switch_death='prox'"):
        est.fit(X, y)
