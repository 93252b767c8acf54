"""Tests of :mod:`skgroupsparse.penalties` against independent oracles.

Every penalty is written here as ``lam1 * ||x||_1 + tg * ||x||_2`` per group
row, with ``lam1`` and ``tg`` computed in numpy from the penalty's definition
(ALGORITHMS.md section 0.3; the diagonal metric of section 6.3). The oracles
never call the code under test:

* ``_dual_prox``: the prox as a brute-force minimisation by scipy's SLSQP of
  its dual (a smooth quadratic over a box plus a ball), which uses none of the
  closed forms or the secular equation of the implementation;
* ``_powell_min``: a derivative-free primal minimisation from several starts;
* ``_kkt_bound``: a certificate. The prox objective is ``min(d)``-strongly
  convex, so ``||x - x*|| <= dist(0, subdifferential at x) / min(d)`` for any
  ``x``; this checks a candidate to round-off, however ill-conditioned ``d``;
* ``_secular_prox``: the weighted group prox of one row from its optimality
  condition, a scalar equation solved by brentq (regression cases);
* ``_subdiff_dist_bf``: the distance of ``-grad`` to the subdifferential by
  SLSQP over that set.
"""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose
from scipy import optimize
from threadpoolctl import threadpool_limits

from skgroupsparse.penalties import (
    L0,
    L1,
    PENALTIES,
    GroupL0,
    GroupLasso,
    LHalf,
    SparseGroupLasso,
    make_penalty,
    weighted_block_soft_threshold,
)

# name -> (factory(alpha), share of alpha on ||x||_1, share on ||x||_2, weights)
SPECS = {
    "l1": (lambda a: L1(a), 1.0, 0.0, "ones"),
    "gl_sqrt": (lambda a: GroupLasso(a, weights="sqrt_size"), 0.0, 1.0, "sqrt_size"),
    "gl_ones": (lambda a: GroupLasso(a, weights="ones"), 0.0, 1.0, "ones"),
    "sgl_r0": (lambda a: SparseGroupLasso(a, l1_ratio=0.0), 0.0, 1.0, "sqrt_size"),
    "sgl_r0.3": (lambda a: SparseGroupLasso(a, l1_ratio=0.3), 0.3, 0.7, "sqrt_size"),
    "sgl_r0.5_ones": (
        lambda a: SparseGroupLasso(a, l1_ratio=0.5, weights="ones"),
        0.5,
        0.5,
        "ones",
    ),
    "sgl_r0.8": (lambda a: SparseGroupLasso(a, l1_ratio=0.8), 0.8, 0.2, "sqrt_size"),
    "sgl_r1": (lambda a: SparseGroupLasso(a, l1_ratio=1.0), 1.0, 0.0, "sqrt_size"),
}
SPEC_NAMES = sorted(SPECS)
GROUP_SPECS = [name for name in SPEC_NAMES if name != "l1"]

FAST = settings(max_examples=60, deadline=None)


@pytest.fixture
def rng():
    """Fresh seeded generator for each test."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """One BLAS thread for the scipy oracles.

    SLSQP makes many tiny LAPACK calls; on a small or busy machine a BLAS
    thread pool makes them orders of magnitude slower. Results do not change.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------
# Independent numpy / scipy oracles
# --------------------------------------------------------------------------
def _make(name, alpha):
    alpha = torch.as_tensor(alpha) if isinstance(alpha, np.ndarray) else alpha
    return SPECS[name][0](alpha)


def _coefs(name, alpha, sizes, step=1.0):
    """Per-row ``(lam1, tg)`` of ``step * penalty``, from the definitions."""
    _, l1_share, group_share, weights = SPECS[name]
    sizes = np.asarray(sizes, dtype=float)
    w = np.sqrt(sizes) if weights == "sqrt_size" else np.ones_like(sizes)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), sizes.shape)
    return step * alpha * l1_share, step * alpha * group_share * w


def _objective(x, v, d, lam1, tg):
    """``lam1 ||x||_1 + tg ||x||_2 + 1/2 sum_i d_i (x_i - v_i)^2``."""
    return (
        0.5 * np.sum(d * (x - v) ** 2) + lam1 * np.abs(x).sum() + tg * np.linalg.norm(x)
    )


def _dual_prox(v, d, lam1, tg):
    """Brute-force weighted prox through its dual, by SLSQP.

    ``lam1 ||x||_1 + tg ||x||_2 = max <u1 + u2, x>`` over ``|u1|_inf <= lam1``,
    ``||u2|| <= tg``; minimising over ``x`` first gives ``x = v - u / d`` and
    the dual ``min 1/2 sum_i (u_i - d_i v_i)^2 / d_i``, ``u = u1 + u2``.
    """
    n = v.size
    blocks = [b for b, on in (("l1", lam1 > 0), ("l2", tg > 0)) if on]
    if not blocks:
        return v.copy()
    a = d * v
    k = len(blocks)

    def fun(w):
        r = w.reshape(k, n).sum(axis=0) - a
        return 0.5 * np.sum(r * r / d), np.tile(r / d, k)

    bounds = []
    constraints = []
    for i, b in enumerate(blocks):
        if b == "l1":
            bounds += [(-lam1, lam1)] * n
        else:
            bounds += [(None, None)] * n
            sl = slice(i * n, (i + 1) * n)

            def ball(w, sl=sl):
                return tg * tg - w[sl] @ w[sl]

            def ball_jac(w, sl=sl):
                jac = np.zeros_like(w)
                jac[sl] = -2.0 * w[sl]
                return jac

            constraints.append({"type": "ineq", "fun": ball, "jac": ball_jac})
    res = optimize.minimize(
        fun,
        np.zeros(k * n),
        jac=True,
        method="SLSQP",
        bounds=bounds,
        constraints=constraints,
        options={"ftol": 1e-16, "maxiter": 3000},
    )
    return v - res.x.reshape(k, n).sum(axis=0) / d


