"""The exact prox on both engines: exact, and free of host synchronisation.

The fused CPU kernel (numba, float64 whatever the parameters) and the tensor
path (the CUDA path; run here on the CPU, and on CUDA where there is one) must
agree with an independent float64 oracle (brentq on the secular equation) to
1e-6 relative, on float32 parameters as a GPU trains them, for random groups
and for the adversarial metric ratios of ``test_penalties``. The tensor path
must be a fixed sequence of kernels: no operation that reads a device value
back to the host, so that a step never waits for the GPU and can be captured
as a CUDA graph.
"""

import copy

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from torch.utils._python_dispatch import TorchDispatchMode

from skgroupsparse import _kernels
from skgroupsparse.groups import build_group_map
from skgroupsparse.network import SparseMLP
from skgroupsparse.penalties import make_penalty, weighted_block_soft_threshold
from skgroupsparse.training import (
    OPTIMIZER_CODES,
    ProximalTrainer,
    TrainConfig,
    choose,
    use_engine,
)

CUDA = torch.cuda.is_available()
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs CUDA")),
]


def _secular_prox(z, d, t):
    """Oracle: ``x = d z r / (d r + t)`` with ``sum (d z / (d r + t))^2 = 1``."""
    a = d * z
    excess = np.linalg.norm(a) - t
    if excess <= 0:
        return np.zeros_like(z)
    phi = lambda r: np.sum((a / (d * r + t)) ** 2) - 1.0  # noqa: E731
    lo, hi = excess / d.max(), excess / d.min()
    if phi(lo) <= 0 or phi(hi) >= 0:  # a bound is the root (to round-off)
        r = lo if phi(lo) <= 0 else hi
        return a * r / (d * r + t)
    r = brentq(phi, lo, hi, xtol=1e-300, rtol=1e-15)
    return a * r / (d * r + t)


def _rows(rng):
    """Float32 rows ``(z, d, t)``: random groups and adversarial 2-d rows.

    Random: sizes 1 to 64, ``d`` log-uniform over six orders of magnitude,
    thresholds from far below to just below ``||d z||`` and above it.
    Adversarial: ``z = (1, 10^m)``, ``d = 1e3 (1, 10^-k)`` with metric ratios
    up to 1e6 (the large coordinate on the small metric) and thresholds up to
    ``1 - 1e-6`` of ``||d z||`` (closer than that, float32 inputs cannot say
    on which side of the threshold a row is).
    """
    rows = []
    for _ in range(300):
        n = int(rng.integers(1, 65))
        z = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1)).astype(np.float32)
        d = (10.0 ** rng.uniform(-4, 2, n)).astype(np.float32)
        frac = rng.choice([rng.uniform(0, 1), 1 - 10.0 ** rng.uniform(-5, -1), 1.5])
        rows.append((z, d, frac))
    for k in np.linspace(0, 6, 7):
        for m in np.linspace(-3, 6, 10):
            for frac in (0.01, 0.5, 0.99, 1 - 1e-6):
                z = np.array([1.0, 10.0**m], dtype=np.float32)
                d = (1e3 * np.array([1.0, 10.0**-k])).astype(np.float32)
                rows.append((z, d, frac))
    # the thresholds too are float32 values: the oracle sees what the engines see
    return [
        (
            z.astype(np.float64),
            d.astype(np.float64),
            float(np.float32(frac * np.linalg.norm(d.astype(np.float64) * z))),
        )
        for z, d, frac in rows
    ]


def _padded(rows):
    width = max(len(z) for z, _, _ in rows)
    Z = np.zeros((len(rows), width))
    D = np.ones((len(rows), width))
    for g, (z, d, _) in enumerate(rows):
        Z[g, : len(z)], D[g, : len(z)] = z, d
    return Z, D, np.array([t for _, _, t in rows])


def _assert_close_rows(X, rows, what, rtol=1e-6):
    for g, (z, d, t) in enumerate(rows):
        expected = _secular_prox(z, d, t)
        got = X[g, : len(z)]
        scale = np.linalg.norm(expected)
        err = np.abs(got - expected).max()
        assert err <= rtol * scale, (
            f"{what}: row {g} (z={z!r}, d={d!r}, t={t!r}) off by {err:.3g} "
            f"({rtol:g} relative is {rtol * scale:.3g})"
        )


