"""Tests of :mod:`skgroupsparse.network` against independent oracles.

* the hand-written backward pass against autograd through the plain forward
  pass and torch's own loss functions, and against central finite
  differences of a forward written here;
* liveness against a brute-force path search over nonzero weights, and
  against hand-built networks whose live units are known;
* compaction against the full network's outputs, computed here in float64.
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skgroupsparse.network import (
    ACTIVATIONS,
    LOSSES,
    CompactMLP,
    SparseMLP,
    compact,
    live_units,
)

DT = torch.float64
ACTS = sorted(ACTIVATIONS)
TORCH_ACT = {
    "identity": lambda z: z,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
    "tanh": torch.tanh,
    "logistic": torch.sigmoid,
}


def _reference_loss(out, y, loss):
    """The documented losses, written with torch's loss functions."""
    if loss == "squared":
        return 0.5 * F.mse_loss(out, y, reduction="none").sum(dim=1).mean()
    if loss == "softmax":
        return F.cross_entropy(out, y)
    return F.binary_cross_entropy_with_logits(out, y, reduction="none").sum(1).mean()


def _reference_forward(weights, biases, activation, X):
    """The MLP of ALGORITHMS.md section 0.1 written from scratch."""
    h = X
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        h = h @ W.T + b
        if l < len(weights) - 1:
            h = TORCH_ACT[activation](h)
    return h


def _data(loss, n, n_in, n_out, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, n_in, dtype=DT, generator=g)
    if loss == "squared":
        y = torch.randn(n, n_out, dtype=DT, generator=g)
    elif loss == "softmax":
        y = torch.randint(0, n_out, (n,), generator=g)
    else:
        y = torch.randint(0, 2, (n, n_out), generator=g).to(DT)
    return X, y


def _random_net(sizes, activation, seed):
    net = SparseMLP(sizes, activation, dtype=DT)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.theta.copy_(torch.randn(net.theta.shape, dtype=DT, generator=g))
        net.theta[-1] = 0.0
    return net


# --------------------------------------------------------------------------
# gradient
# --------------------------------------------------------------------------
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("sizes", [(4, 6, 5, 3), (3, 2)])
def test_loss_and_grad_equals_autograd(activation, loss, sizes):
    net = _random_net(sizes, activation, seed=1)
    X, y = _data(loss, 11, sizes[0], sizes[-1], seed=2)

    # autograd through the plain forward pass and torch's loss functions
    theta = net.theta.detach().clone().requires_grad_(True)
    weights, biases = net.layout.views(theta)
    ref = _reference_loss(_reference_forward(weights, biases, activation, X), y, loss)
    (ref_grad,) = torch.autograd.grad(ref, theta)

    # SparseMLP.forward is the autograd-capable pass the docs promise
    out = net(X)
    assert torch.allclose(
        out,
        _reference_forward(net.weights, net.biases, activation, X),
        rtol=1e-13,
        atol=1e-13,
    )

    grad = torch.full_like(net.theta, 123.0)  # must be overwritten everywhere
    grad[-1] = 0.0
    value = net.loss_and_grad(X, y, loss, grad)
    assert value.shape == ()
    assert torch.allclose(value, ref.detach(), rtol=1e-12, atol=1e-14)
    assert grad[-1] == 0.0
    assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-12), (
        (grad - ref_grad).abs().max()
    )
    if loss == "softmax":  # one-hot float targets are accepted too
        onehot = F.one_hot(y, sizes[-1]).to(DT)
        grad2 = torch.zeros_like(grad)
        value2 = net.loss_and_grad(X, onehot, loss, grad2)
        assert torch.allclose(value2, ref.detach(), rtol=1e-12, atol=1e-14)
        assert torch.allclose(grad2, ref_grad, rtol=1e-10, atol=1e-12)
    # the weights themselves are untouched by the backward pass
    assert torch.equal(net.theta.detach(), theta.detach())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu"])
def test_loss_and_grad_finite_differences(activation, loss):
    sizes = (3, 4, 3, 2)
    net = _random_net(sizes, activation, seed=3)
    X, y = _data(loss, 9, sizes[0], sizes[-1], seed=4)
    grad = torch.zeros_like(net.theta)
    net.loss_and_grad(X, y, loss, grad)
    theta0 = net.theta.detach().clone()
    layout = net.layout

    def f(theta):
        w, b = layout.views(theta)
        return float(_reference_loss(_reference_forward(w, b, activation, X), y, loss))

    # a few coordinates: one weight and one bias of every layer
    coords = []
    for w_off, b_off in zip(layout.weight_offsets, layout.bias_offsets, strict=True):
        coords += [w_off + 1, b_off]
    eps = 1e-6
    for k in coords:
        e = torch.zeros_like(theta0)
        e[k] = eps
        fd = (f(theta0 + e) - f(theta0 - e)) / (2 * eps)
        assert abs(fd - float(grad[k])) <= 1e-7 * max(1.0, abs(fd)), (k, fd, grad[k])


