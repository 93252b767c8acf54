"""Zero thresholds, the threshold reading, alpha_max, paths and the stop rule.

Oracles: the proximal maps (themselves checked against brute force in
``test_penalties``), finite differences of the loss, scikit-learn's ``Lasso``
and ``MultiTaskLasso``, and fits done by hand.
"""

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, MultiTaskLasso
from sklearn.model_selection import KFold

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    ShrinkNetRegressor,
)
from skgroupsparse.groups import build_group_map, build_switch_group_map
from skgroupsparse.network import SparseMLP
from skgroupsparse.path import (
    SearchTarget,
    TargetReached,
    alpha_grid,
    alpha_max,
    next_alpha,
    regularization_growing,
    regularization_path,
    regularization_path_cv,
    target_search,
)
from skgroupsparse.penalties import (
    L1,
    ElasticNet,
    GroupLasso,
    SparseGroupLasso,
)
from skgroupsparse.training import ProximalTrainer, TrainConfig, read_thresholds


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
# zero thresholds of every penalty
# --------------------------------------------------------------------------
PENALTIES = {
    "l1": lambda a: L1(a),
    "group_lasso": lambda a: GroupLasso(a),
    "group_lasso_ones": lambda a: GroupLasso(a, weights="ones"),
    "sparse_group_lasso": lambda a: SparseGroupLasso(a, 0.3),
    "elastic_net": lambda a: ElasticNet(a, 0.7),
}


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_zero_thresholds_are_where_the_prox_starts_to_zero(name):
    """Oracle: the prox at unit step of ``-g`` (whose zero set is that of a
    stationary point with loss gradient ``g``) zeroes the coordinate just above
    its threshold and not just below."""
    rng = np.random.default_rng(1)
    sizes = torch.tensor([1, 3, 5, 2, 4])
    G = torch.as_tensor(rng.normal(size=(5, 5)) * rng.uniform(0.1, 3, (5, 1)))
    G[torch.arange(5).unsqueeze(0) >= sizes.unsqueeze(1)] = 0.0  # padding
    T = PENALTIES[name](1.0).zero_thresholds(G, sizes)
    checked = 0
    for g in range(5):
        for j in range(int(sizes[g])):
            t = float(T[g, j])
            above = PENALTIES[name](t * (1 + 1e-7)).prox(
                -G[g : g + 1], 1.0, sizes=sizes[g : g + 1]
            )
            below = PENALTIES[name](t * (1 - 1e-7)).prox(
                -G[g : g + 1], 1.0, sizes=sizes[g : g + 1]
            )
            assert above[0, j] == 0
            assert below[0, j] != 0
            checked += 1
    assert checked == int(sizes.sum())
    assert float(PENALTIES[name](1.0).alpha_max(G, sizes)) == pytest.approx(
        float(T.max())
    )


# --------------------------------------------------------------------------
# the threshold reading: finite differences of the loss
# --------------------------------------------------------------------------
def _fd_gradient(net, X, Y, flat_index, h=1e-6):
    theta = net.theta.detach()

    def loss():
        out = net(X)
        return 0.5 * ((out - Y) ** 2).sum(dim=1).mean()

    old = theta[flat_index].item()
    theta[flat_index] = old + h
    up = loss().item()
    theta[flat_index] = old - h
    down = loss().item()
    theta[flat_index] = old
    return (up - down) / (2 * h)


def _net(switches):
    net = SparseMLP((4, 5, 3, 2), "tanh", dtype=torch.float64, switches=switches)
    net.reset_parameters(torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(30, 4)))
    Y = torch.as_tensor(rng.normal(size=(30, 2)))
    return net, X, Y


@torch.no_grad()
def test_reading_of_outgoing_groups_matches_finite_differences():
    net, X, Y = _net(False)
    group_map = build_group_map(net.layout, "outgoing")
    reading = read_thresholds(net, group_map, GroupLasso(1.0), X, Y, "squared")
    layout = net.layout
    for l, (offset, (n_out, n_in)) in enumerate(
        zip(layout.weight_offsets, layout.weight_shapes)
    ):
        for j in range(n_in):
            column = [offset + i * n_in + j for i in range(n_out)]
            g = np.array([_fd_gradient(net, X, Y, c) for c in column])
            expected = np.linalg.norm(g) / np.sqrt(n_out)
            assert reading.units[l][j].item() == pytest.approx(expected, rel=1e-5)
            assert torch.all(reading.weights[l][:, j] == reading.units[l][j])