def _powell_min(v, d, lam1, tg, starts):
    """Smallest objective found by Powell from each start."""
    best = np.inf
    for x0 in starts:
        res = optimize.minimize(
            _objective,
            x0,
            args=(v, d, lam1, tg),
            method="Powell",
            options={"xtol": 1e-12, "ftol": 1e-15, "maxiter": 50000},
        )
        best = min(best, res.fun, _objective(res.x, v, d, lam1, tg))
    return best


def _kkt_bound(X, V, D, lam1, tg):
    """Per row, an upper bound on ``||x - prox(v)||``: dist(0, dG(x)) / min(d).

    ``G(x) = lam1 ||x||_1 + tg ||x||_2 + 1/2 sum d (x - v)^2`` is
    ``min(d)``-strongly convex; ``X, V, D`` have shape (n_rows, size) and
    ``lam1, tg`` shape (n_rows,).
    """
    lam1 = np.asarray(lam1, dtype=float)[:, None]
    tg = np.asarray(tg, dtype=float)
    g = D * (X - V)
    nx = np.linalg.norm(X, axis=1)
    unit = X / np.where(nx > 0, nx, 1.0)[:, None]
    u = g + tg[:, None] * unit
    per = np.where(
        X != 0, np.abs(u + lam1 * np.sign(X)), np.maximum(np.abs(u) - lam1, 0.0)
    )
    dist_nonzero = np.linalg.norm(per, axis=1)
    soft = np.maximum(np.abs(g) - lam1, 0.0)
    dist_zero = np.maximum(np.linalg.norm(soft, axis=1) - tg, 0.0)
    dist = np.where(nx > 0, dist_nonzero, dist_zero)
    return dist / D.min(axis=1)


def _subdiff_dist_bf(x, grad, lam1, tg):
    """``dist(-grad, lam1 d||x||_1 + tg d||x||_2)`` by SLSQP over that set."""
    n = x.size
    free = x == 0
    fixed = np.where(free, 0.0, lam1 * np.sign(x))
    nx = np.linalg.norm(x)
    n_free = int(free.sum()) if lam1 > 0 else 0
    ball = nx == 0 and tg > 0
    base = grad + fixed + (tg * x / nx if nx > 0 else 0.0)

    def fun(w):
        r = base.copy()
        if n_free:
            r[free] += w[:n_free]
        if ball:
            r += w[n_free:]
        return float(r @ r)

    n_var = n_free + (n if ball else 0)
    if n_var == 0:
        return math.sqrt(fun(np.zeros(0)))
    bounds = [(-lam1, lam1)] * n_free + [(None, None)] * (n_var - n_free)
    constraints = []
    if ball:
        constraints.append(
            {"type": "ineq", "fun": lambda w: tg * tg - w[n_free:] @ w[n_free:]}
        )
    res = optimize.minimize(
        fun,
        np.zeros(n_var),
        method="SLSQP",
        bounds=bounds,
        constraints=constraints,
        options={"ftol": 1e-15, "maxiter": 2000},
    )
    return math.sqrt(max(res.fun, 0.0))


def _padded(rng, sizes, scales=None):
    """Random group matrix with rows ``rng.normal`` up to ``sizes``, zero after."""
    sizes = np.asarray(sizes)
    V = rng.standard_normal((sizes.size, sizes.max()))
    V[np.arange(sizes.max())[None, :] >= sizes[:, None]] = 0.0
    if scales is not None:
        V *= np.asarray(scales)[:, None]
    return V


def _t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def _check_rows_against_bf(X, V, D, lam1, tg, sizes, tol, powell_max_size=0):
    """Compare every row of the candidate ``X`` to the brute-force prox."""
    for g, s in enumerate(sizes):
        x, v, d = X[g, :s], V[g, :s], D[g, :s]
        assert np.all(X[g, s:] == 0), f"row {g}: padding not zero"
        x_bf = _dual_prox(v, d, lam1[g], tg[g])
        f_cand = _objective(x, v, d, lam1[g], tg[g])
        f_bf = _objective(x_bf, v, d, lam1[g], tg[g])
        scale = 1.0 + np.linalg.norm(v)
        assert f_cand <= f_bf + 1e-10 * (1.0 + abs(f_bf)), (g, f_cand, f_bf)
        assert np.linalg.norm(x - x_bf) <= tol * scale, (g, x, x_bf)
        if s <= powell_max_size:
            starts = [v, np.zeros(s), x, x_bf]
            f_pw = _powell_min(v, d, lam1[g], tg[g], starts)
            assert f_cand <= f_pw + 1e-11 * (1.0 + abs(f_pw)), (g, f_cand, f_pw)