# --------------------------------------------------------------------------
# liveness
# --------------------------------------------------------------------------
def _brute_force_live(weights):
    """Live units by enumerating every input-to-output path of nonzero weights."""
    nz = [(W != 0).numpy() for W in weights]
    sizes = [nz[0].shape[1]] + [m.shape[0] for m in nz]
    live = [np.zeros(s, dtype=bool) for s in sizes]
    for path in itertools.product(*[range(s) for s in sizes]):
        if all(nz[l][path[l + 1], path[l]] for l in range(len(nz))):
            for l, u in enumerate(path):
                live[l][u] = True
    live[-1][:] = True
    return live


def _hand_net():
    """(4, 5, 3, 2) network with known dead, unreachable and constant units.

    Hidden layer 1: unit 0 is dead (zero outgoing column); unit 1 is
    unreachable (zero incoming row) but has a nonzero bias and nonzero
    outgoing weights, so it is a constant that must be folded; unit 4 only
    feeds hidden-2 unit 2, which is dead. Features: 2 has a zero column
    (dead); 3 only feeds hidden-1 unit 0 (dead), so it is dead too.
    """
    g = torch.Generator().manual_seed(5)
    W1 = torch.randn(5, 4, dtype=DT, generator=g)
    W2 = torch.randn(3, 5, dtype=DT, generator=g)
    W3 = torch.randn(2, 3, dtype=DT, generator=g)
    b1 = torch.randn(5, dtype=DT, generator=g)
    b2 = torch.randn(3, dtype=DT, generator=g)
    b3 = torch.randn(2, dtype=DT, generator=g)
    W1[:, 2] = 0.0  # dead feature
    W1[:, 3] = 0.0
    W1[0, 3] = 1.5  # feature 3 reaches only hidden-1 unit 0
    W2[:, 0] = 0.0  # hidden-1 unit 0 dead
    W1[1, :] = 0.0  # hidden-1 unit 1 unreachable ...
    b1[1] = 0.7  # ... with a nonzero bias and nonzero outgoing column
    W2[:, 4] = 0.0
    W2[2, 4] = -0.8  # hidden-1 unit 4 feeds only hidden-2 unit 2 ...
    W3[:, 2] = 0.0  # ... which is dead
    expected = [
        [True, True, False, False],
        [False, False, True, True, False],
        [True, True, False],
        [True, True],
    ]
    return [W1, W2, W3], [b1, b2, b3], expected


def test_live_units_hand_built():
    weights, _, expected = _hand_net()
    masks = live_units(weights)
    assert [m.tolist() for m in masks] == expected
    assert [m.tolist() for m in _brute_force_live(weights)] == expected


@pytest.mark.parametrize("seed", range(6))
def test_live_units_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    sizes = [4, 5, 4, 3]
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.35)
        weights.append(torch.as_tensor(W))
    masks = live_units(weights)
    ref = _brute_force_live(weights)
    for m, r in zip(masks, ref, strict=True):
        assert m.tolist() == r.tolist()


