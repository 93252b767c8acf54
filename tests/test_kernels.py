"""The numba engine takes the torch engine's steps; its kernels are exact.

One parity matrix trains one network with both step engines
(:data:`~skgroupsparse.training.ENGINES`) on every activation, loss, optimizer
and prox mode, with and without switches, for every penalty of the registry
whose prox has a kernel (found by calling ``prox_strengths``, so a new one is
covered without editing this file), for the elastic net and for ShrinkNets'
switch network (death by the prox or by the sign-variance detector). The
kernels also meet oracles of their own: brute force (the weighted group prox)
and structure (group sizes, contiguous groups).
"""

import copy

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from test_shrinknet import _targets

from skgroupsparse import _kernels
from skgroupsparse.groups import build_group_map, build_switch_group_map
from skgroupsparse.network import ACTIVATIONS, LOSSES, SparseMLP
from skgroupsparse.penalties import PENALTIES, ElasticNet, make_penalty
from skgroupsparse.training import (
    OPTIMIZER_CODES,
    OPTIMIZERS,
    PROX_MODES,
    ProximalTrainer,
    SignVarianceDetector,
    TrainConfig,
)

_NO_BLOCKS = np.zeros((0, 5), dtype=np.int64)  # every group read on its own


# --------------------------------------------------------------------------
# the parity matrix: the numba engine takes the torch engine's steps
# --------------------------------------------------------------------------
SIZES = (6, 7, 5, 3)
N_SAMPLES = 20
ALPHA = 0.05
STEPS = 20
#: RMSprop (no bias correction) first moves every coordinate by about
#: ``lr / sqrt(1 - beta_2) = 32 lr``: at 0.05 the steps are so long that the
#: trajectory is chaotic and round-off grows tenfold per step
LEARNING_RATES = {"sgd": 0.05, "adam": 0.05, "adamax": 0.05, "rmsprop": 0.005}
#: ShrinkNets' switch network (ElasticNet: l1 on the switches, l_p^p on the
#: weights), whose switches die by the prox or by the sign-variance detector
SWITCH_NETWORKS = {
    "shrinknet_prox_p1": ("prox", 1),
    "shrinknet_prox_p2": ("prox", 2),
    "shrinknet_sign_variance_p1": ("sign_variance", 1),
    "shrinknet_sign_variance_p2": ("sign_variance", 2),
}


def _penalty(name, n_groups, dtype):
    """Penalty ``name`` of ``PENALTIES``, or ``"elastic_net"`` (a kernel
    penalty outside the registry, here with both terms on every group)."""
    # strengths from 0 to 1000 times ALPHA in turn: whatever the length of the
    # optimizer's steps, some groups die and some live
    alpha = ALPHA * torch.tensor([0.0, 0.1, 1.0, 10.0, 100.0, 1000.0], dtype=dtype)
    alpha = alpha[torch.arange(n_groups) % len(alpha)]
    if name == "elastic_net":
        return ElasticNet(alpha, alpha)
    return make_penalty(name, alpha, l1_ratio=0.4)


def _kernel_penalties():
    """The registry's penalties whose prox the numba engine runs as a kernel
    (``prox_strengths`` is not None: a new one joins the matrix), and the
    elastic net."""
    sizes = torch.tensor([1.0, 3.0], dtype=torch.float64)
    return [
        name
        for name in sorted(PENALTIES)
        if _penalty(name, 2, sizes.dtype).prox_strengths(sizes) is not None
    ] + ["elastic_net"]


KERNEL_PENALTIES = _kernel_penalties()


def _prox_settings(metric_prox):
    """``(optimizer, prox)``: every optimizer, the adaptive ones in both prox
    modes (SGD has no metric: one mode). A penalty without a closed-form prox
    in a metric (``metric_prox`` False) only where the prox is Euclidean."""
    for optimizer in OPTIMIZERS:
        for prox in PROX_MODES if optimizer != "sgd" else PROX_MODES[:1]:
            if metric_prox or optimizer == "sgd" or prox == "decoupled":
                yield optimizer, prox