@pytest.mark.parametrize("device", DEVICES)
def test_tensor_prox_of_float32_groups_is_exact(device):
    """The tensor path (solved in float64, returned in float32) vs the oracle."""
    rows = _rows(np.random.default_rng(0))
    Z, D, t = _padded(rows)
    as32 = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    X = weighted_block_soft_threshold(as32(Z), as32(D), as32(t))
    assert X.dtype == torch.float32
    _assert_close_rows(X.double().cpu().numpy(), rows, f"tensor prox on {device}")


@pytest.mark.parametrize("layout", ["indexed", "blocks"])
@pytest.mark.parametrize(
    ("dtype", "rtol", "tol"), [(np.float32, 1e-6, 1e-12), (np.float64, 1e-9, 1e-15)]
)
def test_kernel_prox_of_float32_groups_is_exact(layout, dtype, rtol, tol):
    """The fused kernel on float32 parameters (and float64 ones, to 1e-9), each
    group read on its own or (the same rows as the columns of row-major blocks)
    by the block path."""
    rows = _rows(np.random.default_rng(0))
    # one block per group size: its groups are the columns of an n x k matrix
    by_size = {}
    for g, row in enumerate(rows):
        by_size.setdefault(len(row[0]), []).append(g)
    theta, second, index, sizes, order = [], [], [], [], []
    pos = 0
    width = max(by_size)
    for n, groups in sorted(by_size.items()):
        k = len(groups)
        Zb = np.stack([rows[g][0] for g in groups], axis=1)  # n x k
        Db = np.stack([rows[g][1] for g in groups], axis=1)
        theta.append(Zb.ravel())
        second.append(Db.ravel())
        cols = pos + np.arange(k)[:, None] + k * np.arange(n)[None, :]
        index.append(np.pad(cols, ((0, 0), (0, width - n)), constant_values=-1))
        sizes += [n] * k
        order += groups
        pos += n * k
    theta = np.concatenate(theta + [np.zeros(1)]).astype(dtype)
    second = np.concatenate(second + [np.ones(1)]).astype(dtype)
    index = np.concatenate(index)
    index[index < 0] = pos  # padding points at the sentinel
    sizes = np.array(sizes)
    t2 = np.array([rows[g][2] for g in order])
    first, blocks = _kernels.group_plan(index, sizes)
    if layout == "indexed":
        first, blocks = _kernels.contiguous_starts(index, sizes), blocks[:0]
    else:
        # a lone column (k = 1) is stored contiguously; every other is in a block
        assert len(blocks) > 0 and np.all((first == -2) | (first >= 0))
    zeros = np.zeros(len(sizes))
    block_size = int((blocks[:, 1] * blocks[:, 2]).max(initial=0))
    _kernels.prox_l1_group(
        theta,
        index,
        sizes,
        first,
        blocks,
        zeros,
        t2,
        zeros,
        1.0,
        second,  # Adamax's code reads D straight from the state array
        OPTIMIZER_CODES["adamax"],
        1.0,
        0.0,
        np.zeros(width),
        np.zeros(width),
        np.zeros(block_size),
        np.zeros(block_size),
        np.zeros(len(sizes)),
        tol,
    )
    X = np.zeros((len(rows), width))
    for i, g in enumerate(order):
        X[g, : sizes[i]] = theta[index[i, : sizes[i]]]
    _assert_close_rows(X, rows, f"fused kernel ({layout})", rtol)


@pytest.mark.parametrize("code", [0, 1, 2, 3])
@pytest.mark.parametrize("group_term", [False, True])
def test_block_prox_leaves_unpenalised_columns_exactly_alone(code, group_term):
    """A column of a block with no penalty is the identity of the prox: its
    weights come back bit for bit (``D z / D`` or ``z d / (d + 0)`` would move
    some by an ulp), beside penalised columns or with none."""
    rng = np.random.default_rng(3)
    n, k = 40, 24  # one row-major block: k outgoing groups of n weights
    theta = np.append(rng.standard_normal(n * k), 0.0)
    second = np.append(rng.uniform(1e-6, 1.0, n * k), 1.0)
    index = np.arange(k)[:, None] + k * np.arange(n)[None, :]
    sizes = np.full(k, n)
    first, blocks = _kernels.group_plan(index, sizes)
    assert len(blocks) == 1
    free = np.arange(k) % 2 == 0  # every other column has no penalty
    t1 = np.where(free, 0.0, 0.05)
    t2 = np.where(free, 0.0, 0.3 if group_term else 0.0)
    t3 = np.where(free, 0.0, 0.1)
    before = theta.copy()
    _kernels.prox_l1_group(
        theta, index, sizes, first, blocks, t1, t2, t3, 0.5, second, code,
        0.9, 1e-8, np.zeros(n), np.zeros(n), np.zeros(n * k), np.zeros(n * k),
        np.zeros(k), 1e-15,
    )  # fmt: skip
    W, W0 = theta[:-1].reshape(n, k), before[:-1].reshape(n, k)
    np.testing.assert_array_equal(W[:, free], W0[:, free])
    assert (W[:, ~free] != W0[:, ~free]).all()  # the penalised columns moved
    # and with no penalty anywhere the block is left as it is
    t0 = np.zeros(k)
    _kernels.prox_l1_group(
        theta, index, sizes, first, blocks, t0, t0, t0, 0.5, second, code,
        0.9, 1e-8, np.zeros(n), np.zeros(n), np.zeros(n * k), np.zeros(n * k),
        np.zeros(k), 1e-15,
    )  # fmt: skip
    np.testing.assert_array_equal(theta[:-1].reshape(n, k), W)


