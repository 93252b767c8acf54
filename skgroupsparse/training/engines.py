"""How one step is computed: the step engines, chosen once per fit.

A step is the same story on every engine (:meth:`ProximalTrainer.train_step
<skgroupsparse.training.loop.ProximalTrainer.train_step>`): the loss gradient,
the optimizer step, the prox of the penalty, with the components' hooks in
between. An engine computes the three pieces for one network, and owns every
buffer, view and cache they need (the components' NumPy views included:
:meth:`StepEngine.numpy_views`), in one dict; when the network changes (units
removed, a snapshot restored) the trainer calls :meth:`StepEngine.rebind`,
which drops them all. Caches of what changes without a new network (the
penalty at a warm start, the optimizer's buffers) are keyed by the objects
they view and rebuilt when those change. A copy of the trainer gets a new
engine; the little that is not a buffer lives in the trainer's
``engine_state``.
As ``torch.optim.sgd`` picks its single-tensor, foreach or fused
implementation once, :func:`choose` picks an engine once per fit:

* :class:`TorchEngine` (``"torch"``): tensor operations, on the CPU and CUDA;
* :class:`NumbaEngine` (``"numba"``, the CPU default): numba kernels
  (:mod:`skgroupsparse._kernels`) on NumPy views of the buffers.

Where the engines differ on purpose (one place says it): the numba prox solves
in float64 whatever the parameters' dtype, and stops each group's Newton
iteration once its predicted error is below ``1e-15`` (float64 parameters) or
``1e-12`` (float32); the tensor prox
(:func:`~skgroupsparse.penalties.weighted_block_soft_threshold`) runs a fixed
number of iterations, so that it never reads a value back to the host, and
computes the elementwise parts in the parameters' dtype (so a float32 weight
that shrinks below the smallest normal number can be a subnormal on one engine
and zero on the other). Both are within round-off of the exact prox
(``tests/test_prox_engines.py`` checks the bound against a brute-force oracle);
``tests/test_kernels.py`` runs every activation, loss, optimizer and penalty
with a kernel on both engines and compares the steps.

An engine that trains K networks of one shape as one (batched matrix products,
per-model ``alpha``, rows and optimizer state) is a third implementation of
the same methods on stacked buffers.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor

from skgroupsparse import _kernels
from skgroupsparse.network import ACTIVATIONS, LEAKY_SLOPE, LOSSES
from skgroupsparse.training.components import StepContext
from skgroupsparse.training.cuda_graph import CapturedProx
from skgroupsparse.training.sparse_rows import SparseRows

if TYPE_CHECKING:  # pragma: no cover
    from skgroupsparse.groups import GroupMap
    from skgroupsparse.penalties import Penalty
    from skgroupsparse.training.loop import ProximalTrainer
    from skgroupsparse.training.optimizers import FlatOptimizer

__all__ = [
    "ENGINES",
    "NumbaEngine",
    "StepEngine",
    "TorchEngine",
    "choose",
    "prox_groups",
    "use_engine",
]


class StepEngine:
    """How the pieces of a step are computed for one trainer's network.

    Parameters
    ----------
    trainer : ProximalTrainer
        The trainer whose network, optimizer, penalty and groups the engine
        reads (it holds no copy of them).
    """

    #: the name :func:`choose` knows the engine by
    name: ClassVar[str] = ""
    #: whether the engine's matrix products run as BLAS calls from numba
    #: kernels (the thread rule of ``device.cpu_threads_for`` then applies)
    drives_cpu_kernels: ClassVar[bool] = False

    def __init__(self, trainer: ProximalTrainer):
        self.trainer = trainer
        self._cache: dict = {}

    @classmethod
    def runs_on(cls, device: torch.device) -> bool:
        """Whether the engine can run on ``device``.

        Parameters
        ----------
        device : torch.device
            The device of the parameters.

        Returns
        -------
        bool
            True when it can.
        """
        return True

    def rebind(self, groups_kept: Tensor | None = None) -> None:
        """Drop every buffer, view and cache: the network changed.

        Parameters
        ----------
        groups_kept : BoolTensor of shape (n_groups,) or None, default=None
            When units were removed, the groups kept (state carried per group
            is kept for them); None when the network was replaced.
        """
        self._cache.clear()

    def numpy_views(self, owner: str, *tensors: Tensor) -> tuple:
        """NumPy views of CPU tensors, cached until :meth:`rebind`.

        Parameters
        ----------
        owner : str
            Who asks (e.g. ``"optimizer"``): one cache entry each, made again
            when any of its tensors is another object than last time.
        *tensors : Tensor
            CPU tensors (e.g. a component's state).

        Returns
        -------
        tuple of ndarray
            One view (no copy) per tensor, in order.
        """
        cached = self._cache.get(("numpy", owner))
        if cached is None or any(a is not b for a, b in zip(cached[0], tensors)):
            views = tuple(tensor.numpy() for tensor in tensors)
            cached = self._cache[("numpy", owner)] = (tensors, views)
        return cached[1]

    def buffers(self) -> StepContext:
        """The trainer, parameters and gradient buffer of the current network.

        Returns
        -------
        StepContext
            The same object until the network changes (what the components'
            step hooks get); the gradient buffer is the engine's.
        """
        net = self.trainer.net
        cached = self._cache.get("buffers")
        if cached is None or cached[0] is not net.theta:
            theta = net.theta.detach()
            buffers = StepContext(
                self.trainer,
                self,
                theta,
                torch.zeros_like(theta),
                net.layout.switch_segment,
            )
            buffers.arrays = self._arrays(buffers)
            cached = self._cache["buffers"] = (net.theta, buffers)
        return cached[1]

    def _arrays(self, buffers: StepContext) -> tuple | None:
        """What :attr:`StepContext.arrays` holds on this engine."""
        return None

    # -- an epoch ----------------------------------------------------------
    def epoch_data(self, X: Tensor, y: Tensor, perm: Tensor | None) -> tuple:
        """``(X[perm], y[perm])`` in the form :meth:`loss_and_grad` takes.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_inputs)
            The epoch's inputs, with the network's current input columns.
        y : Tensor of shape (n_samples, n_outputs)
            Their targets.
        perm : LongTensor of shape (n_samples,) or None
            The shuffled order; None keeps the order.

        Returns
        -------
        X, y
            The rows in that order, as tensors or arrays (the engine's form).
        """
        if perm is not None:
            perm = perm.to(X.device)
            X, y = X.index_select(0, perm), y.index_select(0, perm)
        return X, y

    def drop_columns(self, X, columns: Tensor):
        """``X`` (from :meth:`epoch_data`) restricted to the input ``columns``.

        Parameters
        ----------
        X : Tensor or ndarray of shape (n_rows, n_inputs)
            Rows as :meth:`epoch_data` gave them.
        columns : LongTensor
            The positions of the input columns kept.

        Returns
        -------
        Tensor or ndarray of shape (n_rows, len(columns))
            The columns kept, in the engine's form.
        """
        if len(columns) < X.shape[1]:
            X = X.index_select(1, columns.to(X.device))
        return X

    def zero(self):
        """A sum of batch losses at zero (on the device: no host read).

        Returns
        -------
        Tensor or float
            Zero, in the form :meth:`accumulate` adds to.
        """
        theta = self.trainer.net.theta
        return torch.zeros((), dtype=theta.dtype, device=theta.device)

    def accumulate(self, total, loss, n: int):
        """``total + n * loss`` (in place where it can).

        Parameters
        ----------
        total : Tensor or float
            The sum so far (from :meth:`zero`).
        loss : Tensor or float
            A batch's mean loss, as :meth:`loss_and_grad` returned it.
        n : int
            The batch's size.

        Returns
        -------
        Tensor or float
            The new sum.
        """
        return total.add_(loss, alpha=n)

    def end_fit(self) -> None:
        """Free what only the fit needed (e.g. a shuffled copy of the data)."""

    # -- a step ------------------------------------------------------------
    def loss_and_grad(self, X, y):
        """Mean batch loss; its gradient goes into ``buffers().grad``.

        Parameters
        ----------
        X : Tensor or ndarray of shape (batch_size, n_inputs)
            The batch, with the network's current input columns.
        y : Tensor or ndarray of shape (batch_size, n_outputs)
            Its targets (as :meth:`SparseMLP.loss_and_grad` takes them).

        Returns
        -------
        Tensor or float
            The mean loss before the step (a 0-d tensor on the device, or a
            float on the numba engine).
        """
        raise NotImplementedError

    def optimizer_step(self, lr: float) -> None:
        """One step of the trainer's optimizer on the current buffers.

        Parameters
        ----------
        lr : float
            The learning rate.
        """
        raise NotImplementedError

    def prox(self, step: float) -> None:
        """The prox of ``step * penalty`` on every group, in place.

        Parameters
        ----------
        step : float
            The prox step (the optimizer's ``prox_step_size``); in the
            optimizer's metric with ``config.prox="preconditioned"``.
        """
        self._tensor_prox(step)

    @torch.no_grad()
    def _tensor_prox(self, step: float | Tensor, bc2: Tensor | None = None) -> None:
        """The prox step in tensor operations: a fixed sequence of kernels.

        No operation reads a value back to the host, so on CUDA the step can
        be captured as a graph (:class:`CapturedProx`), with ``step`` and
        ``bc2`` as 0-d device tensors that the graph reads at every replay.
        """
        tr = self.trainer
        prox_groups(
            self.buffers().theta,
            tr.group_map,
            tr.penalty,
            tr.optimizer,
            tr.config.prox,
            step,
            tr.group_sizes,
            bc2,
        )


def prox_groups(
    theta: Tensor,
    group_map: GroupMap,
    penalty: Penalty,
    optimizer: FlatOptimizer,
    mode: str,
    step: float | Tensor,
    sizes: Tensor,
    bc2: Tensor | None = None,
) -> None:
    """The prox of ``step * penalty`` on every group of ``theta``, in place.

    In the metric of the optimizer's last step with ``mode="preconditioned"``
    (ALGORITHMS.md section 6.3), else Euclidean. Tensor operations only, none
    reading a value back to the host.

    Parameters
    ----------
    theta : Tensor
        The flat parameters (of one network, or of several stacked).
    group_map : GroupMap
        Its groups.
    penalty : Penalty
        The penalty of those groups.
    optimizer : FlatOptimizer
        The optimizer whose metric the preconditioned prox uses.
    mode : {"preconditioned", "decoupled"}
        The prox mode.
    step : float or Tensor
        The prox step.
    sizes : Tensor
        The group sizes the penalty's weights use.
    bc2 : Tensor or None, default=None
        Adam's bias correction as a device tensor (CUDA graphs).
    """
    V = group_map.gather(theta)
    metric = optimizer.metric(bc2) if mode == "preconditioned" else None
    if metric is not None:
        metric = group_map.gather(metric)
    V = penalty.prox(V, step, metric=metric, sizes=sizes)
    group_map.scatter_(theta, V)


class TorchEngine(StepEngine):
    """Every piece of the step in tensor operations, on the CPU or CUDA.

    The loss gradient is :meth:`SparseMLP.loss_and_grad
    <skgroupsparse.network.SparseMLP.loss_and_grad>`, the optimizer step
    :meth:`FlatOptimizer.step
    <skgroupsparse.training.optimizers.FlatOptimizer.step>` (on CUDA, Adam as
    ``torch._fused_adam_``), and the prox the penalty's own
    :meth:`~skgroupsparse.penalties.Penalty.prox`, which on CUDA is captured
    once as a CUDA graph and replayed (``cuda_graphs``). Nothing reads a value
    back to the host inside an epoch.

    Parameters
    ----------
    trainer : ProximalTrainer
        Whose network, optimizer and penalty the step reads.
    """

    name = "torch"

    @property
    def cuda_graphs(self) -> bool:
        """Whether the prox step on CUDA runs as one captured CUDA graph.

        True unless set off, or unless a capture failed; kept in the
        trainer's ``engine_state``, so copies of the trainer keep it.
        """
        return self.trainer.engine_state.get("cuda_graphs", True)

    @cuda_graphs.setter
    def cuda_graphs(self, value: bool) -> None:
        self.trainer.engine_state["cuda_graphs"] = bool(value)

    def loss_and_grad(self, X: Tensor, y: Tensor) -> Tensor:
        tr = self.trainer
        buffers = self.buffers()
        cached = self._cache.get("views")
        if cached is None or cached[0] is not buffers:
            cached = self._cache["views"] = (buffers, tr.net.grad_views(buffers.grad))
        return tr.net.loss_and_grad(X, y, tr.config.loss, buffers.grad, cached[1])

    def optimizer_step(self, lr: float) -> None:
        opt, b = self.trainer.optimizer, self.buffers()
        # off the CPU Adam is torch's fused kernel; on the CPU this engine is
        # the reference, in tensor operations
        if b.theta.device.type != "cpu" and opt.fused_adam_step(b.theta, b.grad, lr):
            return
        opt.step(b.theta, b.grad, lr)

    def prox(self, step: float) -> None:
        captured = self._captured_prox()
        if captured is None:
            self._tensor_prox(step)
        else:
            captured.replay(step, self.trainer.optimizer.metric_spec()[1])

    def _captured_prox(self) -> CapturedProx | None:
        """The prox step as a CUDA graph (captured again when its inputs
        change: a new penalty or optimizer state); None off CUDA."""
        tr = self.trainer
        if not self.cuda_graphs or tr.net.theta.device.type != "cuda":
            return None
        # the graph reads these objects' memory: the same objects, or capture
        # again (compared by identity; the settings by value)
        owners = (
            tr.net.theta,
            tr.optimizer.second,
            tr.penalty,
            tr.group_map,
            tr.group_sizes,
        )
        settings = (tr.config.prox, tr.optimizer.name)
        cache = self._cache.get("graph")
        if (
            cache is not None
            and all(a is b for a, b in zip(cache[0], owners))
            and cache[1] == settings
        ):
            return cache[2]
        self._cache.pop("graph", None)  # free the old graph's memory first
        try:
            captured = CapturedProx(self._tensor_prox, self.buffers().theta)
        except RuntimeError as exc:  # pragma: no cover - needs CUDA
            warnings.warn(
                f"The prox step could not be captured as a CUDA graph ({exc}); "
                "it runs as separate kernels instead (slower, same result).",
                stacklevel=2,
            )
            self.cuda_graphs = False  # and so for copies of the trainer
            return None
        self._cache["graph"] = (owners, settings, captured)
        return captured


class NumbaEngine(StepEngine):
    """The step as numba kernels on NumPy views of the buffers (CPU only).

    The loss gradient is ``_kernels.mlp_loss_and_grad`` (switch networks fold
    their switches in and out around it), SGD, Adamax and RMSprop are
    ``_kernels.optimizer_step`` (Adam stays ``torch._fused_adam_``), and the
    prox of a penalty with
    :meth:`~skgroupsparse.penalties.Penalty.prox_strengths` is
    ``_kernels.prox_l1_group``; other penalties' prox runs in tensor
    operations. The engine keeps the kernels' workspaces, the shuffled copy of
    an epoch's data, and the prox's per-group Newton starting points, which
    survive the removal of units.

    Parameters
    ----------
    trainer : ProximalTrainer
        Its buffers are read through NumPy views (no copies).
    """

    name = "numba"
    drives_cpu_kernels = True

    @classmethod
    def runs_on(cls, device: torch.device) -> bool:
        return torch.device(device).type == "cpu"

    def rebind(self, groups_kept: Tensor | None = None) -> None:
        prox = self._cache.get("prox")
        if groups_kept is not None and prox is not None and prox[1] is not None:
            # the Newton iteration's starting points of the groups kept
            kept = prox[1][-1][groups_kept.cpu().numpy()]
            self.trainer.engine_state["r_state"] = kept
        super().rebind(groups_kept)

    def _arrays(self, buffers: StepContext) -> tuple:
        return buffers.theta.numpy(), buffers.grad.numpy()

    def epoch_data(self, X: Tensor, y: Tensor, perm: Tensor | None) -> tuple:
        if isinstance(X, SparseRows):  # made dense batch by batch, as arrays
            if perm is not None:
                X, y = X.index_select(0, perm), y.index_select(0, perm)
            return X.numpy_rows(), np.ascontiguousarray(y.numpy())
        # shuffled into buffers kept between epochs: no page faults of a
        # fresh copy per epoch
        X_np, y_np = np.ascontiguousarray(X.numpy()), np.ascontiguousarray(y.numpy())
        if perm is None:
            return X_np, y_np
        buffers = self._cache.get("epoch")
        if (
            buffers is None
            or buffers[0].shape != X_np.shape
            or buffers[1].shape != y_np.shape
        ):
            buffers = self._cache["epoch"] = (np.empty_like(X_np), np.empty_like(y_np))
        index = perm.numpy()
        np.take(X_np, index, axis=0, out=buffers[0])
        np.take(y_np, index, axis=0, out=buffers[1])
        return buffers

    def drop_columns(self, X: np.ndarray, columns: Tensor) -> np.ndarray:
        if isinstance(X, SparseRows):
            return X.index_select(1, columns)
        return np.ascontiguousarray(X[:, columns.numpy()])

    def zero(self) -> float:
        return 0.0

    def accumulate(self, total: float, loss: float, n: int) -> float:
        return total + loss * n

    def end_fit(self) -> None:
        self._cache.pop("epoch", None)

    def loss_and_grad(self, X, y) -> float:
        if isinstance(X, Tensor):
            X, y = np.ascontiguousarray(X.numpy()), np.ascontiguousarray(y.numpy())
        theta, grad = self.buffers().arrays
        spec = self._loss_spec(len(X))
        layout = self.trainer.net.layout
        if not layout.switches:
            return _kernels.mlp_loss_and_grad(theta, grad, X, y, *spec)
        theta_eff, grad_eff = self._switch_arrays(layout.n_plain, theta.dtype)
        _kernels.switch_effective(theta, theta_eff, spec[0], layout.n_plain)
        value = _kernels.mlp_loss_and_grad(theta_eff, grad_eff, X, y, *spec)
        _kernels.switch_chain(theta, grad_eff, grad, spec[0], layout.n_plain)
        return value

    def _loss_spec(self, rows: int) -> tuple:
        """The loss kernel's arguments after the data, with its workspace."""
        cached = self._cache.get("loss")
        if cached is None or cached[0] < rows:
            tr = self.trainer
            # activations and errors live in one buffer kept between steps,
            # sized for ``capacity`` samples
            capacity = max(rows, min(int(tr.config.batch_size), 1 << 16))
            sizes = tr.net.layout.layer_sizes
            dtype = self.buffers().arrays[0].dtype
            work = np.empty(_kernels.workspace_size(sizes, capacity), dtype=dtype)
            spec = (
                np.asarray(sizes, dtype=np.int64),
                ACTIVATIONS[tr.net.activation].code,
                LOSSES.index(tr.config.loss),
                LEAKY_SLOPE,
                work,
            )
            cached = self._cache["loss"] = (capacity, spec)
        return cached[1]

    def _switch_arrays(self, n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Buffers of the effective (switch-folded) parameters and their gradient."""
        buffers = self._cache.get("switch")
        if buffers is None:
            buffers = self._cache["switch"] = (np.zeros(n, dtype), np.zeros(n, dtype))
        return buffers

    def optimizer_step(self, lr: float) -> None:
        opt, b = self.trainer.optimizer, self.buffers()
        if not opt.fused_adam_step(b.theta, b.grad, lr):
            buffers = self.numpy_views("optimizer", opt.first, opt.second)
            self.kernel_step(opt, *b.arrays, *buffers, lr)

    @staticmethod
    def kernel_step(opt, theta, grad, first, second, lr: float) -> None:
        """SGD, Adamax or RMSprop as one numba kernel on NumPy views.

        Parameters
        ----------
        opt : FlatOptimizer
            The optimizer (its settings; ``n_steps`` is advanced).
        theta, grad, first, second : ndarray
            Views of the parameters, the gradient and ``opt``'s buffers.
        lr : float
            The learning rate.
        """
        opt.n_steps += 1
        _kernels.optimizer_step(
            opt.code,
            theta,
            grad,
            first,
            second,
            lr,
            opt.momentum,
            opt.nesterov,
            opt.beta_1,
            opt.beta_2,
            opt.epsilon,
            opt.n_steps,
        )

    def prox(self, step: float) -> None:
        arrays = self._prox_arrays()
        if arrays is None:  # no kernel for this penalty
            self._tensor_prox(step)
            return
        opt = self.trainer.optimizer
        code, bc2, eps = opt.metric_spec()
        if self.trainer.config.prox != "preconditioned":
            code = 0
        theta = arrays[0]
        _kernels.prox_l1_group(
            *arrays[:8],
            step,
            arrays[8],
            code,
            bc2,
            eps,
            *arrays[9:],
            1e-15 if theta.dtype == np.float64 else 1e-12,
        )

    def _prox_arrays(self) -> tuple | None:
        """The prox kernel's arrays; None when the penalty has no kernel.

        Rebuilt when the penalty (a warm start) or the optimizer's buffers
        change; the key holds the penalty itself (compared by identity), so
        its id cannot be reused while cached.
        """
        tr = self.trainer
        second = tr.optimizer.second
        key = (tr.penalty, second, tr.net.theta)
        cache = self._cache.get("prox")
        if cache is not None and all(a is b for a, b in zip(cache[0], key)):
            return cache[1]
        strengths = tr.penalty.prox_strengths(tr.group_sizes)
        arrays = None
        if strengths is not None:
            group_map = tr.group_map
            r_state = tr.engine_state.pop("r_state", None)
            if r_state is None or len(r_state) != group_map.n_groups:
                r_state = np.zeros(group_map.n_groups)
            index = group_map.index.numpy()
            sizes = group_map.sizes.numpy()
            first, blocks = _kernels.group_plan(index, sizes)
            block_size = int((blocks[:, 1] * blocks[:, 2]).max(initial=0))
            width = index.shape[1]
            arrays = (
                self.buffers().arrays[0],
                index,
                sizes,
                first,
                blocks,
                *(x.double().contiguous().numpy() for x in strengths),
                second.numpy(),
                np.zeros(width),
                np.zeros(width),
                np.zeros(block_size),
                np.zeros(block_size),
                r_state,
            )
        self._cache["prox"] = (key, arrays)
        return arrays


ENGINES = {engine.name: engine for engine in (NumbaEngine, TorchEngine)}
_preferred: list[str] = []


@contextlib.contextmanager
def use_engine(name: str):
    """Make ``name`` the engine of every fit that does not name one.

    Parameters
    ----------
    name : {"numba", "torch"}
        A key of :data:`ENGINES`.

    Yields
    ------
    None
        The fits run inside the ``with`` block.
    """
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {name!r}")
    _preferred.append(name)
    try:
        yield
    finally:
        _preferred.pop()


def choose(name: str, device: torch.device | str) -> type[StepEngine]:
    """The engine class a fit on ``device`` uses.

    Parameters
    ----------
    name : {"auto", "numba", "torch"}
        ``"auto"``: the innermost :func:`use_engine`, else numba on the CPU and
        torch elsewhere.
    device : torch.device or str
        The device of the parameters.

    Returns
    -------
    type
        A subclass of :class:`StepEngine`.

    Raises
    ------
    ValueError
        For an unknown name, or an engine that cannot run on ``device``.
    """
    device = torch.device(device)
    if name == "auto":
        name = _preferred[-1] if _preferred else "numba"
        if not ENGINES[name].runs_on(device):
            name = "torch"
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {name!r}")
    engine = ENGINES[name]
    if not engine.runs_on(device):
        raise ValueError(f"the {name} engine cannot run on {device}")
    return engine