def _matrix():
    """Every case: regularisation x switches x (optimizer, prox) x activation x
    loss in float64; and float32 on one activation and loss. The kernel
    penalties act on the outgoing groups of a plain or a switch network;
    ShrinkNets' penalty needs switches."""
    regularisations = [(n, s) for n in KERNEL_PENALTIES for s in (False, True)]
    regularisations += [(name, True) for name in SWITCH_NETWORKS]
    nets = [(torch.float64, a, loss) for a in ACTIVATIONS for loss in LOSSES]
    nets.append((torch.float32, "relu", "squared"))
    for name, switches in regularisations:
        metric_prox = (
            name in SWITCH_NETWORKS or _penalty(name, 1, torch.float64).metric_prox
        )
        for optimizer, prox in _prox_settings(metric_prox):
            for dtype, activation, loss in nets:
                network = "switches" if switches else "plain"
                yield pytest.param(
                    name,
                    switches,
                    optimizer,
                    prox,
                    activation,
                    loss,
                    dtype,
                    id=f"{name}-{network}-{optimizer}-{prox}-{activation}-{loss}"
                    f"-{str(dtype)[6:]}",
                )


def _trainer(net, name, optimizer, prox, loss, engine):
    """A trainer of a copy of ``net`` on ``engine``, with the regularisation
    ``name`` (of ``KERNEL_PENALTIES`` or ``SWITCH_NETWORKS``)."""
    net = copy.deepcopy(net)
    dtype = net.theta.dtype
    components = []
    if name in SWITCH_NETWORKS:
        death, p = SWITCH_NETWORKS[name]
        group_map = build_switch_group_map(net.layout)
        switch = group_map.switch
        # with sign-variance death the switches' l1 is the detector's
        # subgradient; with prox death, ALPHA times ..., 900, 30, 1 by layer
        # (the last layer's switches die last, else all die with them)
        last = net.layout.n_layers - 1
        switch_l1 = ALPHA * 30.0 ** (last - group_map.layer)
        switch_l1 = switch_l1 if death == "prox" else 0.0
        l1 = torch.where(switch, switch_l1, 0.01 if p == 1 else 0.0).to(dtype)
        l2 = torch.where(switch, 0.0, 0.01 if p == 2 else 0.0).to(dtype)
        penalty = ElasticNet(l1, l2)
        if death == "sign_variance":
            n_switches = sum(net.layout.switch_sizes)
            strengths = torch.full((n_switches,), ALPHA, dtype=dtype)
            components.append(SignVarianceDetector(strengths, 0.5, 0.5))
    else:
        group_map = build_group_map(net.layout)
        penalty = _penalty(name, group_map.n_groups, dtype)
    config = TrainConfig(
        loss=loss,
        optimizer=optimizer,
        prox=prox,
        learning_rate_init=LEARNING_RATES[optimizer],
        engine=engine,
    )
    return ProximalTrainer(net, group_map, penalty, config, components=components)


def _count_calls(monkeypatch, *names):
    """Count the calls of the kernels ``names`` (which still run)."""
    calls = dict.fromkeys(names, 0)

    def counting(name, kernel):
        def counted(*args):
            calls[name] += 1
            return kernel(*args)

        return counted

    for name in names:
        monkeypatch.setattr(_kernels, name, counting(name, getattr(_kernels, name)))
    return calls


def _zero_counts(trainer, zeros):
    """``(groups, coordinates of groups)`` where ``zeros`` (like ``theta``)."""
    group_map = trainer.group_map
    Z = group_map.gather(zeros.to(torch.uint8)).bool()
    real = torch.arange(Z.shape[1]) < group_map.sizes.unsqueeze(1)
    Z &= real
    return int((Z.sum(1) == group_map.sizes).sum()), int(Z.sum())