@torch.no_grad()
def test_reading_of_l1_and_incoming_groups():
    net, X, Y = _net(False)
    layout = net.layout
    l1 = read_thresholds(
        net, build_group_map(layout, "outgoing"), L1(1.0), X, Y, "squared"
    )
    offset, (_, n_in) = layout.weight_offsets[1], layout.weight_shapes[1]
    for i, j in [(0, 0), (2, 4), (1, 3)]:
        fd = abs(_fd_gradient(net, X, Y, offset + i * n_in + j))
        assert l1.weights[1][i, j].item() == pytest.approx(fd, rel=1e-5)
    incoming = read_thresholds(
        net, build_group_map(layout, "incoming"), GroupLasso(1.0), X, Y, "squared"
    )
    # rows of W_0 are the groups of hidden layer 1 (with their bias); the
    # output layer has no groups
    assert torch.all(torch.isinf(incoming.weights[2]))
    assert torch.all(torch.isinf(incoming.units[0]))
    i = 3
    coords = [offset_i for offset_i in range(i * 4, i * 4 + 4)]
    coords.append(layout.bias_offsets[0] + i)
    g = np.array([_fd_gradient(net, X, Y, c) for c in coords])
    assert incoming.units[1][i].item() == pytest.approx(
        np.linalg.norm(g) / np.sqrt(5), rel=1e-5
    )


@torch.no_grad()
def test_reading_of_switches_applies_to_their_columns():
    net, X, Y = _net(True)
    layout = net.layout
    group_map = build_switch_group_map(layout)
    reading = read_thresholds(net, group_map, ElasticNet(1.0, 0.5), X, Y, "squared")
    for l, offset in enumerate(layout.switch_offsets):
        for j in range(layout.switch_sizes[l]):
            fd = abs(_fd_gradient(net, X, Y, offset + j))
            assert reading.units[l][j].item() == pytest.approx(fd, rel=1e-5)
            assert torch.all(reading.weights[l][:, j] == reading.units[l][j])


@pytest.mark.parametrize(
    "estimator",
    [
        GroupLassoMLPRegressor((5, 3)),
        GroupLassoMLPRegressor((5, 3), groups="incoming"),
        ShrinkNetRegressor((5, 3)),
    ],
    ids=["outgoing", "incoming", "switches"],
)
def test_alpha_of_each_weight_matrix_agrees_with_the_group_map(estimator):
    """The estimators' ``_alpha_of_weight_layer`` (which per-layer alpha a
    search moves for each matrix) against the groups that penalise it."""
    net = estimator._build_network(
        (4, 5, 3, 2), torch.Generator().manual_seed(0), torch.float64, "cpu"
    )
    group_map = estimator._build_group_map(net.layout)
    layout = net.layout
    owner = torch.full((layout.n_params + 1,), -1, dtype=torch.long)
    rows = group_map.switch if group_map.switch is not None else slice(None)
    index, unit_layer = group_map.index[rows], group_map.unit_layer[rows]
    valid = index != layout.sentinel
    owner[index[valid]] = unit_layer.unsqueeze(1).expand_as(index)[valid]
    if layout.switches:
        per_matrix = layout.switch_views(owner)
    else:
        per_matrix = layout.views(owner)[0]
    found = [set(m.flatten().tolist()) for m in per_matrix]
    expected = estimator._alpha_of_weight_layer(2)
    assert found == [{-1} if a is None else {a} for a in expected]


# --------------------------------------------------------------------------
# alpha_max and grids
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