def test_live_units_of_a_stack_are_each_networks_by_brute_force():
    rng = np.random.default_rng(7)
    sizes, K = [4, 5, 4, 3], 6
    stack = [
        torch.as_tensor(rng.normal(size=(K, o, i)) * (rng.random((K, o, i)) < 0.35))
        for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    masks = live_units(stack)
    assert [tuple(m.shape) for m in masks] == [(K, n) for n in sizes]
    for k in range(K):
        ref = _brute_force_live([W[k] for W in stack])
        for m, r in zip(masks, ref, strict=True):
            assert m[k].tolist() == r.tolist()


# --------------------------------------------------------------------------
# compaction
# --------------------------------------------------------------------------
def _check_compact(weights, biases, activation, X, expect_fewer=True):
    full = _reference_forward(weights, biases, activation, X)
    small_w, small_b, masks = compact(weights, biases, activation)
    net = CompactMLP.from_weights(small_w, small_b, activation, masks[0])
    out = net(X).detach()
    full_params = sum(
        W.numel() + b.numel() for W, b in zip(weights, biases, strict=True)
    )
    if expect_fewer:
        assert net.n_params < full_params
    assert out.shape == full.shape
    assert torch.allclose(out, full, rtol=1e-12, atol=1e-12), (out - full).abs().max()
    return net, masks


@pytest.mark.parametrize("activation", ACTS)
def test_compact_hand_built_matches_full_network(activation):
    weights, biases, expected = _hand_net()
    X = torch.randn(20, 4, dtype=DT, generator=torch.Generator().manual_seed(6))
    net, masks = _check_compact(weights, biases, activation, X)
    assert [m.tolist() for m in masks] == expected
    # only live units are kept: 2 features, 2 + 2 hidden units, 2 outputs
    linears = [m for m in net.layers if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(2, 2), (2, 2), (2, 2)]
    assert net.n_params == 3 * (4 + 2)


@pytest.mark.parametrize("activation", ACTS)
def test_compact_folds_constant_chain(activation):
    # hidden-1 unit 0 is constant and feeds hidden-2 unit 1, which reads no
    # live input either: a constant of a constant, folded twice
    g = torch.Generator().manual_seed(7)
    W1 = torch.randn(3, 3, dtype=DT, generator=g)
    W2 = torch.randn(2, 3, dtype=DT, generator=g)
    W3 = torch.randn(2, 2, dtype=DT, generator=g)
    b1, b2, b3 = (torch.randn(k, dtype=DT, generator=g) for k in (3, 2, 2))
    W1[0] = 0.0
    W2[1] = 0.0
    W2[1, 0] = 0.9
    X = torch.randn(15, 3, dtype=DT, generator=g)
    _, masks = _check_compact([W1, W2, W3], [b1, b2, b3], activation, X)
    assert masks[1].tolist() == [False, True, True]
    assert masks[2].tolist() == [True, False]


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dead_layer", [0, 1])
def test_compact_whole_layer_dead_gives_constant(activation, dead_layer):
    g = torch.Generator().manual_seed(8)
    sizes = (3, 4, 3, 2)
    weights = [
        torch.randn(o, i, dtype=DT, generator=g)
        for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    biases = [torch.randn(o, dtype=DT, generator=g) for o in sizes[1:]]
    weights[dead_layer].zero_()  # no input reaches layer dead_layer + 1
    X = torch.randn(10, 3, dtype=DT, generator=g)
    full = _reference_forward(weights, biases, activation, X)
    # the network is a constant, and not the zero or bias-only constant
    assert torch.allclose(full, full[:1].expand_as(full), rtol=0, atol=1e-14)
    net, masks = _check_compact(weights, biases, activation, X)
    assert not masks[0].any()
    assert all(not m.any() for m in masks[1:-1])
    out = net(X)
    assert torch.allclose(out[0], full[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("seed", range(3))
def test_compact_random_sparse_networks(activation, seed):
    rng = np.random.default_rng(100 + seed)
    sizes = [5, 6, 5, 3]
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.4)
        weights.append(torch.as_tensor(W))
        biases.append(torch.as_tensor(rng.normal(size=n_out)))
    X = torch.as_tensor(rng.normal(size=(12, 5)))
    _check_compact(weights, biases, activation, X, expect_fewer=False)


def test_compact_reads_only_kept_features():
    weights, biases, expected = _hand_net()
    small_w, small_b, masks = compact(weights, biases, "tanh")
    net = CompactMLP.from_weights(small_w, small_b, "tanh", masks[0])
    assert net.feature_index.tolist() == [0, 1]
    X = torch.randn(8, 4, dtype=DT, generator=torch.Generator().manual_seed(9))
    full = _reference_forward(weights, biases, "tanh", X)
    X_poisoned = X.clone()
    X_poisoned[:, 2] = float("nan")  # dead features: never read
    X_poisoned[:, 3] = float("inf")
    out = net(X_poisoned)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, full, rtol=1e-12, atol=1e-12)


def test_sparse_mlp_compacts_to_same_outputs():
    # end to end through SparseMLP's own weights (zeroed as a prox would)
    net = _random_net((4, 6, 3), "logistic", seed=10)
    with torch.no_grad():
        W1, W2 = net.weights
        W2[:, [1, 4]] = 0.0  # two dead neurons
        W1[[0, 2], :] = 0.0  # two constant neurons (sigma(b) != 0)
        W1[:, 3] = 0.0  # a dead feature
    X = torch.randn(7, 4, dtype=DT, generator=torch.Generator().manual_seed(11))
    full = net(X).detach()
    w = [W.detach() for W in net.weights]
    b = [v.detach() for v in net.biases]
    small_w, small_b, masks = compact(w, b, "logistic")
    small = CompactMLP.from_weights(small_w, small_b, "logistic", masks[0])
    assert masks[0].tolist() == [True, True, True, False]
    assert masks[1].tolist() == [False, False, False, True, False, True]
    assert small.n_params == 3 * 2 + 2 + 2 * 3 + 3
    assert torch.allclose(small(X), full, rtol=1e-12, atol=1e-12)