@pytest.mark.parametrize(
    "name, switches, optimizer, prox, activation, loss, dtype", list(_matrix())
)
def test_numba_engine_takes_the_torch_engine_steps(
    name, switches, optimizer, prox, activation, loss, dtype, monkeypatch
):
    net = SparseMLP(SIZES, activation, dtype=dtype, switches=switches)
    net.reset_parameters(torch.Generator().manual_seed(0), switch_init="uniform")
    numba, torch_ = (
        _trainer(net, name, optimizer, prox, loss, engine)
        for engine in ("numba", "torch")
    )
    g = torch.Generator().manual_seed(1)
    X = torch.randn(N_SAMPLES, SIZES[0], dtype=dtype, generator=g)
    Y = _targets(loss, N_SAMPLES, SIZES[-1], g).to(dtype)
    calls = _count_calls(monkeypatch, "mlp_loss_and_grad", "prox_l1_group")
    losses = [
        (float(numba.train_step(X, Y)), float(torch_.train_step(X, Y)))
        for _ in range(STEPS)
    ]
    # the numba engine ran the loss and prox kernels, the torch engine neither
    assert calls == {"mlp_loss_and_grad": STEPS, "prox_l1_group": STEPS}
    # the engines differ by round-off only: the order of the sums in the
    # matrix products, the kernels' fastmath reassociation, the numba prox's
    # Newton iteration that stops at 1e-15 where the tensor one runs a fixed
    # number of iterations. In float64 that is about 1e-16 per operation; over
    # STEPS steps it grows to at most about 4e-13 on these cases, so 1e-9
    # leaves a margin of more than 1e3, while a wrong term (a derivative, a
    # bias correction, a prox threshold) moves a step by O(lr * alpha) and
    # fails by far. float32 (6e-8 per operation) reaches about 1e-5: 1e-4.
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(*zip(*losses), rtol=tol)
    a, b = numba.net.theta.detach(), torch_.net.theta.detach()
    assert (a - b).abs().max() < tol
    # below the smallest normal number is zero: where a weight decays
    # geometrically (RMSprop's metric at a zero gradient, with a ridge term)
    # the tensor prox's float32 products underflow to 0 while the kernel, in
    # float64, rounds to a float32 subnormal
    zeros = a.abs() < torch.finfo(dtype).tiny
    assert torch.equal(zeros, b.abs() < torch.finfo(dtype).tiny)
    # the test can fail: the prox zeroed some of what it acts on (and, with the
    # kernel penalties, not all: the groups with alpha = 0 live)
    if name in SWITCH_NETWORKS:
        assert zeros[numba.net.layout.switch_segment].any(), "no switch died"
        detectors = [t.component(SignVarianceDetector) for t in (numba, torch_)]
        if detectors[0] is not None:
            assert torch.equal(detectors[0].alive, detectors[1].alive)
    else:
        groups, coordinates = _zero_counts(numba, zeros)
        _, group_strengths, _ = numba.penalty.prox_strengths(numba.group_sizes)
        if bool((group_strengths > 0).any()):
            assert 0 < groups < numba.group_map.n_groups
        else:
            assert 0 < coordinates < int(numba.group_map.sizes.sum())


# --------------------------------------------------------------------------
# the prox kernel against oracles
# --------------------------------------------------------------------------
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
        metric,  # Adamax's metric is its state array itself
        OPTIMIZER_CODES["adamax"],
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
        OPTIMIZER_CODES["sgd"],  # the identity metric
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


def test_contiguous_starts_only_for_consecutive_positions():
    index = np.array([[4, 5, 6], [0, 2, 4], [7, 9, 9], [3, 8, 9]])
    sizes = np.array([3, 3, 1, 2])
    # [7] alone is consecutive; [3, 8] and the strided [0, 2, 4] are not
    assert _kernels.contiguous_starts(index, sizes).tolist() == [4, -1, 7, -1]