def test_alpha_grid_and_regularization_growing():
    grid = alpha_grid(2.0, 5, 1e-2)
    np.testing.assert_allclose(grid, [2.0, 2 * 10**-0.5, 0.2, 2 * 10**-1.5, 0.02])
    schedule = regularization_growing(-1, 1)
    np.testing.assert_allclose(schedule, [(0.1, 0.2), (1.0, 0.02), (10.0, 0.002)])
    assert all(alpha * step == pytest.approx(0.02) for alpha, step in schedule)
    with pytest.raises(ValueError, match="alpha_max must be positive"):
        alpha_grid(0.0)
    with pytest.raises(ValueError, match="p_start"):
        regularization_growing(1, 0)


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
# the search's pieces
# --------------------------------------------------------------------------
def test_next_alpha_rules():
    t = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    # gradient: keep the 2 largest -> alpha at the 3rd largest
    assert next_alpha("gradient", 4.5, 0.0, 4.5, t, 2) == 3.0
    # a proposal outside the bracket falls back to its geometric middle
    assert next_alpha("gradient", 2.5, 2.5, 2.9, t, 2) == pytest.approx(
        np.sqrt(2.5 * 2.9)
    )
    # median of the values inside the bracket (the seed's rule)
    assert next_alpha("median", 4.5, 1.5, 4.5, t, 2) == 3.0
    # too dense, no upper end: grow by 10 at least
    assert next_alpha("gradient", 0.1, 0.1, np.inf, t, 2) == 3.0
    assert next_alpha("bracket", 0.1, 0.1, np.inf, t, 2) == pytest.approx(1.0)
    # too sparse, no lower end: divide by 10
    assert next_alpha("bracket", 2.0, 0.0, 2.0, t, 2) == pytest.approx(0.2)
    # unpenalised entries (infinite thresholds) are nonzero anyway: keeping 3
    # nonzero with one of them unpenalised keeps the 2 largest finite ones
    with_free = np.append(t, np.inf)
    assert next_alpha("gradient", 4.5, 0.0, 4.5, with_free, 3) == 3.0


def _trainer(rule=None):
    net = SparseMLP((4, 6, 1), dtype=torch.float64)
    net.reset_parameters(torch.Generator().manual_seed(0))
    group_map = build_group_map(net.layout)
    trainer = ProximalTrainer(
        net,
        group_map,
        L1(torch.full((group_map.n_groups,), 0.05, dtype=torch.float64)),
        TrainConfig(loss="squared", batch_size=10, learning_rate_init=0.05),
    )
    trainer.stop_rule = rule
    return trainer


def test_stop_rule_ends_training_after_the_batch_where_it_holds():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(100, 4)))
    y = torch.as_tensor(rng.normal(size=(100, 1)))
    calls = []

    def rule(trainer):
        calls.append(trainer.t)
        return len(calls) == 13  # after the 13th batch: epoch 2, batch 3

    trainer = _trainer(rule)
    stopped = trainer.fit(X, y, torch.Generator().manual_seed(0), max_iter=50)
    assert stopped
    assert trainer.n_iter == 2 and trainer.t == 130
    assert len(trainer.loss_curve) == 2 and len(trainer.history) == 2
    # a trained model that already meets the rule is not trained further
    trainer.stop_rule = lambda tr: True
    assert trainer.fit(X, y, torch.Generator().manual_seed(0), max_iter=5)
    assert trainer.n_iter == 2


def test_target_reached_freezes_layers_that_meet_their_target():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(60, 4)))
    y = torch.as_tensor(rng.normal(size=(60, 1)))
    trainer = _trainer()
    trainer.fit(X, y, torch.Generator().manual_seed(0), max_iter=1)
    nonzero = trainer.nonzero_weights()
    target = SearchTarget(
        "weights",
        np.array([nonzero[0], 0.0]),  # layer 0 meets it now; layer 1 never will
        np.array([0.5, 0.5]),
        [0, 1],
        [0, 1],
        2,
        [[0], [1]],
    )
    trainer.stop_rule = TargetReached(target, freeze=True)
    W0 = trainer.net.weights[0].detach().clone()
    W1 = trainer.net.weights[1].detach().clone()
    assert not trainer.fit(X, y, torch.Generator().manual_seed(1), max_iter=3)
    assert trainer.n_iter == 4
    np.testing.assert_array_equal(trainer.net.weights[0].detach(), W0)
    assert not torch.equal(trainer.net.weights[1].detach(), W1)
    # without freezing the same run changes both layers
    free = _trainer()
    free.fit(X, y, torch.Generator().manual_seed(0), max_iter=1)
    free.stop_rule = TargetReached(target, freeze=False)
    free.fit(X, y, torch.Generator().manual_seed(1), max_iter=3)
    assert not torch.equal(free.net.weights[0].detach(), W0)


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

    def fit(self, X, y):
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