# --------------------------------------------------------------------------
# 1. prox, identity metric, against brute force
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_prox_identity_matches_brute_force(name, rng):
    """``prox(V, step)`` row by row equals the brute-force prox, padding kept 0."""
    sizes = np.array([1, 3, 8, 5, 2, 8, 4, 6])
    V = _padded(rng, sizes, scales=10.0 ** np.linspace(-1.5, 1.5, sizes.size))
    step, alpha = 0.7, 0.6
    X = _make(name, alpha).prox(_t(V), step, sizes=torch.as_tensor(sizes)).numpy()
    lam1, tg = _coefs(name, alpha, sizes, step)
    D = np.ones_like(V)
    _check_rows_against_bf(X, V, D, lam1, tg, sizes, tol=1e-7, powell_max_size=5)
    assert np.all(_kkt_bound(X, V, D, lam1, tg) <= 1e-12 * (1 + np.abs(V).sum(1)))


def test_prox_identity_brute_force_sees_both_regimes(rng):
    """The data of the brute-force tests has zero and nonzero rows (no vacuity)."""
    sizes = np.array([1, 3, 8, 5, 2, 8, 4, 6])
    V = _padded(rng, sizes, scales=10.0 ** np.linspace(-1.5, 1.5, sizes.size))
    lam1, tg = _coefs("gl_sqrt", 0.6, sizes, 0.7)
    zero = [
        np.linalg.norm(_dual_prox(V[g, :s], np.ones(s), lam1[g], tg[g])) < 1e-9
        for g, s in enumerate(sizes)
    ]
    assert any(zero) and not all(zero)


# --------------------------------------------------------------------------
# 2. prox in a diagonal metric
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_prox_metric_matches_brute_force(name, rng):
    """Weighted prox (ill-conditioned ``D`` in [1e-3, 1e3]) equals brute force."""
    sizes = np.array([1, 2, 3, 7, 16, 50, 5])
    V = _padded(rng, sizes, scales=10.0 ** rng.uniform(-1, 1, sizes.size))
    D = 10.0 ** rng.uniform(-3, 3, V.shape)
    # per-group strength spread around each row's own threshold scale
    ref = np.linalg.norm(D * V, axis=1) / np.sqrt(sizes)
    alpha = ref * np.array([0.05, 0.3, 0.7, 1.0, 1.3, 0.5, 3.0])
    step = 0.8
    pen = _make(name, alpha)
    X = pen.prox(_t(V), step, metric=_t(D), sizes=torch.as_tensor(sizes)).numpy()
    lam1, tg = _coefs(name, alpha, sizes, step)
    _check_rows_against_bf(X, V, D, lam1, tg, sizes, tol=1e-5)
    # tight: a certificate, valid however ill-conditioned D is
    bound = _kkt_bound(X, V, D, lam1, tg)
    assert np.all(bound <= 1e-8 * (1 + np.linalg.norm(V, axis=1))), bound