def _trainer(device, optimizer, penalty, prox, engine, seed=0):
    dtype = torch.float32
    net = SparseMLP((9, 16, 12, 3), dtype=dtype, device=device)
    net.reset_parameters(torch.Generator().manual_seed(seed))
    group_map = build_group_map(net.layout).to(device)
    alpha = torch.full((group_map.n_groups,), 0.02, dtype=dtype, device=device)
    trainer = ProximalTrainer(
        net,
        group_map,
        make_penalty(penalty, alpha, 0.4),
        TrainConfig(
            loss="squared",
            optimizer=optimizer,
            prox=prox,
            learning_rate_init=0.02,
            engine=engine,
        ),
    )
    return trainer


def _batch(device, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(32, 9, dtype=dtype, generator=g)
    Y = torch.randn(32, 3, dtype=dtype, generator=g)
    return X.to(device), Y.to(device)


def test_one_prox_step_agrees_on_both_engines():
    """From one state (Adam's metric after 20 steps, float32 parameters), the
    kernel's prox and the tensor prox agree to 1e-6 relative per group."""
    base = _trainer("cpu", "adam", "sparse_group_lasso", "preconditioned", "numba")
    X, Y = _batch("cpu")
    for _ in range(20):
        base.train_step(X, Y)
    results = []
    for engine in ("numba", "torch"):
        trainer = copy.deepcopy(base)
        trainer.config.engine = engine
        assert trainer.engine.name == engine
        theta = trainer.net.theta.detach()
        theta.add_(
            torch.randn(theta.shape, generator=torch.Generator().manual_seed(2)) * 0.01
        )
        theta[-1] = 0.0
        trainer.engine.prox(trainer.lr * 20)  # a long step: many groups move to zero
        results.append(trainer.group_map.gather(theta.double()))
    fused, tensor = results
    scale = torch.linalg.vector_norm(fused, dim=1, keepdim=True)
    assert ((fused - tensor).abs() <= 1e-6 * scale + 1e-12).all()
    assert torch.equal(fused == 0, tensor == 0)
    assert (scale == 0).any() and (scale > 0).any(), "the step should zero some groups"


# ops that read a value of a tensor back to the host (or need one to size
# their output): on CUDA each one waits for the device
_HOST_READS = {
    "aten::_local_scalar_dense",
    "aten::item",
    "aten::is_nonzero",
    "aten::equal",
    "aten::nonzero",
    "aten::masked_select",
    "aten::unique_consecutive",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::repeat_interleave",
    "aten::allclose",
}


_INDEXING = {"aten::index", "aten::index_put", "aten::index_put_"}


class HostReads(TorchDispatchMode):
    """Records every operation that would synchronise a CUDA stream with the
    host: the reads above, and indexing with a boolean mask (a nonzero)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        indices = args[1] if name in _INDEXING and len(args) > 1 else []
        masks = [
            i for i in indices if isinstance(i, torch.Tensor) and i.dtype == torch.bool
        ]
        if name in _HOST_READS or masks:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamax", "rmsprop"])
@pytest.mark.parametrize("penalty", ["group_lasso", "sparse_group_lasso", "l1"])
@pytest.mark.parametrize("prox", ["preconditioned", "decoupled"])
def test_tensor_step_reads_nothing_back(optimizer, penalty, prox):
    """A whole step of the tensor engine (gradient, optimizer, prox)."""
    trainer = _trainer("cpu", optimizer, penalty, prox, "torch")
    X, Y = _batch("cpu")
    trainer.train_step(X, Y)  # first step: caches built outside the check
    with HostReads() as mode:
        for _ in range(3):
            trainer.train_step(X, Y)
    assert mode.seen == []


def test_host_read_detector_can_fail():
    with HostReads() as mode:
        x = torch.arange(5.0)
        float(x.sum())
        x[x > 2]
    assert "aten::_local_scalar_dense" in mode.seen
    assert any(name.startswith("aten::index") for name in mode.seen)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("penalty", ["group_lasso", "sparse_group_lasso"])
def test_cuda_step_makes_no_host_sync(optimizer, penalty):  # pragma: no cover
    trainer = _trainer("cuda", optimizer, penalty, "preconditioned", "torch")
    X, Y = _batch("cuda")
    trainer.train_step(X, Y)  # the first step captures the prox graph
    assert trainer.engine._captured_prox() is not None
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            trainer.train_step(X, Y)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_cuda_graph_prox_equals_eager_prox(optimizer):  # pragma: no cover
    graphed, eager = (
        _trainer("cuda", optimizer, "sparse_group_lasso", "preconditioned", "torch")
        for _ in range(2)
    )
    eager.engine.cuda_graphs = False
    X, Y = _batch("cuda")
    for step in range(30):
        graphed.train_step(X, Y)
        eager.train_step(X, Y)
        if step == 15:  # a new penalty: the graph is captured again
            for trainer in (graphed, eager):
                trainer.penalty = make_penalty(
                    "sparse_group_lasso", trainer.penalty.alpha * 3, 0.4
                )
    a, b = graphed.net.theta.detach(), eager.net.theta.detach()
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert torch.equal(a == 0, b == 0)
    assert (a == 0).any()


# --------------------------------------------------------------------------
# choosing an engine, and what a copy of a trainer hands on
# --------------------------------------------------------------------------
def test_engine_is_chosen_by_name_and_again_when_the_name_changes():
    trainer = _trainer("cpu", "adam", "group_lasso", "preconditioned", "auto")
    assert trainer.engine.name == "numba"  # the CPU default
    first = trainer.engine
    assert trainer.engine is first  # chosen once, not per step
    trainer.config.engine = "torch"
    assert trainer.engine.name == "torch"
    with use_engine("torch"):
        auto = _trainer("cpu", "adam", "group_lasso", "preconditioned", "auto")
        assert auto.engine.name == "torch"
    with pytest.raises(ValueError, match="engine must be one of"):
        choose("jax", "cpu")
    with pytest.raises(ValueError, match="cannot run on"):
        choose("numba", "meta")


def test_a_copy_keeps_what_is_not_a_buffer():
    """A copy of a trainer gets a new engine (no shared buffers) that keeps
    the CUDA-graph setting and the Newton starting points of a removal."""
    trainer = _trainer("cpu", "sgd", "group_lasso", "preconditioned", "torch")
    trainer.engine.cuda_graphs = False
    copied = copy.deepcopy(trainer)
    assert copied.engine.cuda_graphs is False
    # the copy's engine views the copy's parameters, not the original's
    copied_theta = copied.engine.buffers().theta
    assert copied_theta.data_ptr() == copied.net.theta.data_ptr()
    assert copied_theta.data_ptr() != trainer.net.theta.data_ptr()

    trainer = _trainer("cpu", "sgd", "group_lasso", "preconditioned", "numba")
    trainer.config.remove_every = "epoch"
    X, Y = _batch("cpu")
    for _ in range(3):
        trainer.train_step(X, Y)
    with torch.no_grad():  # two hidden units of layer 1 lose their outputs
        weights, _ = trainer.net.layout.views(trainer.net.theta)
        weights[1][:, :2] = 0.0
    n_before = trainer.group_map.n_groups
    assert trainer.remove_dead() is not None
    pending = trainer.engine_state["r_state"]
    assert len(pending) == trainer.group_map.n_groups < n_before
    copied = copy.deepcopy(trainer)
    np.testing.assert_array_equal(copied.engine_state["r_state"], pending)
    # the copy's first prox starts its Newton iterations from them, once
    carried = copied.engine_state["r_state"]
    copied.engine.prox(copied.lr)
    assert "r_state" not in copied.engine_state
    assert copied.engine._prox_arrays()[-1] is carried
