"""Zero thresholds, the threshold reading, grids, and the search's rules and stop rule.

Oracles: the proximal maps (themselves checked against brute force in
``test_penalties``), finite differences of the loss, and fits done by hand.
What fits estimators along alpha (``alpha_max``, paths, the target search) is
tested in ``test_regularization``.
"""

import numpy as np
import pytest
import torch

from skgroupsparse import (
    GroupLassoMLPRegressor,
    ShrinkNetRegressor,
)
from skgroupsparse.groups import build_group_map, build_switch_group_map
from skgroupsparse.network import SparseMLP
from skgroupsparse.path import (
    SearchTarget,
    TargetReached,
    alpha_grid,
    next_alpha,
    regularization_growing,
)
from skgroupsparse.penalties import (
    L1,
    ElasticNet,
    GroupLasso,
    SparseGroupLasso,
)
from skgroupsparse.training import ProximalTrainer, TrainConfig, read_thresholds

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
# grids
# --------------------------------------------------------------------------
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


def test_stage_size_counts_what_it_is_asked_to():
    from skgroupsparse.path import stage_size

    neurons = np.array([[20.0, 10.0], [8.0, 4.0]])
    params, features = np.array([500.0, 90.0]), np.array([8.0, 3.0])
    np.testing.assert_array_equal(
        stage_size("params", params, features, neurons), params
    )
    np.testing.assert_array_equal(
        stage_size("neurons", params, features, neurons), [30, 12]
    )
    np.testing.assert_array_equal(
        stage_size("features", params, features, neurons), features
    )
    # no hidden layer: a size in neurons is the live features
    np.testing.assert_array_equal(
        stage_size("neurons", params, features, np.zeros((2, 0))), features
    )
    with pytest.raises(ValueError, match="size must be one of"):
        stage_size("weights", params, features, neurons)
