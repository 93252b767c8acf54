"""The fused CPU kernels equal the tensor reference and the exact prox."""

import copy

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from skgroupsparse import _kernels
from skgroupsparse.groups import build_group_map, build_switch_group_map
from skgroupsparse.network import SparseMLP
from skgroupsparse.penalties import ElasticNet, make_penalty
from skgroupsparse.training import ProximalTrainer, SignVarianceDetector, TrainConfig

_NO_BLOCKS = np.zeros((0, 5), dtype=np.int64)  # every group read on its own


def _trainer(net, penalty, optimizer, prox, dtype, kernels):
    group_map = build_group_map(net.layout)
    alpha = torch.full((group_map.n_groups,), 0.05, dtype=dtype)
    trainer = ProximalTrainer(
        copy.deepcopy(net),
        group_map,
        make_penalty(penalty, alpha, 0.4),
        TrainConfig(
            loss="squared", optimizer=optimizer, prox=prox, learning_rate_init=0.05
        ),
    )
    trainer.optimizer.use_kernels = kernels
    return trainer


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamax", "rmsprop"])
@pytest.mark.parametrize("penalty", ["l1", "group_lasso", "sparse_group_lasso"])
@pytest.mark.parametrize("prox", ["preconditioned", "decoupled"])
def test_fused_steps_equal_tensor_steps(dtype, optimizer, penalty, prox):
    net = SparseMLP((6, 7, 5, 3), dtype=dtype)
    net.reset_parameters(torch.Generator().manual_seed(0))
    fused = _trainer(net, penalty, optimizer, prox, dtype, kernels=True)
    reference = _trainer(net, penalty, optimizer, prox, dtype, kernels=False)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(20, 6, dtype=dtype, generator=g)
    Y = torch.randn(20, 3, dtype=dtype, generator=g)
    for _ in range(30):
        fused.train_step(X, Y)
        reference.train_step(X, Y)
    a, b = fused.net.theta.detach(), reference.net.theta.detach()
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    assert (a - b).abs().max() < tol
    assert torch.equal(a == 0, b == 0), "the two paths zero different weights"
    assert (a == 0).sum() > 0, "the test should produce exact zeros"


def _secular_prox(z, d, t):
    """Independent oracle: brentq on ``sum (d z / (d r + t))^2 = 1``."""
    a = d * z
    if np.linalg.norm(a) <= t:
        return np.zeros_like(z)
    phi = lambda r: np.sum((a / (d * r + t)) ** 2) - 1.0  # noqa: E731
    hi = (np.linalg.norm(a) - t) / d.min()
    r = brentq(phi, 0.0, 2.0 * hi + 1e-300, xtol=1e-300, rtol=1e-15)
    return a * r / (d * r + t)


@pytest.mark.parametrize("start", ["cold", "far_left", "far_right"])
def test_weighted_group_prox_kernel_on_adversarial_rows(start):
    """Metric ratios up to 1e6, the large coordinate on the small metric.

    From a cold start and from warm starts far on either side of the root.
    """
    rows = []
    for k in np.linspace(0, 6, 13):
        for m in np.linspace(-3, 6, 19):
            for frac in (0.01, 0.5, 0.99, 1 - 1e-6, 1 - 1e-10):
                z = np.array([1.0, 10.0**m])
                d = 1e3 * np.array([1.0, 10.0**-k])
                rows.append((z, d, frac * np.linalg.norm(d * z)))
    theta = np.concatenate([z for z, _, _ in rows] + [np.zeros(1)])
    metric = np.concatenate([d for _, d, _ in rows] + [np.ones(1)])
    index = np.arange(2 * len(rows)).reshape(-1, 2)
    t2 = np.array([t for _, _, t in rows])
    r_start = {"cold": 0.0, "far_left": 1e-30, "far_right": 1e30}[start] * np.ones(
        len(rows)
    )
    _kernels.prox_l1_group(
        theta,
        index,
        np.full(len(rows), 2),
        _kernels.contiguous_starts(index, np.full(len(rows), 2)),
        _NO_BLOCKS,
        np.zeros(len(rows)),
        t2,
        np.zeros(len(rows)),
        1.0,
        metric,  # code 2 reads D straight from the state array
        2,
        1.0,
        0.0,
        np.zeros(2),
        np.zeros(2),
        np.zeros(0),
        np.zeros(0),
        r_start,
        1e-15,
    )
    for g, (z, d, t) in enumerate(rows):
        expected = _secular_prox(z, d, t)
        np.testing.assert_allclose(
            theta[2 * g : 2 * g + 2], expected, rtol=1e-9, atol=1e-12 * np.abs(z).max()
        )