@pytest.mark.parametrize("size", [1, 2, 3, 5, 10, 50])
@pytest.mark.parametrize("d_kind", ["loguniform", "two_values", "one_outlier"])
def test_weighted_block_soft_threshold_tight(size, d_kind, rng):
    """Newton solver of the weighted group prox is exact to round-off.

    ``D`` spans 1e-3..1e3: log-uniform, only the two extremes, or a single
    coordinate at 1e-3 among 1e3. Thresholds range from far below ``||D z||``
    to just below it, and above it (zero rows).
    """
    n = 400
    Z = rng.standard_normal((n, size)) * 10.0 ** rng.uniform(-2, 2, (n, 1))
    if d_kind == "loguniform":
        D = 10.0 ** rng.uniform(-3, 3, (n, size))
    elif d_kind == "two_values":
        D = 10.0 ** rng.choice([-3.0, 3.0], (n, size))
    else:
        D = np.full((n, size), 1e3)
        D[:, 0] = 1e-3
    norm_a = np.linalg.norm(D * Z, axis=1)
    frac = np.concatenate(
        [rng.uniform(0, 1, n // 2), 1 - 10.0 ** rng.uniform(-10, -1, n // 4)]
    )
    frac = np.concatenate([frac, rng.uniform(1, 2, n - frac.size)])
    t = norm_a * frac
    X = weighted_block_soft_threshold(_t(Z), _t(D), _t(t)).numpy()
    zero_rows = norm_a <= t
    assert np.all(X[zero_rows] == 0)
    bound = _kkt_bound(X, Z, D, np.zeros(n), t)
    bad = np.flatnonzero(bound > 1e-8 * np.linalg.norm(Z, axis=1))
    assert bad.size == 0, (
        f"{bad.size} rows off, e.g. z={Z[bad[0]]!r}, d={D[bad[0]]!r}, "
        f"t={t[bad[0]]!r}: got {X[bad[0]]!r}, error bound {bound[bad[0]]:.3g}"
    )


def _secular_prox(z, d, t):
    """Weighted group prox of one row by brentq on ``r = ||x||``.

    From the optimality condition: ``x = d z r / (d r + t)`` with
    ``sum (d z / (d r + t))^2 = 1`` (zero iff ``||d z|| <= t``).
    """
    a = d * z
    excess = np.linalg.norm(a) - t
    if excess <= 0:
        return np.zeros_like(z)

    def phi(r):
        return np.sum((a / (d * r + t)) ** 2) - 1.0

    lo, hi = excess / d.max(), excess / d.min()
    r = lo if phi(lo) <= 0 else optimize.brentq(phi, lo, hi, xtol=1e-300, rtol=1e-15)
    return a * r / (d * r + t)


@pytest.mark.parametrize(
    ("z", "d", "frac"),
    [
        # root hit exactly by the first guess (bisection of a huge bracket)
        ([12.61785112, -0.02659115, 11.86199018], [1e3, 1e-3, 1e3], 0.8779),
        # large coordinate on the small metric entry (slow Newton from the left)
        ([1.0, 10**5.8], [1e3, 1e-3], 0.53),
        ([1.0, 1e5], [1e3, 1e-3], 0.09),
    ],
)
def test_weighted_block_soft_threshold_regression_cases(z, d, frac):
    """Cases found by the tests above, against the brentq solution."""
    z, d = np.array(z), np.array(d)
    t = frac * np.linalg.norm(d * z)
    got = weighted_block_soft_threshold(_t(z[None]), _t(d[None]), t)[0].numpy()
    assert_allclose(got, _secular_prox(z, d, t), rtol=1e-9, atol=1e-12)


def test_weighted_block_soft_threshold_two_coordinate_grid():
    """Grid over 2-D rows ``z = (1, 10^m)``, ``d = 1e3 (1, 10^-k)``, ``k <= 6``.

    Covers every ratio of the metric up to 1e6 and every split of ``D z``
    between the coordinates, from far below to just below the threshold.
    """
    k, m, frac = np.meshgrid(
        np.linspace(0, 6, 25),
        np.linspace(-3, 6, 37),
        np.concatenate([np.linspace(0.01, 0.99, 15), 1 - 10.0 ** -np.arange(2, 11, 2)]),
        indexing="ij",
    )
    k, m, frac = k.ravel(), m.ravel(), frac.ravel()
    Z = np.stack([np.ones_like(m), 10.0**m], axis=1)
    D = 1e3 * np.stack([np.ones_like(k), 10.0**-k], axis=1)
    t = frac * np.linalg.norm(D * Z, axis=1)
    X = weighted_block_soft_threshold(_t(Z), _t(D), _t(t)).numpy()
    bound = _kkt_bound(X, Z, D, np.zeros(t.size), t)
    bad = np.flatnonzero(bound > 1e-8 * np.linalg.norm(Z, axis=1))
    assert bad.size == 0, (
        f"{bad.size} of {t.size} rows off, e.g. z={Z[bad[0]]!r}, "
        f"d={D[bad[0]]!r}, t={t[bad[0]]!r}: got {X[bad[0]]!r}, expected "
        f"{_secular_prox(Z[bad[0]], D[bad[0]], t[bad[0]])!r}"
    )


@pytest.mark.parametrize("name", GROUP_SPECS)
def test_prox_uniform_metric_is_plain_prox_with_scaled_step(name, rng):
    """``D`` constant ``c_g`` on a row: block soft threshold with step ``t / c_g``."""
    sizes = np.array([4, 1, 7, 7, 3, 6])
    V = _padded(rng, sizes, scales=10.0 ** np.linspace(-1, 1, sizes.size))
    c = 10.0 ** rng.uniform(-3, 3, sizes.size)
    D = np.repeat(c[:, None], V.shape[1], axis=1)
    step, alpha = 0.9, 0.4
    X = (
        _make(name, alpha)
        .prox(_t(V), step, metric=_t(D), sizes=torch.as_tensor(sizes))
        .numpy()
    )
    lam1, tg = _coefs(name, alpha, sizes, step)
    # numpy closed form, ALGORITHMS.md 0.3 with thresholds lam1 / c, tg / c
    S = np.sign(V) * np.maximum(np.abs(V) - (lam1 / c)[:, None], 0.0)
    nS = np.linalg.norm(S, axis=1)
    scale = np.maximum(0.0, 1.0 - (tg / c) / np.where(nS > 0, nS, 1.0))
    expected = S * scale[:, None]
    assert_allclose(X, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_prox_metric_ones_is_identity_prox(name, rng):
    """``metric = 1`` gives the plain prox (brute-force tested above)."""
    V = _padded(rng, [3, 5, 2, 5], scales=[0.1, 1.0, 3.0, 0.5])
    D = np.ones_like(V)
    pen = _make(name, 0.5)
    X = pen.prox(_t(V), 0.8, metric=_t(D)).numpy()
    lam1, tg = _coefs(name, 0.5, np.full(4, V.shape[1]), 0.8)
    assert np.all(_kkt_bound(X, V, D, lam1, tg) <= 1e-12 * (1 + np.abs(V).sum(1)))


# --------------------------------------------------------------------------
# 3. hypothesis properties
# --------------------------------------------------------------------------
_elems = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
_steps = st.floats(0.01, 3.0)
_alphas = st.floats(0.01, 3.0)


@st.composite
def _padded_matrices(draw, max_groups=4, max_size=6):
    n_groups = draw(st.integers(1, max_groups))
    width = draw(st.integers(1, max_size))
    V = draw(hnp.arrays(np.float64, (n_groups, width), elements=_elems))
    sizes = np.array(
        draw(st.lists(st.integers(1, width), min_size=n_groups, max_size=n_groups))
    )
    V[np.arange(width)[None, :] >= sizes[:, None]] = 0.0
    return V, sizes


def _metric_for(draw, shape):
    return draw(hnp.arrays(np.float64, shape, elements=st.floats(1e-2, 1e2)))


@FAST
@given(
    name=st.sampled_from(SPEC_NAMES),
    shape=hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
    step=_steps,
    alpha=_alphas,
    use_metric=st.booleans(),
    data=st.data(),
)
def test_prox_of_zero_is_zero(name, shape, step, alpha, use_metric, data):
    """``prox(0) == 0`` exactly, in any metric."""
    metric = _t(_metric_for(data.draw, shape)) if use_metric else None
    X = _make(name, alpha).prox(torch.zeros(shape, dtype=torch.float64), step, metric)
    assert torch.equal(X, torch.zeros(shape, dtype=torch.float64))


@FAST
@given(vs=_padded_matrices(), step=_steps, alpha=_alphas)
def test_l1_threshold(vs, step, alpha):
    """L1: entry zero iff ``|v_i| <= step * alpha``, else shrunk by it."""
    V, sizes = vs
    thr = step * alpha
    assume(np.all(np.abs(np.abs(V) - thr) > 1e-9 * thr))
    X = L1(alpha).prox(_t(V), step, sizes=torch.as_tensor(sizes)).numpy()
    np.testing.assert_array_equal(X == 0, np.abs(V) <= thr)
    assert_allclose(X, np.sign(V) * np.maximum(np.abs(V) - thr, 0), atol=1e-12)


@FAST
@given(
    name=st.sampled_from(GROUP_SPECS),
    vs=_padded_matrices(),
    step=_steps,
    alpha=_alphas,
    use_metric=st.booleans(),
    data=st.data(),
)
def test_group_threshold(name, vs, step, alpha, use_metric, data):
    """Row zero iff ``||S_lam1(D v)|| <= tg`` (GL: ``||v|| <= step alpha w_g``).

    ``lam1 = step alpha l1_ratio`` and ``tg = step alpha (1 - l1_ratio) w_g``
    with ``w_g`` from the true group size; ``D = 1`` without a metric.
    """
    V, sizes = vs
    D = _metric_for(data.draw, V.shape) if use_metric else np.ones_like(V)
    lam1, tg = _coefs(name, alpha, sizes, step)
    A = D * V
    lhs = np.linalg.norm(
        np.sign(A) * np.maximum(np.abs(A) - lam1[:, None], 0.0), axis=1
    )
    # skip draws on the boundary up to round-off (both 0 is an exact case)
    near = (np.abs(lhs - tg) <= 1e-9 * np.maximum(tg, lhs)) & (lhs > 0)
    assume(not near.any())
    metric = _t(D) if use_metric else None
    X = _make(name, alpha).prox(_t(V), step, metric, torch.as_tensor(sizes)).numpy()
    np.testing.assert_array_equal(np.all(X == 0, axis=1), lhs <= tg)


@st.composite
def _pairs(draw):
    V, sizes = draw(_padded_matrices())
    U = draw(hnp.arrays(np.float64, V.shape, elements=_elems))
    U[np.arange(V.shape[1])[None, :] >= sizes[:, None]] = 0.0
    return U, V, sizes


@FAST
@given(
    name=st.sampled_from(SPEC_NAMES),
    uvs=_pairs(),
    step=_steps,
    alpha=_alphas,
    use_metric=st.booleans(),
    data=st.data(),
)
def test_prox_nonexpansive(name, uvs, step, alpha, use_metric, data):
    """``||prox(u) - prox(v)||_D <= ||u - v||_D`` (``D = 1``: the identity)."""
    U, V, sizes = uvs
    D = _metric_for(data.draw, V.shape) if use_metric else np.ones_like(V)
    metric = _t(D) if use_metric else None
    pen = _make(name, alpha)
    sz = torch.as_tensor(sizes)
    PU = pen.prox(_t(U), step, metric, sz).numpy()
    PV = pen.prox(_t(V), step, metric, sz).numpy()
    lhs = math.sqrt(np.sum(D * (PU - PV) ** 2))
    rhs = math.sqrt(np.sum(D * (U - V) ** 2))
    assert lhs <= rhs * (1 + 1e-9) + 1e-12


@FAST
@given(
    weights=st.sampled_from(["sqrt_size", "ones"]),
    direction=hnp.arrays(np.float64, st.integers(1, 8), elements=_elems),
    factor=st.floats(1.5, 1e3),
    step=_steps,
    alpha=_alphas,
)
def test_group_lasso_keeps_direction(weights, direction, factor, step, alpha):
    """GL, ``||v||`` well above the threshold: ``prox(v) = (1 - thr/||v||) v``."""
    nrm = np.linalg.norm(direction)
    assume(nrm > 1e-3)
    w = math.sqrt(direction.size) if weights == "sqrt_size" else 1.0
    thr = step * alpha * w
    v = direction / nrm * thr * factor
    x = GroupLasso(alpha, weights=weights).prox(_t(v[None]), step)[0].numpy()
    cos = x @ v / (np.linalg.norm(x) * np.linalg.norm(v))
    assert cos == pytest.approx(1.0, abs=1e-12)
    assert_allclose(x, (1 - 1 / factor) * v, rtol=1e-10, atol=1e-12 * thr)


# --------------------------------------------------------------------------
# 4. alpha_max
# --------------------------------------------------------------------------
def _alpha_max_oracle(name, grad, sizes):
    """Smallest alpha with 0 optimal, per the definition, maximised over groups."""
    _, r, _, weights = SPECS[name]
    best = 0.0
    for g, s in enumerate(sizes):
        v = np.abs(grad[g, :s])
        w = math.sqrt(s) if weights == "sqrt_size" else 1.0
        if r == 1.0:
            a = v.max()
        elif r == 0.0:
            a = np.linalg.norm(v) / w
        else:

            def f(a, v=v, w=w):
                return np.linalg.norm(np.maximum(v - a * r, 0)) - a * (1 - r) * w

            a = optimize.brentq(f, 0.0, v.max() / r, xtol=1e-15, rtol=1e-14)
        best = max(best, a)
    return best


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_alpha_max(name, rng):
    """``alpha_max``: matches the definition; 0 optimal above, not below."""
    sizes = np.array([3, 1, 6, 4, 6])
    grad = _padded(rng, sizes, scales=[1.0, 2.5, 0.7, 1.5, 0.2])
    sz = torch.as_tensor(sizes)
    am = float(_make(name, 1.0).alpha_max(_t(grad), sz))
    assert am == pytest.approx(_alpha_max_oracle(name, grad, sizes), rel=1e-10)
    zeros = torch.zeros(grad.shape, dtype=torch.float64)
    step = 0.3
    above, below = _make(name, am * (1 + 1e-6)), _make(name, am * (1 - 1e-6))
    assert torch.all(above.subdiff_distance(zeros, _t(grad), sz) == 0)
    assert torch.any(below.subdiff_distance(zeros, _t(grad), sz) > 0)
    # prox of a gradient step from 0 stays at 0 exactly when alpha >= alpha_max
    assert torch.all(above.prox(_t(-step * grad), step, sizes=sz) == 0)
    assert torch.any(below.prox(_t(-step * grad), step, sizes=sz) != 0)
    # and, independently, by the brute-force prox (a wider margin for SLSQP)
    for pen_alpha, expect_zero in ((am * 1.001, True), (am * 0.999, False)):
        lam1, tg = _coefs(name, pen_alpha, sizes, step)
        zero = [
            np.linalg.norm(_dual_prox(-step * grad[g, :s], np.ones(s), lam1[g], tg[g]))
            < 1e-8
            for g, s in enumerate(sizes)
        ]
        assert all(zero) == expect_zero


def test_alpha_max_ignores_alpha(rng):
    """``alpha_max`` does not depend on the penalty's own ``alpha``."""
    grad = _t(rng.standard_normal((4, 3)))
    for name in SPEC_NAMES:
        a1 = _make(name, 0.1).alpha_max(grad)
        a2 = _make(name, 7.0).alpha_max(grad)
        assert float(a1) == pytest.approx(float(a2), rel=1e-12)


# --------------------------------------------------------------------------
# 5. subdiff_distance
# --------------------------------------------------------------------------
def _random_point_with_zeros(rng, sizes):
    X = _padded(rng, sizes)
    X[rng.random(X.shape) < 0.3] = 0.0  # zero coordinates
    X[1] = 0.0  # a zero group
    return X


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_subdiff_distance_zero_at_constructed_optimum(name, rng):
    """``grad = -s`` for a hand-built subgradient ``s``: distance 0."""
    sizes = np.array([4, 3, 5, 1, 5])
    X = _random_point_with_zeros(rng, sizes)
    alpha = 0.8
    lam1, tg = _coefs(name, alpha, sizes)
    grad = np.zeros_like(X)
    for g, s in enumerate(sizes):
        x = X[g, :s]
        l1_part = np.where(x != 0, np.sign(x), rng.uniform(-1, 1, s))
        nx = np.linalg.norm(x)
        if nx > 0:
            l2_part = x / nx
        else:
            u = rng.standard_normal(s)
            l2_part = u / np.linalg.norm(u) * rng.uniform(0, 1)
        grad[g, :s] = -(lam1[g] * l1_part + tg[g] * l2_part)
    dist = _make(name, alpha).subdiff_distance(_t(X), _t(grad), torch.as_tensor(sizes))
    assert dist.shape == (sizes.size,)
    assert_allclose(dist.numpy(), 0.0, atol=1e-12)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_subdiff_distance_matches_brute_force(name, rng):
    """At arbitrary points: equals ``dist(-grad, dR)`` found by SLSQP."""
    sizes = np.array([4, 3, 5, 1, 5, 2])
    X = _random_point_with_zeros(rng, sizes)
    grad = _padded(rng, sizes, scales=[0.3, 1.0, 2.0, 0.5, 0.1, 1.5])
    alpha = 0.8
    lam1, tg = _coefs(name, alpha, sizes)
    got = (
        _make(name, alpha)
        .subdiff_distance(_t(X), _t(grad), torch.as_tensor(sizes))
        .numpy()
    )
    expected = [
        _subdiff_dist_bf(X[g, :s], grad[g, :s], lam1[g], tg[g])
        for g, s in enumerate(sizes)
    ]
    assert_allclose(got, expected, atol=1e-7)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_subdiff_distance_at_prox_and_perturbed(name, rng):
    """At ``x* = prox(v, 1)``, ``grad = x* - v``: 0; off it: ``>= ||x - x*||``.

    The objective ``1/2 ||x - v||^2 + R(x)`` is 1-strongly convex, so the
    residual at any ``x`` is at least the distance to the minimiser.
    """
    sizes = np.array([5, 2, 6, 3, 6])
    V = _padded(rng, sizes, scales=[0.2, 3.0, 1.0, 0.05, 2.0])
    sz = torch.as_tensor(sizes)
    pen = _make(name, 0.7)
    Xs = pen.prox(_t(V), 1.0, sizes=sz).numpy()
    dist = pen.subdiff_distance(_t(Xs), _t(Xs - V), sz).numpy()
    assert_allclose(dist, 0.0, atol=1e-12)
    delta = _padded(rng, sizes) * 0.1
    Xp = Xs + delta
    dist = pen.subdiff_distance(_t(Xp), _t(Xp - V), sz).numpy()
    assert np.all(dist >= np.linalg.norm(delta, axis=1) * (1 - 1e-9))


@pytest.mark.parametrize(
    ("x", "grad", "expected"),
    [
        (0.5, -0.3, 0.7),  # x > 0: dR = {1}, |-(-0.3) - 1| = 0.7
        (0.5, -1.0, 0.0),
        (-2.0, 1.0, 0.0),
        (-2.0, -1.0, 2.0),
        (0.0, 1.5, 0.5),  # x = 0: dR = [-1, 1], dist(-1.5, [-1, 1]) = 0.5
        (0.0, -0.5, 0.0),
    ],
)
def test_subdiff_distance_l1_by_hand(x, grad, expected):
    """1-D lasso with ``alpha = 1``, by hand."""
    dist = L1(1.0).subdiff_distance(_t([[x]]), _t([[grad]]))
    assert float(dist[0]) == pytest.approx(expected, abs=1e-15)


def test_subdiff_distance_groups_by_hand():
    """2-D group lasso and sparse group lasso (weights 1), by hand."""
    gl = GroupLasso(1.0, weights="ones")
    # x = (3, 4): dR = {(0.6, 0.8)}
    assert float(gl.subdiff_distance(_t([[3, 4]]), _t([[0, 0]]))[0]) == (
        pytest.approx(1.0)
    )
    assert float(gl.subdiff_distance(_t([[3, 4]]), _t([[-0.6, -0.8]]))[0]) == (
        pytest.approx(0.0, abs=1e-15)
    )
    # x = 0: dR = unit ball, dist((3, 4), ball) = 4
    assert float(gl.subdiff_distance(_t([[0, 0]]), _t([[3, 4]]))[0]) == (
        pytest.approx(4.0)
    )
    sgl = SparseGroupLasso(1.0, l1_ratio=0.5, weights="ones")
    # x = 0: dR = 0.5 box + 0.5 ball; the box takes 0.5 off each coordinate
    expected = math.hypot(2.5, 3.5) - 0.5
    assert float(sgl.subdiff_distance(_t([[0, 0]]), _t([[3, 4]]))[0]) == (
        pytest.approx(expected)
    )
    # x = (1, 0): dR = (0.5, [-0.5, 0.5]) + 0.5 (1, 0) = (1, [-0.5, 0.5])
    assert float(sgl.subdiff_distance(_t([[1, 0]]), _t([[0, 2]]))[0]) == (
        pytest.approx(math.hypot(1.0, 1.5))
    )


# --------------------------------------------------------------------------
# 6. per-group alpha, and the value
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_per_group_alpha_equals_scalar_alpha_rowwise(name, rng):
    """Tensor ``alpha[g]`` acts on row g as a scalar penalty with ``alpha[g]``."""
    sizes = np.array([3, 5, 1, 5, 4])
    V = _padded(rng, sizes, scales=[0.5, 2.0, 1.0, 0.3, 1.2])
    D = 10.0 ** rng.uniform(-1, 1, V.shape)
    grad = _padded(rng, sizes)
    X = _random_point_with_zeros(rng, sizes)
    alpha = np.array([0.1, 0.9, 0.4, 0.05, 1.7])
    pen = _make(name, alpha)
    sz = torch.as_tensor(sizes)
    P = pen.prox(_t(V), 0.6, sizes=sz)
    PD = pen.prox(_t(V), 0.6, metric=_t(D), sizes=sz)
    S = pen.subdiff_distance(_t(X), _t(grad), sz)
    total = 0.0
    for g in range(sizes.size):
        row = slice(g, g + 1)
        scalar = _make(name, float(alpha[g]))
        assert_allclose(
            P[row], scalar.prox(_t(V[row]), 0.6, sizes=sz[row]), rtol=1e-13, atol=1e-15
        )
        assert_allclose(
            PD[row],
            scalar.prox(_t(V[row]), 0.6, metric=_t(D[row]), sizes=sz[row]),
            rtol=1e-12,
            atol=1e-15,
        )
        assert_allclose(
            S[row],
            scalar.subdiff_distance(_t(X[row]), _t(grad[row]), sz[row]),
            rtol=1e-13,
            atol=1e-15,
        )
        total += float(scalar.value(_t(V[row]), sz[row]))
    assert float(pen.value(_t(V), sz)) == pytest.approx(total, rel=1e-13)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_value_matches_definition(name, rng):
    """``value`` equals ``sum_g lam1_g ||v_g||_1 + tg_g ||v_g||_2`` in numpy."""
    sizes = np.array([2, 6, 6, 1])
    V = _padded(rng, sizes)
    alpha = np.array([0.3, 1.0, 2.0, 0.7])
    lam1, tg = _coefs(name, alpha, sizes)
    expected = np.sum(lam1 * np.abs(V).sum(1) + tg * np.linalg.norm(V, axis=1))
    got = _make(name, alpha).value(_t(V), torch.as_tensor(sizes))
    assert got.ndim == 0
    assert float(got) == pytest.approx(expected, rel=1e-13)


# --------------------------------------------------------------------------
# 7. dtype and device
# --------------------------------------------------------------------------
def _check_dtype_device(name, dtype, device, use_metric, rng):
    """Prox on ``device`` in ``dtype`` (per-group alpha) against brute force."""
    sizes = np.array([3, 6, 1, 4])
    V = _padded(rng, sizes, scales=[0.2, 1.0, 2.0, 0.6])
    D = 10.0 ** rng.uniform(-1, 1, V.shape) if use_metric else np.ones_like(V)
    step, alpha = 0.5, np.array([0.8, 0.3, 1.1, 0.5])
    kw = {"dtype": dtype, "device": device}
    pen = _make(name, alpha)
    X = pen.prox(
        torch.as_tensor(V, **kw),
        step,
        metric=torch.as_tensor(D, **kw) if use_metric else None,
        sizes=torch.as_tensor(sizes, device=device),
    )
    assert X.dtype == dtype
    assert X.device.type == torch.device(device).type
    lam1, tg = _coefs(name, alpha, sizes, step)
    tol = 1e-5 if dtype == torch.float32 else 1e-8
    for g, s in enumerate(sizes):
        x_bf = _dual_prox(V[g, :s], D[g, :s], lam1[g], tg[g])
        x = X[g].cpu().double().numpy()
        assert np.all(x[s:] == 0)
        assert np.linalg.norm(x[:s] - x_bf) <= tol * (1 + np.linalg.norm(V[g]))


@pytest.mark.parametrize("use_metric", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_prox_dtype_cpu(name, dtype, use_metric, rng):
    """Prox keeps the input dtype and is accurate to that precision."""
    _check_dtype_device(name, dtype, "cpu", use_metric, rng)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("use_metric", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_prox_dtype_cuda(name, dtype, use_metric, rng):
    """Same on CUDA."""
    _check_dtype_device(name, dtype, "cuda", use_metric, rng)


# --------------------------------------------------------------------------
# 8. construction errors
# --------------------------------------------------------------------------
def test_make_penalty_builds_each_name():
    """Each registered name builds its class with the flat parameters."""
    assert set(PENALTIES) == {
        "l1",
        "group_lasso",
        "sparse_group_lasso",
        "tl1",
        "l0",
        "l_half",
        "l1_l2",
        "group_l0",
        "group_tl1",
    }
    assert type(make_penalty("l1", 0.3)) is L1
    for name, cls in (("l0", L0), ("l_half", LHalf), ("group_l0", GroupL0)):
        assert type(make_penalty(name, 0.3)) is cls
    assert make_penalty("tl1", 0.3, tl1_a=2.5).a == 2.5
    assert make_penalty("group_tl1", 0.3, tl1_a=0.5).a == 0.5
    assert make_penalty("l1_l2", 0.3, l1_l2_weight=0.4).l2_weight == 0.4
    assert type(make_penalty("group_lasso", 0.3)) is GroupLasso
    sgl = make_penalty("sparse_group_lasso", 0.3, l1_ratio=0.2)
    assert type(sgl) is SparseGroupLasso
    assert sgl.alpha == 0.3 and sgl.l1_ratio == 0.2


def test_make_penalty_rejects_unknown_name():
    with pytest.raises(ValueError, match=re.escape("'lasso_typo'")):
        make_penalty("lasso_typo", 1.0)


def test_group_lasso_rejects_bad_weights():
    with pytest.raises(ValueError, match=re.escape("'size'")):
        GroupLasso(1.0, weights="size")
    with pytest.raises(ValueError, match="weights"):
        SparseGroupLasso(1.0, weights="l2")


@pytest.mark.parametrize("l1_ratio", [-0.1, 1.0 + 1e-9, 2.0, float("nan")])
def test_sparse_group_lasso_rejects_l1_ratio(l1_ratio):
    with pytest.raises(ValueError, match="l1_ratio"):
        SparseGroupLasso(1.0, l1_ratio=l1_ratio)


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0])
def test_sparse_group_lasso_accepts_l1_ratio_bounds(l1_ratio):
    assert SparseGroupLasso(1.0, l1_ratio=l1_ratio).l1_ratio == l1_ratio