@pytest.mark.parametrize("direct", [True, False], ids=["contiguous", "indexed"])
def test_kernel_prox_respects_group_sizes(direct):
    # two groups of sizes 3 and 1, padded with the sentinel (last position)
    theta = np.array([3.0, 4.0, 0.0, 0.5, 0.0])
    index = np.array([[0, 1, 2], [3, 4, 4]])
    first = _kernels.contiguous_starts(index, np.array([3, 1]))
    assert first.tolist() == [0, 3]
    if not direct:
        first = np.full(2, -1)
    _kernels.prox_l1_group(
        theta,
        index,
        np.array([3, 1]),
        first,
        _NO_BLOCKS,
        np.zeros(2),
        np.array([1.0, 1.0]),
        np.zeros(2),
        1.0,
        theta,
        0,
        1.0,
        0.0,
        np.zeros(3),
        np.zeros(3),
        np.zeros(0),
        np.zeros(0),
        np.zeros(2),
        1e-15,
    )
    # block soft threshold: ||(3, 4)|| = 5 -> scale 4/5; |0.5| <= 1 -> zero
    np.testing.assert_allclose(theta, [2.4, 3.2, 0.0, 0.0, 0.0])


def _switch_trainer(net, optimizer, death, p, kernels):
    dtype = net.theta.dtype
    group_map = build_switch_group_map(net.layout)
    one = torch.ones((), dtype=dtype)
    switch_l1 = 0.05 if death == "prox" else 0.0
    l1 = torch.where(group_map.switch, switch_l1 * one, (0.01 if p == 1 else 0) * one)
    l2 = torch.where(group_map.switch, 0 * one, (0.01 if p == 2 else 0) * one)
    detector = None
    if death == "sign_variance":
        detector = SignVarianceDetector(
            torch.full((sum(net.layout.switch_sizes),), 0.05, dtype=dtype), 0.5, 0.5
        )
    trainer = ProximalTrainer(
        copy.deepcopy(net),
        group_map,
        ElasticNet(l1, l2),
        TrainConfig(loss="squared", optimizer=optimizer, learning_rate_init=0.05),
        detector=detector,
    )
    trainer.optimizer.use_kernels = kernels
    return trainer


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
@pytest.mark.parametrize("death", ["prox", "sign_variance"])
@pytest.mark.parametrize("p", [1, 2])
def test_fused_switch_steps_equal_tensor_steps(optimizer, death, p):
    dtype = torch.float64
    net = SparseMLP((6, 7, 5, 3), dtype=dtype, switches=True)
    net.reset_parameters(torch.Generator().manual_seed(0), switch_init="uniform")
    fused = _switch_trainer(net, optimizer, death, p, kernels=True)
    reference = _switch_trainer(net, optimizer, death, p, kernels=False)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(20, 6, dtype=dtype, generator=g)
    Y = torch.randn(20, 3, dtype=dtype, generator=g)
    for _ in range(40):
        fused.train_step(X, Y)
        reference.train_step(X, Y)
    a, b = fused.net.theta.detach(), reference.net.theta.detach()
    assert (a - b).abs().max() < 1e-9
    switches = slice(net.layout.n_plain, net.layout.n_params)
    assert torch.equal(a[switches] == 0, b[switches] == 0)
    assert (a[switches] == 0).sum() > 0, "the test should kill some switches"
    if death == "sign_variance":
        assert torch.equal(fused.detector.alive, reference.detector.alive)


def test_contiguous_starts_only_for_consecutive_positions():
    index = np.array([[4, 5, 6], [0, 2, 4], [7, 9, 9], [3, 8, 9]])
    sizes = np.array([3, 3, 1, 2])
    # [7] alone is consecutive; [3, 8] and the strided [0, 2, 4] are not
    assert _kernels.contiguous_starts(index, sizes).tolist() == [4, -1, 7, -1]
