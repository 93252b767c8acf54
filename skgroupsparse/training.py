"""The proximal training loop.

One step on a mini-batch ``B`` is, for every optimizer::

    g      = grad F_B(theta)                 (hand-written backward pass)
    z      = optimizer_step(theta, g, lr)    (SGD, Adam, Adamax or RMSprop)
    theta  = prox(z)                         (all groups at once)

What ``prox`` computes (ALGORITHMS.md section 6.3):

* ``sgd``: ``prox_{lr * Omega}(z)``, the exact stochastic proximal-gradient step
  (with ``momentum=0`` the textbook SPG). With momentum ``mu`` the prox
  follows the momentum step with step ``lr / (1 - mu)``, the effective length
  of a momentum step, so that fixed points are stationary points of the
  objective with the ``alpha`` the user gave (with ``lr`` alone they would be
  those of ``(1 - mu) * alpha``).
* ``adam``, ``adamax``, ``rmsprop`` with ``prox="preconditioned"`` (default):
  the exact prox in the optimizer's own metric ``D`` (Adam:
  ``D = sqrt(v_hat) + eps``; Adamax: the infinity-norm accumulator; RMSprop:
  ``sqrt(v) + eps``), i.e. ``argmin_x Omega(x) + 1/(2 lr) ||x - z||_D^2``
  (ProxGen, Yun et al. 2021). For L1 this is a soft threshold with
  per-coordinate step ``lr / D_i``; for a group it is solved by
  :func:`~skgroupsparse.penalties.weighted_block_soft_threshold`.
* ``prox="decoupled"``: the heuristic Euclidean prox ``prox_{lr * Omega}(z)``
  after an adaptive step (AdamW-style). It gives exact zeros but is not a prox
  of a fixed objective in the optimizer's metric, so its ``alpha`` is not
  comparable with the SGD one. Offered only as a named option.

With ``split_penalty`` set the loop runs the relaxed variable splitting method
(RVSM; Dinh and Xin 2020, ALGORITHMS.md section 5.2) on the grouped weights: it
minimises ``F(w) + P(u) + beta / 2 ||w - u||^2`` with ``u = prox_{P / beta}(w)``
after every step, in the identity metric whatever the optimizer, so that every
closed-form prox serves. The gradient step (and the ``penalty`` prox, e.g. the
group lasso of the nonconvex sparse group lasso) acts on ``w``; ``u`` is the
model. The network holds ``u`` between steps (predictions, counts and removal
see the model) and ``w`` is kept aside; ``beta`` is multiplied by ``growth``
every ``every`` epochs.

The loop never reads a value back to the host inside an epoch: batch losses
are summed on the device and read once per epoch.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

try:  # fused CPU kernels; the tensor code below is the fallback and reference
    from skgroupsparse import _kernels
except ImportError:  # pragma: no cover - numba missing
    _kernels = None
from skgroupsparse.groups import GroupMap, build_group_map, build_switch_group_map
from skgroupsparse.network import (
    LEAKY_SLOPE,
    SparseMLP,
    kept_units,
    live_units,
    select_units,
)
from skgroupsparse.penalties import Penalty

__all__ = [
    "BLAS_THREADS_FROM",
    "OPTIMIZERS",
    "CapturedProx",
    "SCHEDULES",
    "PROX_MODES",
    "FlatOptimizer",
    "SignVarianceDetector",
    "TrainConfig",
    "ProximalTrainer",
    "TrainingDiverged",
    "ThresholdReading",
    "cpu_kernels_drive",
    "cpu_threads_for",
    "optimality_residual",
    "read_thresholds",
    "resolve_device",
]

OPTIMIZERS = ("sgd", "adam", "adamax", "rmsprop")
SCHEDULES = ("constant", "invscaling", "adaptive")
PROX_MODES = ("preconditioned", "decoupled")


def cpu_kernels_drive(device: torch.device | str, enabled: bool | None = None) -> bool:
    """Whether a step on ``device`` runs as the numba kernels.

    Parameters
    ----------
    device : torch.device or str
        The device of the parameters.
    enabled : bool or None, default=None
        Whether the optimizer may use them (its ``use_kernels``); None reads
        ``FlatOptimizer.use_kernels``.

    Returns
    -------
    bool
        True on the CPU when numba is installed and the kernels are enabled.
    """
    if enabled is None:
        enabled = FlatOptimizer.use_kernels
    return enabled and _kernels is not None and torch.device(device).type == "cpu"


#: below this many multiply-adds in a batch's matrix products, BLAS runs on one
#: thread while the kernels drive a fit: such products are too small for a
#: thread pool to pay for its synchronisation, and on a machine in use they
#: wait for a second core (the main job's digits fit, hidden (64, 32), batch
#: 200: 4% faster with all BLAS threads on a quiet 2-core machine, 2.9x slower
#: with another process busy on one core); above it BLAS keeps all of its
#: threads (letter, hidden (512, 256, 128), batch 1024: one thread is 1.4x
#: slower). Figures: ``benchmarks/results/cpu_engine.md``.
BLAS_THREADS_FROM = 2**23


@contextlib.contextmanager
def cpu_threads_for(kernels: bool, work: int | None = None):
    """Give the cores to one thread pool for a CPU fit; restore after.

    Two pools can drive a CPU step: torch's OpenMP pool (the tensor engine) and
    the BLAS pool that the numba kernels' matrix products call (through SciPy).
    When the kernels drive the step, torch runs only light work (fused Adam,
    the shuffling, the set-up), yet its OpenMP threads spin-wait after every
    parallel call and fight the BLAS threads for the cores: on 2 cores, 3
    epochs of ``letter`` with hidden (256, 128) at batch 256 took 1.9 s with
    both pools as the process had them and 0.24 s with this rule
    (``benchmarks/cpu_engine.py``); the issue measured up to 7x on 16 cores.
    So with the kernels torch always runs on one thread, and the cores belong
    to BLAS: all of its threads when a batch's products need at least
    :data:`BLAS_THREADS_FROM` multiply-adds (``work``), one below, where a
    thread pool costs more than it gives. With the tensor engine torch keeps
    its threads and BLAS is not called.

    The thread settings are process-wide: only the main thread changes them, so
    that fits running in parallel threads never race to restore them.

    The main thread also flushes subnormal floats to zero for the fit
    (``torch.set_flush_denormal``): Adam's first moment decays geometrically
    on coordinates whose gradient vanishes, and float32 subnormals made the
    element-wise work several times slower (1.7x on a whole fit); it is put
    back as it was after the fit.

    Parameters
    ----------
    kernels : bool
        Whether the numba kernels drive the step (:func:`cpu_kernels_drive`;
        nothing changes when they do not, e.g. on CUDA).
    work : int or None, default=None
        Multiply-adds of one batch's matrix products (batch size times the
        number of weights); None leaves BLAS as it is (the set-up of a fit).

    Yields
    ------
    None
        The fit runs inside the ``with`` block.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    if not kernels or not in_main_thread:
        yield
        return
    old = torch.get_num_threads()
    flushed = _subnormals_flushed()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    blas = contextlib.nullcontext()
    if work is not None and work < BLAS_THREADS_FROM:
        blas = threadpool_limits(limits=1, user_api="blas")
    try:
        with blas:
            yield
    finally:
        torch.set_flush_denormal(flushed)
        torch.set_num_threads(old)


def _subnormals_flushed() -> bool:
    """Whether this thread flushes subnormal floats to zero (FTZ or DAZ)."""
    subnormal = np.array([1e-39], dtype=np.float32)
    return bool((subnormal * np.float32(1.0))[0] == 0.0)


class TrainingDiverged(ValueError):
    """The loss or the weights became non-finite."""


class FlatOptimizer:
    """First-order optimizers on one flat parameter vector, updated in place.

    The maths follows ``torch.optim`` (SGD with heavy-ball or Nesterov
    momentum, Adam and Adamax with bias correction, RMSprop without momentum).
    :meth:`metric` returns the diagonal ``D`` of the last step, written so that
    the step was ``theta -= lr * D^-1 * direction`` (``None`` for SGD).

    Adam runs as ``torch._fused_adam_`` (the kernel behind
    ``torch.optim.Adam(fused=True)``) where torch has it; on the CPU the other
    optimizers run as one numba kernel (:mod:`skgroupsparse._kernels`). With
    ``use_kernels = False``, or where neither applies, the step is written in
    tensor operations (the reference).

    Parameters
    ----------
    name : {"sgd", "adam", "adamax", "rmsprop"}
        The optimizer (one of ``OPTIMIZERS``).
    theta : Tensor of shape (n_params + 1,)
        The flat parameter vector; the state buffers are made like it (shape,
        dtype, device), at zero.
    momentum : float, default=0.9
        SGD's momentum ``mu`` (0: plain SGD).
    nesterov : bool, default=True
        Nesterov momentum for SGD (else heavy ball).
    beta_1 : float, default=0.9
        Decay of the first-moment estimate (Adam, Adamax).
    beta_2 : float, default=0.999
        Decay of the second-moment estimate (Adam), of the infinity-norm
        accumulator (Adamax), or RMSprop's smoothing constant.
    epsilon : float, default=1e-8
        Added for numerical stability: to ``sqrt(v / (1 - beta_2**t))``
        (Adam), to ``sqrt(v)`` (RMSprop) or to ``|grad|`` before the maximum
        (Adamax).

    Attributes
    ----------
    n_steps : int
        Steps taken.
    first : Tensor of shape (n_params + 1,)
        Momentum buffer (SGD) or first-moment estimate ``exp_avg`` (Adam,
        Adamax).
    second : Tensor of shape (n_params + 1,)
        Second-moment estimate ``exp_avg_sq`` (Adam, RMSprop) or infinity-norm
        accumulator (Adamax); unused by SGD.
    """

    use_kernels = True

    def __init__(
        self,
        name: str,
        theta: Tensor,
        momentum: float = 0.9,
        nesterov: bool = True,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
    ):
        if name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
        self.name = name
        self.momentum, self.nesterov = momentum, nesterov
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.n_steps = 0
        zeros = torch.zeros_like(theta)
        self.first = zeros.clone()  # momentum buffer / exp_avg
        self.second = zeros  # exp_avg_sq / infinity norm (unused by sgd)
        self._step_count = torch.zeros((), dtype=torch.float32, device=theta.device)

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_arrays", None)  # NumPy views of the buffers: rebuilt on demand
        return state

    def _kernel_arrays(self, theta: Tensor, grad: Tensor) -> tuple:
        arrays = vars(self).get("_arrays")
        key = (theta.data_ptr(), grad.data_ptr(), self.first.data_ptr())
        if arrays is None or arrays[0] != key:
            tensors = (theta, grad, self.first, self.second)
            arrays = (key, tuple(x.numpy() for x in tensors))
            self._arrays = arrays
        return arrays[1]

    def step(self, theta: Tensor, grad: Tensor, lr: float) -> None:
        """Update ``theta`` in place by one step of the optimizer.

        Parameters
        ----------
        theta : Tensor of shape (n_params + 1,)
            The flat parameters (a tensor that does not require grad), shaped
            like the state buffers; updated in place.
        grad : Tensor of shape (n_params + 1,)
            The gradient at ``theta``.
        lr : float
            The learning rate.
        """
        self.n_steps += 1
        t = self.n_steps
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        if self.use_kernels and self.name == "adam" and _HAS_FUSED_ADAM:
            self._step_count.fill_(t)
            torch._fused_adam_(
                [theta],
                [grad],
                [self.first],
                [self.second],
                [],
                [self._step_count],
                lr=lr,
                beta1=b1,
                beta2=b2,
                weight_decay=0.0,
                eps=eps,
                amsgrad=False,
                maximize=False,
            )
            return
        if self.use_kernels and _kernels is not None and theta.device.type == "cpu":
            code = _kernels.OPTIMIZER_CODES[self.name]
            arrays = self._kernel_arrays(theta, grad)
            _kernels.optimizer_step(
                code, *arrays, lr, self.momentum, self.nesterov, b1, b2, eps, t
            )
            return
        if self.name == "sgd":
            if self.momentum == 0:
                theta.add_(grad, alpha=-lr)
                return
            buf = self.first.mul_(self.momentum).add_(grad)
            direction = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
            theta.add_(direction, alpha=-lr)
        elif self.name == "adam":
            self.first.lerp_(grad, 1 - b1)
            self.second.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            theta.addcdiv_(self.first, self.metric(), value=-lr / (1 - b1**t))
        elif self.name == "adamax":
            self.first.lerp_(grad, 1 - b1)
            torch.maximum(self.second.mul_(b2), grad.abs().add_(eps), out=self.second)
            theta.addcdiv_(self.first, self.second, value=-lr / (1 - b1**t))
        else:  # rmsprop, smoothing constant beta_2
            self.second.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            theta.addcdiv_(grad, self.metric(), value=-lr)

    def prox_step_size(self, lr: float) -> float:
        """The step that the prox after :meth:`step` must use (see ``prox_step``).

        Parameters
        ----------
        lr : float
            The learning rate of the step.

        Returns
        -------
        float
            ``lr / (1 - momentum)`` for SGD with momentum, else ``lr``.
        """
        if self.name == "sgd" and self.momentum > 0:
            return lr / (1.0 - self.momentum)
        return lr

    def metric_spec(self) -> tuple[int, float, float]:
        """How the diagonal ``D`` of the last step follows from ``second``.

        Returns
        -------
        code : int
            0: no metric (SGD); 1: ``sqrt(second / bc2) + eps`` (Adam);
            2: ``second`` (Adamax); 3: ``sqrt(second) + eps`` (RMSprop).
        bc2 : float
            The bias correction ``1 - beta_2**n_steps`` (Adam; 1.0 otherwise).
        eps : float
            The optimizer's ``epsilon``.
        """
        code = _METRIC_CODES[self.name]
        bc2 = 1.0 - self.beta_2**self.n_steps if self.name == "adam" else 1.0
        return code, bc2, self.epsilon

    def metric(self, bc2: Tensor | None = None) -> Tensor | None:
        """The diagonal ``D`` of the last step, from the optimizer state.

        Parameters
        ----------
        bc2 : Tensor or None, default=None
            Adam's bias correction as a 0-d tensor on the device (a CUDA graph
            reads it from there at every replay); None: from ``n_steps``.

        Returns
        -------
        Tensor of shape (n_params + 1,) or None
            ``D`` (see :meth:`metric_spec`): a new tensor, except for Adamax
            whose ``D`` is the buffer ``second`` itself; None for SGD.
        """
        code, bc2_now, eps = self.metric_spec()
        if code == 0:
            return None
        if code == 1:
            return self.second.div(bc2_now if bc2 is None else bc2).sqrt_().add_(eps)
        if code == 2:
            return self.second
        return self.second.sqrt().add_(eps)


_METRIC_CODES = {"sgd": 0, "adam": 1, "adamax": 2, "rmsprop": 3}
_HAS_FUSED_ADAM = hasattr(torch, "_fused_adam_")


class SignVarianceDetector:
    """ShrinkNets' sign-variance death detector for switches (ALGORITHMS.md 3.5c).

    In this mode the switches' l1 penalty is applied as a subgradient (as in
    the ShrinkNets experiments), so switches do not reach zero by themselves:
    after every optimizer step, for each switch ``s = sign(beta)``,
    ``d = s - m``, ``v <- gamma v + (1 - gamma) d^2``, ``m <- gamma m +
    (1 - gamma) s``; once ``v > tau`` the switch is dead for good and held at
    zero. ``m`` starts at ``sign(beta_0)`` and ``v`` at 0. With ``gamma = 0``
    the first sign change kills (one flip gives ``v = 4``).

    Parameters
    ----------
    strengths : Tensor of shape (n_switches,)
        The l1 strength of every switch (the order of ``FlatLayout`` switches).
    inertia : float, default=0.99
        ``gamma`` in [0, 1).
    threshold : float, default=0.5
        ``tau`` > 0.

    Attributes
    ----------
    m, v : Tensor of shape (n_switches,)
        The running sign mean and variance; None until :meth:`reset`.
    alive : BoolTensor of shape (n_switches,)
        False for the switches found dead; None until :meth:`reset`.
    """

    def __init__(
        self, strengths: Tensor, inertia: float = 0.99, threshold: float = 0.5
    ):
        self.strengths = strengths
        self.inertia = float(inertia)
        self.threshold = float(threshold)
        self.m = self.v = self.alive = None

    def reset(self, switches: Tensor) -> None:
        """Start the statistics from the current switch values.

        Parameters
        ----------
        switches : Tensor of shape (n_switches,)
            The switches ``beta`` (the switch segment of the parameters).
        """
        self.m = torch.sign(switches).to(self.strengths.dtype)
        self.v = torch.zeros_like(self.m)
        self.alive = torch.ones(
            switches.shape, dtype=torch.bool, device=switches.device
        )

    def penalty_value(self, switches: Tensor) -> Tensor:
        """The switches' l1 term of the objective, ``sum(strengths * |beta|)``.

        Parameters
        ----------
        switches : Tensor of shape (n_switches,)
            The switches ``beta``.

        Returns
        -------
        Tensor
            The l1 term, a 0-d tensor.
        """
        return (self.strengths * switches.abs()).sum()

    def add_subgradient(self, switches: Tensor, grad: Tensor) -> None:
        """Add the l1 subgradient to the switches' gradient, in place.

        ``grad += strengths * sign(beta)`` on the switch coordinates. The CPU
        kernel path runs ``_kernels.add_l1_subgradient`` instead.

        Parameters
        ----------
        switches : Tensor of shape (n_switches,)
            The switches ``beta``.
        grad : Tensor of shape (n_switches,)
            The loss gradient of the switches; updated in place.
        """
        grad.addcmul_(torch.sign(switches), self.strengths)

    def update(self, switches: Tensor) -> None:
        """Update the statistics after a step; zero the dead switches in place.

        The CPU kernel path runs ``_kernels.sign_variance_update`` instead.

        Parameters
        ----------
        switches : Tensor of shape (n_switches,)
            The switches ``beta`` after the step; the dead ones are set to zero
            in place.
        """
        gamma, tau = self.inertia, self.threshold
        s = torch.sign(switches)
        d = s - self.m
        self.v.mul_(gamma).addcmul_(d, d, value=1 - gamma)
        self.m.mul_(gamma).add_(s, alpha=1 - gamma)
        self.alive &= self.v <= tau
        switches.mul_(self.alive)

    def select(self, keep: Tensor) -> None:
        """Keep the statistics of the switches in ``keep``.

        Parameters
        ----------
        keep : BoolTensor of shape (n_switches,)
            True for the switches whose units are kept.
        """
        for name in ("strengths", "m", "v", "alive"):
            setattr(self, name, getattr(self, name)[keep.to(self.m.device)])


#: caches of a trainer that belong to one network: dropped when it changes
_STEP_CACHES = (
    "_views",
    "_prox_arrays",
    "_switch_buffers",
    "_loss_spec",
    "_prox_graph",
)


class CapturedProx:
    """A prox step captured as one CUDA graph, replayed at every step.

    On a GPU the exact prox in Adam's metric is about a hundred small kernels
    (the Newton iteration of
    :func:`~skgroupsparse.penalties.weighted_block_soft_threshold` runs a fixed
    number of times over all groups at once); launched one by one from Python
    they cost more than the network's own step. Captured once,
    they run as one launch, with no host synchronisation.

    Parameters
    ----------
    body : callable
        ``body(step, bc2)`` applies the prox in place, reading the prox step
        and Adam's bias correction from the two 0-d device tensors it is
        given; it must not synchronise with the host.
    theta : Tensor
        The flat parameters that ``body`` changes: kept through the warm-up
        run that precedes the capture.
    """

    def __init__(self, body: Callable[[Tensor, Tensor], None], theta: Tensor):
        device = theta.device
        self.step = torch.zeros((), dtype=theta.dtype, device=device)
        self.bc2 = torch.ones((), dtype=theta.dtype, device=device)
        saved = theta.clone()
        # a warm-up run on a side stream (lazy initialisation, allocator
        # pools) before capture, as torch.cuda.graphs asks; its change to
        # theta is undone
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            body(self.step, self.bc2)
        torch.cuda.current_stream(device).wait_stream(stream)
        theta.copy_(saved)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            body(self.step, self.bc2)

    def replay(self, step: float, bc2: float) -> None:
        """Run the captured prox with this step and bias correction.

        Parameters
        ----------
        step : float
            The prox step (see :meth:`FlatOptimizer.prox_step_size`).
        bc2 : float
            Adam's bias correction ``1 - beta_2**t`` (unused by the others).
        """
        self.step.fill_(step)  # fills take the value as a kernel argument
        self.bc2.fill_(bc2)
        self.graph.replay()


@dataclass
class TrainConfig:
    """Hyper-parameters of the loop (names follow ``MLPClassifier``).

    Parameters
    ----------
    loss : {"squared", "softmax", "logistic"}
        The loss (one of :data:`~skgroupsparse.network.LOSSES`).
    optimizer : {"adam", "sgd", "adamax", "rmsprop"}, default="adam"
        The optimizer (see :class:`FlatOptimizer`).
    learning_rate_init : float, default=1e-3
        The initial learning rate.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The schedule: constant; ``learning_rate_init / (t + 1) ** power_t``
        after every epoch (``t``: samples seen); or divided by 5 at every
        plateau (see :meth:`ProximalTrainer.trigger_stopping`).
    power_t : float, default=0.5
        The exponent of the ``"invscaling"`` schedule.
    momentum : float, default=0.9
        SGD's momentum.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD.
    beta_1 : float, default=0.9
        Adam's and Adamax's ``beta_1`` (see :class:`FlatOptimizer`).
    beta_2 : float, default=0.999
        Adam's and Adamax's ``beta_2``, RMSprop's smoothing constant.
    epsilon : float, default=1e-8
        The optimizers' ``epsilon``.
    batch_size : int, default=200
        Samples per mini-batch (at most the number of samples).
    tol : float, default=1e-4
        An epoch that improves the score or the objective by less counts as
        no improvement.
    n_iter_no_change : int, default=10
        Training stops (``"adaptive"``: the rate drops) once more epochs than
        this in a row brought no improvement.
    shuffle : bool, default=True
        Shuffle the samples before every epoch.
    prox : {"preconditioned", "decoupled"}, default="preconditioned"
        The prox in the optimizer's metric, or the Euclidean one after an
        adaptive step (see the module docstring).
    verbose : bool, default=False
        Print the progress after every epoch.
    remove_every : int, "epoch" or None, default=None
        Remove dead units: None (never), ``"epoch"`` (after every epoch) or
        ``k`` (after every ``k`` mini-batches and after every epoch).
    split_beta : float, default=1.0
        RVSM (with ``split_penalty``): the initial ``beta``.
    split_growth : float, default=1.25
        RVSM: the factor by which ``beta`` grows.
    split_every : int, default=20
        RVSM: the epochs between growths.
    """

    loss: str
    optimizer: str = "adam"
    learning_rate_init: float = 1e-3
    learning_rate: str = "constant"
    power_t: float = 0.5
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    batch_size: int = 200
    tol: float = 1e-4
    n_iter_no_change: int = 10
    shuffle: bool = True
    prox: str = "preconditioned"
    verbose: bool = False
    remove_every: int | str | None = None
    split_beta: float = 1.0
    split_growth: float = 1.25
    split_every: int = 20


@dataclass
class ProximalTrainer:
    """Trains a :class:`SparseMLP` by proximal mini-batch steps.

    Holds everything that must survive between ``partial_fit`` calls: the
    network, the optimizer state, the learning rate, the stopping counters
    and, when units are removed while training, which of the original units
    the network still has (``kept``).

    Removing units (``config.remove_every``) is exact: the units removed are
    those of :func:`~skgroupsparse.network.kept_units` (their output cannot
    reach the outputs), and the weights, the switches, the optimizer state,
    the group map and the penalty's per-group strengths are all sliced with
    the same indices. Training on goes exactly as it would on the full network
    with the removed coordinates held at zero. Group weights keep their
    original sizes (the objective does not change when a unit goes).

    Parameters
    ----------
    net : SparseMLP
        The network trained (replaced by a smaller one when units are
        removed).
    group_map : GroupMap
        The groups of ``net``'s parameters that ``penalty`` acts on.
    penalty : Penalty or None
        The penalty whose prox follows every optimizer step (with RVSM: the
        one on ``w``). None: no prox steps (RVSM with a penalty that acts on
        ``u`` only).
    config : TrainConfig
        The hyper-parameters.
    detector : SignVarianceDetector or None, default=None
        ShrinkNets' death detector, which applies the switches' l1 term as a
        subgradient; None: no detector.
    loss_curve : list of float, optional
        The objective (mean loss plus penalty) of every epoch; starts empty.
    validation_scores : list of float, optional
        The validation score of every epoch (early stopping); starts empty.
    history : list of dict, optional
        One row per epoch, as the estimators' ``history_``; starts empty.
    best_loss : float, default=inf
        The lowest epoch objective so far (without a validation score).
    best_validation_score : float, default=-inf
        The best validation score so far.
    no_improvement_count : int, default=0
        Epochs in a row that improved by less than ``config.tol``.
    n_iter : int, default=0
        Epochs run.
    t : int, default=0
        Training samples seen.
    stop_rule : callable or None, default=None
        Called with the trainer after every mini-batch; the training ends as
        soon as it returns True (Shen et al.'s Algorithm 3 checks a target
        sparsity this way).
    split_penalty : Penalty or None, default=None
        The penalty of the split variable ``u`` (RVSM); None: plain prox
        steps.

    Attributes
    ----------
    optimizer : FlatOptimizer
        The optimizer and its state.
    lr : float
        The current learning rate.
    original_sizes : tuple of int
        The layer sizes of the network before any unit was removed.
    kept : list of LongTensor
        Per layer of units but the outputs, the original indices of the units
        the network still has.
    beta : float
        RVSM only: the current coupling weight ``beta``.
    relaxed : Tensor of shape (n_params + 1,)
        RVSM only: the relaxed variable ``w``, laid out like ``net.theta``.
    interrupted : bool
        Whether Ctrl-C ended the last :meth:`fit`.
    rule_fired : bool
        Whether ``stop_rule`` ended the last :meth:`fit` (or, during a fit,
        the last epoch).
    """

    net: SparseMLP
    group_map: GroupMap
    penalty: Penalty | None
    config: TrainConfig
    detector: SignVarianceDetector | None = None
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    history: list = field(default_factory=list)
    best_loss: float = float("inf")
    best_validation_score: float = -float("inf")
    no_improvement_count: int = 0
    n_iter: int = 0
    t: int = 0
    stop_rule: Callable[[ProximalTrainer], bool] | None = None
    split_penalty: Penalty | None = None

    #: on CUDA, run the tensor prox step as one captured CUDA graph
    use_cuda_graphs = True

    def __post_init__(self):
        self.lr = float(self.config.learning_rate_init)
        self.reset_optimizer()
        self._grad = torch.zeros_like(self.net.theta.detach())
        self._best = None
        # group sizes as floats of the parameter dtype: no conversion per step.
        # They stay the original sizes when units are removed (group weights).
        self._sizes = self.group_map.sizes.to(self._grad.dtype)
        self.original_sizes = self.net.layout.layer_sizes
        self.kept = [torch.arange(n) for n in self.original_sizes[:-1]]
        if self.detector is not None:
            self.detector.reset(self._switch_segment(self.net.theta.detach()))
        if self.split_penalty is not None:
            if self.config.remove_every is not None:
                raise ValueError(
                    "removing units while training is not supported with RVSM"
                )
            self.beta = float(self.config.split_beta)
            self.relaxed = self.net.theta.detach().clone()
            self._project()

    # -- RVSM -------------------------------------------------------------
    @torch.no_grad()
    def _project(self) -> None:
        """``u = prox_{P / beta}(w)`` in place, the network holding ``w``."""
        theta = self.net.theta.detach()
        V = self.group_map.gather(theta)
        U = self.split_penalty.prox(V, 1.0 / self.beta, sizes=self._sizes)
        self.group_map.scatter_(theta, U)

    @torch.no_grad()
    def _split(self) -> None:
        """``u = prox_{P / beta}(w)`` into the network, from the stored ``w``.

        For when the network holds a ``u`` that is out of date (``beta`` or the
        split penalty changed).
        """
        self.net.theta.detach().copy_(self.relaxed)
        self._project()

    @torch.no_grad()
    def _load_relaxed(self) -> None:
        """Put ``w`` back into the network for a gradient step.

        The network held ``u = prox(w)`` on the grouped weights and ``w``
        elsewhere, so ``w - u`` (the coupling direction) is kept on the way.
        """
        theta = self.net.theta.detach()
        coupling = vars(self).get("_coupling")
        if coupling is None:  # RVSM removes no units: the shape never changes
            coupling = self._coupling = torch.empty_like(theta)
        torch.sub(self.relaxed, theta, out=coupling)
        theta.copy_(self.relaxed)

    @torch.no_grad()
    def _add_coupling(self) -> None:
        """``grad += beta (w - u)`` (zero off the grouped weights)."""
        self._grad.add_(self._coupling, alpha=self.beta)

    def __getstate__(self):
        state = dict(vars(self))
        # rebuilt on demand: views do not survive a copy
        for key in (
            "_views",
            "_prox_arrays",
            "_loss_spec",
            "_epoch_buffers",
            "_switch_buffers",
            "_numpy_views",
            "_coupling",
            "_prox_graph",
        ):
            state.pop(key, None)
        return state

    @property
    def views(self) -> tuple:
        """Cached views of the parameters and the gradient buffer."""
        views = vars(self).get("_views")
        if views is None or views[1].data_ptr() != self.net.theta.data_ptr():
            views = (self.net.grad_views(self._grad), self.net.theta.detach())
            self._views = views
        return views

    def _switch_segment(self, flat: Tensor) -> Tensor:
        layout = self.net.layout
        return flat[layout.n_plain : layout.n_params]

    def reset_optimizer(self) -> None:
        """Give the current network a new optimizer state (from ``config``)."""
        c = self.config
        self.optimizer = FlatOptimizer(
            c.optimizer,
            self.net.theta.detach(),
            momentum=c.momentum,
            nesterov=c.nesterovs_momentum,
            beta_1=c.beta_1,
            beta_2=c.beta_2,
            epsilon=c.epsilon,
        )

    # -- one step ---------------------------------------------------------
    def prox_step(self, lr: float) -> None:
        """Apply the prox of ``step * penalty`` to every group, in place.

        ``step`` is the optimizer's effective step: ``lr`` for the adaptive
        optimizers (in their metric) and ``lr / (1 - momentum)`` for SGD with
        momentum, whose steady-state step on a constant gradient is that long.
        With this step a fixed point of "momentum step, then prox" satisfies
        ``0 in grad F + d Omega``, the optimality condition of the objective;
        with ``lr`` alone it would satisfy it for ``(1 - momentum) * alpha``.

        Parameters
        ----------
        lr : float
            The learning rate of the optimizer step just taken.
        """
        if self.penalty is None or self._fused_prox_step(lr):
            return
        step = self.optimizer.prox_step_size(lr)
        captured = self._captured_prox()
        if captured is not None:
            captured.replay(step, self.optimizer.metric_spec()[1])
            return
        self._tensor_prox(step)

    @torch.no_grad()
    def _tensor_prox(self, step: float | Tensor, bc2: Tensor | None = None) -> None:
        """The prox step in tensor operations: a fixed sequence of kernels.

        No operation reads a value back to the host, so on CUDA the step can
        be captured as a graph (:class:`CapturedProx`), with ``step`` and
        ``bc2`` as 0-d device tensors that the graph reads at every replay.
        """
        theta = self.views[1]
        V = self.group_map.gather(theta)
        metric = None
        if self.config.prox == "preconditioned":
            metric = self.optimizer.metric(bc2)
        if metric is not None:
            metric = self.group_map.gather(metric)
        V = self.penalty.prox(V, step, metric=metric, sizes=self._sizes)
        self.group_map.scatter_(theta, V)

    def _captured_prox(self) -> CapturedProx | None:
        """The prox step as a CUDA graph (captured again when its inputs
        change: removal, a new penalty or optimizer state); None off CUDA."""
        if not self.use_cuda_graphs or self.net.theta.device.type != "cuda":
            return None
        # the graph reads these objects' memory: the same objects, or capture
        # again (compared by identity; the settings by value)
        owners = (
            self.net.theta,
            self.optimizer.second,
            self.penalty,
            self.group_map,
            self._sizes,
        )
        settings = (self.config.prox, self.optimizer.name)
        cache = vars(self).get("_prox_graph")
        if (
            cache is not None
            and all(a is b for a, b in zip(cache[0], owners))
            and cache[1] == settings
        ):
            return cache[2]
        vars(self).pop("_prox_graph", None)  # free the old graph's memory first
        try:
            captured = CapturedProx(self._tensor_prox, self.views[1])
        except RuntimeError as exc:  # pragma: no cover - needs CUDA
            warnings.warn(
                f"The prox step could not be captured as a CUDA graph ({exc}); "
                "it runs as separate kernels instead (slower, same result).",
                stacklevel=2,
            )
            self.use_cuda_graphs = False
            return None
        self._prox_graph = (owners, settings, captured)
        return captured

    def _fused_prox_step(self, lr: float) -> bool:
        """The prox by the fused CPU kernel; False when it does not apply."""
        if not self._cpu_kernels():
            return False
        theta = self.views[1]
        second = self.optimizer.second
        # rebuilt when the penalty (warm start, removal) or the buffers change;
        # the key holds the penalty itself (compared by identity: penalties
        # define no __eq__), so its id cannot be reused while cached
        key = (self.penalty, theta.data_ptr(), second.data_ptr())
        cache = vars(self).get("_prox_arrays")
        if cache is None or cache[0] != key:
            strengths = self.penalty.prox_strengths(self._sizes)
            arrays = None
            if strengths is not None:
                width = self.group_map.index.shape[1]
                r_state = vars(self).pop("_r_state_carry", None)
                if r_state is None or len(r_state) != self.group_map.n_groups:
                    r_state = np.zeros(self.group_map.n_groups)
                index = self.group_map.index.numpy()
                sizes = self.group_map.sizes.numpy()
                first, blocks = _kernels.group_plan(index, sizes)
                block_size = int((blocks[:, 1] * blocks[:, 2]).max(initial=0))
                arrays = (
                    theta.numpy(),
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
            cache = self._prox_arrays = (key, arrays)
        arrays = cache[1]
        if arrays is None:
            return False
        theta_np, index, sizes, first, blocks, t1, t2, t3, second_np = arrays[:9]
        code, bc2, eps = self.optimizer.metric_spec()
        if self.config.prox != "preconditioned":
            code = 0
        step = self.optimizer.prox_step_size(lr)
        _kernels.prox_l1_group(
            theta_np,
            index,
            sizes,
            first,
            blocks,
            t1,
            t2,
            t3,
            step,
            second_np,
            code,
            bc2,
            eps,
            *arrays[9:],
            1e-15 if theta_np.dtype == np.float64 else 1e-12,
        )
        return True

    def _cpu_kernels(self) -> bool:
        """Whether the step runs as fused CPU kernels (see ``_kernels``)."""
        return cpu_kernels_drive(self.net.theta.device, self.optimizer.use_kernels)

    def train_step(self, X: Tensor, y: Tensor) -> Tensor:
        """One proximal step on a batch.

        Parameters
        ----------
        X : Tensor of shape (batch_size, n_inputs)
            The batch, with the network's current input columns.
        y : Tensor of shape (batch_size, n_outputs)
            Its targets (as :meth:`SparseMLP.loss_and_grad` takes them).

        Returns
        -------
        Tensor
            The batch loss before the step (mean over the batch, penalty
            excluded), a 0-d tensor.
        """
        if self._cpu_kernels():
            X_np = np.ascontiguousarray(X.numpy())
            value = self._kernel_step(X_np, np.ascontiguousarray(y.numpy()))
            return torch.tensor(value, dtype=self.net.theta.dtype)
        if self.split_penalty is not None:
            self._load_relaxed()
        views, theta = self.views
        loss = self.net.loss_and_grad(X, y, self.config.loss, self._grad, views)
        self._finish_step(theta, kernels=False)
        return loss

    def _numpy_state(self) -> tuple:
        """NumPy views for the kernel path, rebuilt only when a buffer changes.

        ``(theta, grad, detector arrays or None)``; the detector arrays are
        ``(switches, switch gradient, m, v, alive, strengths)``.
        """
        theta, grad, det = self.net.theta.detach(), self._grad, self.detector
        owners = (theta, grad, det, det and det.m, det and det.strengths)
        cache = vars(self).get("_numpy_views")
        if cache is None or any(a is not b for a, b in zip(cache[0], owners)):
            theta_np, grad_np = theta.numpy(), grad.numpy()
            arrays = None
            if det is not None:
                layout = self.net.layout
                segment = slice(layout.n_plain, layout.n_params)
                arrays = (
                    theta_np[segment],
                    grad_np[segment],
                    det.m.numpy(),
                    det.v.numpy(),
                    det.alive.numpy(),
                    det.strengths.numpy(),
                )
            cache = self._numpy_views = (owners, (theta_np, grad_np, arrays))
        return cache[1]

    def _finish_step(self, theta: Tensor, kernels: bool) -> None:
        """Optimizer step, prox and (for switch networks) the death detector.

        On the kernel path the detector runs as numba kernels on views cached
        by :meth:`_numpy_state`; otherwise as its tensor methods.
        """
        detector = self.detector
        if detector is not None and kernels:
            sw, gsw, m, v, alive, strengths = self._numpy_state()[2]
            _kernels.add_l1_subgradient(sw, gsw, strengths)
        elif detector is not None:
            switches = self._switch_segment(theta)
            detector.add_subgradient(switches, self._switch_segment(self._grad))
        if self.split_penalty is not None:
            self._add_coupling()
        self.optimizer.step(theta, self._grad, self.lr)
        self.prox_step(self.lr)
        if self.split_penalty is not None:
            self.relaxed.copy_(theta)
            self._project()
        if detector is not None and kernels:
            _kernels.sign_variance_update(
                sw, m, v, alive, detector.inertia, detector.threshold
            )
        elif detector is not None:
            detector.update(switches)

    def _kernel_step(self, X: np.ndarray, Y: np.ndarray) -> float:
        """:meth:`train_step` on NumPy views, with the loss by a numba kernel."""
        if self.split_penalty is not None:
            self._load_relaxed()
        theta = self.views[1]
        cached = vars(self).get("_loss_spec")
        if cached is None or cached[0] < len(X):
            # activations and errors live in one buffer kept between steps,
            # sized for ``rows`` samples
            rows = max(len(X), min(int(self.config.batch_size), 1 << 16))
            sizes = self.net.layout.layer_sizes
            work = np.empty(
                _kernels.workspace_size(sizes, rows), dtype=self._grad.numpy().dtype
            )
            cached = self._loss_spec = (
                rows,
                (
                    np.asarray(sizes, dtype=np.int64),
                    _kernels.ACTIVATION_CODES[self.net.activation],
                    _kernels.LOSS_CODES[self.config.loss],
                    LEAKY_SLOPE,
                    work,
                ),
            )
        spec = cached[1]
        theta_np, grad_np, _ = self._numpy_state()
        if self.net.layout.switches:
            theta_eff, grad_eff = self._switch_arrays()
            _kernels.switch_effective(theta_np, theta_eff, spec[0])
            value = _kernels.mlp_loss_and_grad(theta_eff, grad_eff, X, Y, *spec)
            _kernels.switch_chain(theta_np, grad_eff, grad_np, spec[0])
        else:
            value = _kernels.mlp_loss_and_grad(theta_np, grad_np, X, Y, *spec)
        self._finish_step(theta, kernels=True)
        return value

    def _switch_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Buffers of the effective (switch-folded) parameters and their gradient."""
        n = self.net.layout.n_plain
        buffers = vars(self).get("_switch_buffers")
        if buffers is None or buffers[0].shape[0] != n:
            dtype = self._grad.numpy().dtype
            buffers = self._switch_buffers = (np.zeros(n, dtype), np.zeros(n, dtype))
        return buffers

    # -- removing units ---------------------------------------------------
    @torch.no_grad()
    def remove_dead(self) -> Tensor | None:
        """Physically remove the units that cannot reach the outputs.

        Returns
        -------
        LongTensor or None
            The positions (in the current input columns) of the features kept
            when something was removed, else ``None``.
        """
        net = self.net
        keep = self._kept_units()
        if all(bool(k.all()) for k in keep):
            return None
        theta = net.theta.detach()
        device = theta.device
        layout, index = select_units(net.layout, keep)
        index = index.to(device)
        new_net = SparseMLP(
            layout.layer_sizes,
            net.activation,
            dtype=theta.dtype,
            device=device,
            switches=layout.switches,
        )
        new_net.theta.copy_(theta.index_select(0, index))
        groups_kept = self.group_map.kept_groups(keep)
        if self.group_map.family == "switch":
            group_map = build_switch_group_map(layout)
        else:
            group_map = build_group_map(
                layout, self.group_map.family, features=self.group_map.features
            )
        group_map = group_map.to(device)
        if group_map.n_groups != int(groups_kept.sum()):  # pragma: no cover
            raise RuntimeError(
                "removing units: the rebuilt group map does not match the kept "
                f"groups ({group_map.n_groups} != {int(groups_kept.sum())})"
            )
        cache = vars(self).get("_prox_arrays")
        if cache is not None and cache[1] is not None:
            self._r_state_carry = cache[1][-1][groups_kept.cpu().numpy()]
        opt = self.optimizer
        opt.first = opt.first.index_select(0, index)
        opt.second = opt.second.index_select(0, index)
        self.penalty = self.penalty.select(groups_kept)
        self._sizes = self._sizes[groups_kept]
        self.group_map = group_map
        if self.detector is not None:
            self.detector.select(torch.cat(keep))
        self.kept = [old[k.cpu()] for old, k in zip(self.kept, keep)]
        self.net = new_net
        self._grad = torch.zeros_like(new_net.theta.detach())
        for key in _STEP_CACHES:
            vars(self).pop(key, None)
        return torch.nonzero(keep[0]).flatten()

    def input_columns(self, X: Tensor) -> Tensor:
        """``X`` (with the original features) restricted to the kept features.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            Inputs with the original features. One that already has the
            network's input width is taken as restricted.

        Returns
        -------
        Tensor of shape (n_samples, n_inputs)
            The columns of the kept features (``X`` itself when it already has
            the network's input width).
        """
        if X.shape[1] == self.net.layout.layer_sizes[0]:
            return X
        return X.index_select(1, self.kept[0].to(X.device))

    @torch.no_grad()
    def outputs(self, X: Tensor) -> Tensor:
        """Raw outputs of the network on ``X`` (the original features).

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            Inputs with the original features.

        Returns
        -------
        Tensor of shape (n_samples, n_outputs)
            The network's raw outputs (no output activation).
        """
        return self.net(self.input_columns(X))

    @torch.no_grad()
    def full_parameters(self) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Effective weights, biases and switches at the original widths.

        Returns
        -------
        weights : list of Tensor
            ``W_l`` of shape ``(n_l, n_{l-1})`` at the original widths, with
            the switches folded in; removed units show as zeros.
        biases : list of Tensor
            ``b_l`` at the original widths; zeros for removed units.
        switches : list of Tensor
            ``beta_l`` at the original widths (zeros for removed units); empty
            for networks without switches.
        """
        sizes = self.original_sizes
        n_out = sizes[-1]
        net = self.net
        kept = [*self.kept, torch.arange(n_out)]
        weights, biases = [], []
        for l, (W, b) in enumerate(zip(net.effective_weights(), net.biases)):
            rows, cols = kept[l + 1].to(W.device), kept[l].to(W.device)
            full = W.new_zeros(sizes[l + 1], sizes[l])
            full[rows.unsqueeze(1), cols.unsqueeze(0)] = W.detach()
            full_b = b.new_zeros(sizes[l + 1])
            full_b[rows] = b.detach()
            weights.append(full)
            biases.append(full_b)
        switches = []
        for l, beta in enumerate(net.switches):
            full = beta.new_zeros(sizes[l])
            full[kept[l].to(beta.device)] = beta.detach()
            switches.append(full)
        return weights, biases, switches

    @torch.no_grad()
    def _kept_units(self) -> list[Tensor]:
        """:func:`~skgroupsparse.network.kept_units` of the current network."""
        net = self.net
        return kept_units(
            [W.detach() for W in net.effective_weights()],
            [b.detach() for b in net.biases],
            net.activation,
        )

    @torch.no_grad()
    def nonzero_weights(self) -> list[int]:
        """Nonzero entries of each weight matrix (switches folded in).

        Removed units hold no weights, so this is also the count at the
        original widths. When units are removed while training, the weights
        of units the next removal would drop are not counted either. One
        host synchronisation (it runs after every batch in a target search).

        Returns
        -------
        list of int
            One count per weight matrix, in layer order.
        """
        weights = self.net.effective_weights()
        if self.config.remove_every is not None:
            keep = self._kept_units()
            keep.append(torch.ones(weights[-1].shape[0], dtype=torch.bool))
            weights = [
                W[keep[l + 1].to(W.device)][:, keep[l].to(W.device)]
                for l, W in enumerate(weights)
            ]
        return torch.stack([torch.count_nonzero(W) for W in weights]).tolist()

    @torch.no_grad()
    def live_neurons(self) -> list[int]:
        """Live neurons per hidden layer (as the estimators' ``active_neurons_``).

        Returns
        -------
        list of int
            One count per hidden layer; empty without hidden layers.
        """
        masks = live_units([W.detach() for W in self.net.effective_weights()])[1:-1]
        if not masks:
            return []
        return torch.stack([m.sum() for m in masks]).tolist()

    # -- one epoch --------------------------------------------------------
    def run_epoch(self, X: Tensor, y: Tensor, generator: torch.Generator) -> float:
        """One pass over the data.

        With ``remove_every = k`` dead units are removed after every ``k``
        batches (and the rest of the epoch reads only the kept features); with
        ``"epoch"`` or ``k``, after the epoch. A ``stop_rule`` that holds ends
        the epoch early.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            Inputs with the original features.
        y : Tensor of shape (n_samples, n_outputs)
            Targets (as :meth:`SparseMLP.loss_and_grad` takes them).
        generator : torch.Generator
            Draws the shuffling (``config.shuffle``).

        Returns
        -------
        float
            The objective (loss + penalty): the mean loss per sample over the
            epoch (batch losses weighted by batch size) plus the penalty at the
            end of the epoch; appended to ``loss_curve``.
        """
        X = self.input_columns(X)
        n = X.shape[0]
        perm = None
        if self.config.shuffle:
            perm = torch.randperm(n, generator=generator)
        bs = max(1, min(int(self.config.batch_size), n))
        every = self.config.remove_every
        every = None if every is None or every == "epoch" else int(every)
        kernels = self._cpu_kernels()
        if kernels:
            X_s, y_s = self._shuffled_arrays(X, y, perm)
            total = 0.0
        else:
            if perm is not None:
                perm = perm.to(X.device)
                X, y = X.index_select(0, perm), y.index_select(0, perm)
            X_s, y_s = X, y
            total = torch.zeros((), dtype=self.net.theta.dtype, device=X.device)
        start, batches, cost, seen = 0, 0, 0.0, 0
        self.rule_fired = False
        while start < X_s.shape[0]:
            stop = min(start + bs, X_s.shape[0])
            width = sum(self.net.layout.layer_sizes[:-1])
            cost += width * (stop - start)
            if kernels:
                total += self._kernel_step(X_s[start:stop], y_s[start:stop]) * (
                    stop - start
                )
            else:
                loss = self.train_step(X_s[start:stop], y_s[start:stop])
                total.add_(loss, alpha=stop - start)
            batches += 1
            seen += stop - start
            start = stop
            if self.stop_rule is not None and self.stop_rule(self):
                self.rule_fired = True
                break
            if every is not None and batches % every == 0 and start < X_s.shape[0]:
                columns = self.remove_dead()
                if columns is not None:
                    X_s, y_s = X_s[start:], y_s[start:]
                    if kernels:
                        X_s = np.ascontiguousarray(X_s[:, columns.numpy()])
                    elif len(columns) < X_s.shape[1]:
                        X_s = X_s.index_select(1, columns.to(X_s.device))
                    start = 0
        self.t += seen
        self.n_iter += 1
        objective = total / seen + self.penalty_value()
        value = float(objective)  # the one host sync of the epoch
        self.loss_curve.append(value)
        self._epoch_cost = cost / seen
        if self.config.remove_every is not None:
            self.remove_dead()
        if self.config.learning_rate == "invscaling":
            self.lr = (
                self.config.learning_rate_init / (self.t + 1) ** self.config.power_t
            )
        if (
            self.split_penalty is not None
            and self.n_iter % self.config.split_every == 0
        ):
            self.beta *= float(self.config.split_growth)
            self._split()
        return value

    def _shuffled_arrays(self, X: Tensor, y: Tensor, perm: Tensor | None) -> tuple:
        """``(X[perm], y[perm])`` as NumPy arrays, in buffers kept between epochs.

        Reusing the buffers spares the page faults of a fresh copy per epoch.
        """
        X_np, y_np = np.ascontiguousarray(X.numpy()), np.ascontiguousarray(y.numpy())
        if perm is None:
            return X_np, y_np
        buffers = vars(self).get("_epoch_buffers")
        if (
            buffers is None
            or buffers[0].shape != X_np.shape
            or buffers[1].shape != y_np.shape
        ):
            buffers = self._epoch_buffers = (np.empty_like(X_np), np.empty_like(y_np))
        index = perm.numpy()
        np.take(X_np, index, axis=0, out=buffers[0])
        np.take(y_np, index, axis=0, out=buffers[1])
        return buffers

    def penalty_value(self) -> Tensor:
        """The penalty part of the objective (RVSM: ``L_beta`` less the loss).

        Returns
        -------
        Tensor
            A 0-d tensor on the parameters' device; with a ``detector`` it
            includes the switches' l1 term.
        """
        theta = self.net.theta.detach()
        if self.split_penalty is not None:
            U = self.group_map.gather(theta)
            W = self.group_map.gather(self.relaxed)
            value = (
                self.split_penalty.value(U, sizes=self._sizes)
                + 0.5 * self.beta * ((W - U) ** 2).sum()
            )
            if self.penalty is not None:
                value = value + self.penalty.value(W, sizes=self._sizes)
            return value
        V = self.group_map.gather(theta)
        value = self.penalty.value(V, sizes=self._sizes)
        if self.detector is not None:
            value = value + self.detector.penalty_value(self._switch_segment(theta))
        return value

    # -- snapshots --------------------------------------------------------
    def _snapshot(self) -> dict:
        """Everything a step changes, copied (small next to an epoch's work)."""
        opt = self.optimizer
        snap = dict(
            net=self.net,
            theta=self.net.theta.detach().clone(),
            group_map=self.group_map,
            penalty=self.penalty,
            sizes=self._sizes,
            kept=list(self.kept),
            first=opt.first.clone(),
            second=opt.second.clone(),
            n_steps=opt.n_steps,
            epochs=len(self.history),
            n_iter=self.n_iter,
            t=self.t,
            lr=self.lr,
        )
        if self.detector is not None:
            snap["detector"] = copy.deepcopy(self.detector)
        if self.split_penalty is not None:
            snap["relaxed"], snap["beta"] = self.relaxed.clone(), self.beta
        return snap

    @torch.no_grad()
    def _restore(self, snap: dict, counters: bool = True) -> None:
        """Go back to ``snap``; ``counters=False`` keeps epochs, samples, rate."""
        if snap["net"] is not self.net:
            for key in _STEP_CACHES:
                vars(self).pop(key, None)
        self.net = snap["net"]
        self.net.theta.copy_(snap["theta"])
        self.group_map, self.penalty = snap["group_map"], snap["penalty"]
        self._sizes, self.kept = snap["sizes"], list(snap["kept"])
        opt = self.optimizer
        if opt.first.shape != snap["first"].shape:
            opt.first, opt.second = snap["first"].clone(), snap["second"].clone()
        else:
            opt.first.copy_(snap["first"])
            opt.second.copy_(snap["second"])
        opt.n_steps = snap["n_steps"]
        if counters:
            self.n_iter, self.t, self.lr = snap["n_iter"], snap["t"], snap["lr"]
        if "detector" in snap:
            self.detector = copy.deepcopy(snap["detector"])
        if "relaxed" in snap:
            self.relaxed.copy_(snap["relaxed"])
            self.beta = snap["beta"]
        if self._grad.shape != self.net.theta.shape:
            self._grad = torch.zeros_like(self.net.theta.detach())

    # -- stopping ---------------------------------------------------------
    def update_no_improvement(self, validation_score: float | None) -> None:
        """Count the epochs that improve by less than ``tol`` (scikit-learn's rule).

        Parameters
        ----------
        validation_score : float or None
            The epoch's validation score (early stopping; a new best one is
            kept as a snapshot for :meth:`restore_best`), or None to judge the
            epoch's objective, the last entry of ``loss_curve``.
        """
        tol = self.config.tol
        if validation_score is not None:
            self.validation_scores.append(validation_score)
            if validation_score < self.best_validation_score + tol:
                self.no_improvement_count += 1
            else:
                self.no_improvement_count = 0
            if validation_score > self.best_validation_score:
                self.best_validation_score = validation_score
                self._best = self._snapshot()
        else:
            last = self.loss_curve[-1]
            if last > self.best_loss - tol:
                self.no_improvement_count += 1
            else:
                self.no_improvement_count = 0
            if last < self.best_loss:
                self.best_loss = last

    def trigger_stopping(self) -> bool:
        """At a plateau: divide the rate by 5 (``adaptive``) or stop.

        Returns
        -------
        bool
            True to stop: the schedule is not ``"adaptive"`` or the rate is
            already at most ``1e-6``; False when the rate was divided.
        """
        if self.config.learning_rate != "adaptive" or self.lr <= 1e-6:
            return True
        self.lr /= 5.0
        if self.config.verbose:
            print(f"Setting learning rate to {self.lr:f}")
        return False

    def restore_best(self) -> None:
        """Go back to the best validation epoch, if one was kept.

        The epoch and sample counters and the learning rate stay as they are.
        """
        if self._best is not None:
            self._restore(self._best, counters=False)

    def check_finite(self) -> None:
        """Check that the last objective and the parameters are finite.

        Raises
        ------
        TrainingDiverged
            If either is not.
        """
        last = self.loss_curve[-1]
        if not (
            torch.isfinite(torch.tensor(last))
            and bool(torch.isfinite(self.net.theta).all())
        ):
            raise TrainingDiverged(
                f"Training diverged at epoch {self.n_iter}: the objective is {last}. "
                f"Lower learning_rate_init (now {self.config.learning_rate_init}) "
                "or scale the input features."
            )

    # -- the loop ---------------------------------------------------------
    def fit(
        self,
        X: Tensor,
        y: Tensor,
        generator: torch.Generator,
        max_iter: int,
        validation_score: Callable[[], float] | None = None,
        incremental: bool = False,
    ) -> bool:
        """Run epochs until ``max_iter`` or a stop.

        Ctrl-C ends training with a warning and the model as it was at the end
        of the last complete epoch; if no epoch was ever completed there is no
        model, and the ``KeyboardInterrupt`` goes on.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            Inputs with the original features (the kept ones are read).
        y : Tensor of shape (n_samples, n_outputs)
            Targets (as :meth:`SparseMLP.loss_and_grad` takes them).
        generator : torch.Generator
            Draws the shuffling of every epoch.
        max_iter : int
            The most epochs to run.
        validation_score : callable or None, default=None
            Early stopping: called after every epoch, returns a score to
            maximise; the best epoch is restored at the end (unless
            ``incremental`` or the stop rule ended the training).
        incremental : bool, default=False
            A ``partial_fit``: no stop at a plateau.

        Returns
        -------
        bool
            True if it stopped early (a plateau, the stop rule, or Ctrl-C).
        """
        self.interrupted = self.rule_fired = False
        batch = min(int(self.config.batch_size), X.shape[0])
        work = batch * sum(o * i for o, i in self.net.layout.weight_shapes)
        with cpu_threads_for(self._cpu_kernels(), work):
            stopped = self._epochs(
                X, y, generator, max_iter, validation_score, incremental
            )
        # a stop rule ends the training where it holds: the best validation
        # epoch before it would not meet it
        if validation_score is not None and not incremental and not self.rule_fired:
            self.restore_best()
        # the shuffled copy of the data is not part of the model
        vars(self).pop("_epoch_buffers", None)
        return stopped

    def _epochs(self, X, y, generator, max_iter, validation_score, incremental) -> bool:
        stopped = False
        last_complete = None
        if self.loss_curve and self.stop_rule is not None and self.stop_rule(self):
            self.rule_fired = True
            return True  # a trained model that already meets the rule
        try:
            for _ in range(max_iter):
                last_complete = self._snapshot()
                began = time.perf_counter()
                self.run_epoch(X, y, generator)
                self.check_finite()
                score = validation_score() if validation_score is not None else None
                self._record_epoch(time.perf_counter() - began)
                self.update_no_improvement(score)
                if self.config.verbose:
                    self._print_progress(score)
                if self.rule_fired:
                    stopped = True
                    break
                if incremental:
                    continue
                if self.no_improvement_count > self.config.n_iter_no_change:
                    if self.trigger_stopping():
                        stopped = True
                        if self.config.verbose:
                            print(self._stop_message(validation_score is not None))
                        break
                    self.no_improvement_count = 0
        except KeyboardInterrupt:
            # an epoch counts once its history row is written; one interrupted
            # before that is undone (model, optimizer, counters)
            if (
                last_complete is not None
                and len(self.history) == last_complete["epochs"]
            ):
                del self.loss_curve[len(self.history) :]
                if not self.loss_curve:
                    raise
                self._restore(last_complete)
            elif last_complete is None and not self.loss_curve:
                raise
            warnings.warn(
                "Training interrupted by user: the model is the one of the last "
                "complete epoch.",
                stacklevel=4,
            )
            stopped = self.interrupted = True
        return stopped

    def _record_epoch(self, seconds: float) -> None:
        """One row of ``history``: the epoch's size, cost and time."""
        weights, _, _ = self.full_parameters()
        masks = live_units(weights)
        self.history.append(
            dict(
                epoch=self.n_iter,
                objective=self.loss_curve[-1],
                live_features=int(masks[0].sum()),
                live_neurons=[int(m.sum()) for m in masks[1:-1]],
                layer_sizes=list(self.net.layout.layer_sizes),
                input_neurons=float(vars(self).get("_epoch_cost", 0.0)),
                seconds=seconds,
            )
        )

    def _stop_message(self, early_stopping: bool) -> str:
        what = "Validation score" if early_stopping else "Training loss"
        return (
            f"{what} did not improve more than tol={self.config.tol} for "
            f"{self.config.n_iter_no_change} consecutive epochs. Stopping."
        )

    def _print_progress(self, score: float | None) -> None:
        row = self.history[-1]
        msg = f"Iteration {self.n_iter}, loss = {self.loss_curve[-1]:.8f}"
        if score is not None:
            msg += f", validation score = {score:.6f}"
        msg += (
            f", live neurons = {row['live_neurons']}, "
            f"live features = {row['live_features']}"
        )
        print(msg)

    def copy(self) -> ProximalTrainer:
        """A deep copy (a failed fit must leave the previous model intact).

        Returns
        -------
        ProximalTrainer
            An independent trainer with the same state.
        """
        return copy.deepcopy(self)


@torch.no_grad()
def optimality_residual(
    net: SparseMLP,
    group_map: GroupMap,
    penalty: Penalty,
    X: Tensor,
    y: Tensor,
    loss: str,
    sizes: Tensor | None = None,
    detector: SignVarianceDetector | None = None,
) -> float:
    """Distance of ``0`` to the subdifferential of the full-batch objective.

    The maximum over groups of ``penalty.subdiff_distance`` and over
    unpenalised coordinates (biases, ungrouped weights) of ``|gradient|``.
    Zero exactly at a stationary point of ``loss + penalty``. Removed units
    are outside the check.

    Parameters
    ----------
    net : SparseMLP
        The network at the point checked.
    group_map : GroupMap
        The groups of ``net``'s parameters that ``penalty`` acts on.
    penalty : Penalty
        The penalty of the objective.
    X : Tensor of shape (n_samples, n_inputs)
        Inputs with the network's current input columns.
    y : Tensor of shape (n_samples, n_outputs)
        Targets (as :meth:`SparseMLP.loss_and_grad` takes them).
    loss : {"squared", "softmax", "logistic"}
        The loss.
    sizes : Tensor of shape (n_groups,), default=None
        The group sizes the penalty weights use (the original ones after units
        were removed); None: the map's.
    detector : SignVarianceDetector or None, default=None
        With a detector the switches' l1 term is the detector's.

    Returns
    -------
    float
        The residual: the largest of these distances.
    """
    grad = torch.zeros_like(net.theta)
    net.loss_and_grad(X, y, loss, grad)
    V = group_map.gather(net.theta)
    G = group_map.gather(grad)
    if sizes is None:
        sizes = group_map.sizes
    group_res = penalty.subdiff_distance(V, G, sizes=sizes)
    if detector is not None and group_map.switch is not None:
        group_res = torch.where(group_map.switch, 0.0, group_res)
        layout = net.layout
        beta = net.theta[layout.n_plain : layout.n_params]
        g = grad[layout.n_plain : layout.n_params]
        s = detector.strengths.to(beta.dtype)
        dist = torch.where(
            beta != 0,
            (g + s * torch.sign(beta)).abs(),
            torch.clamp(g.abs() - s, min=0),
        )
        group_res = torch.cat([group_res, dist])
    grouped = torch.zeros_like(net.theta, dtype=torch.bool)
    grouped[group_map.index.flatten()] = True
    free = grad[~grouped]
    res = group_res.max() if group_res.numel() else torch.zeros(())
    if free.numel():
        res = torch.maximum(res, free.abs().max())
    return float(res)


@dataclass
class ThresholdReading:
    """Zero thresholds of a network's weights and units at one point.

    A threshold is the smallest ``alpha`` (in units of the strength of its
    layer) at which the entry, or the whole unit, would be zero at a
    stationary point with the loss gradient measured there (the optimality
    conditions of Shen et al. 2024, Theorem 4; ALGORITHMS.md section 4.2). At
    an exact stationary point every nonzero entry sits at its layer's alpha.

    Parameters
    ----------
    weights : list of Tensor
        Per weight matrix ``W_l`` (shape ``(n_out, n_in)``, switches folded),
        the threshold of each entry; ``inf`` where ``alpha`` does not penalise
        it (that entry is never zeroed by raising ``alpha``).
    units : list of Tensor
        Per layer of units (inputs, then hidden layers), the threshold of each
        unit's group (or switch); ``inf`` for a unit without one.
    """

    weights: list
    units: list


@torch.no_grad()
def read_thresholds(
    net: SparseMLP,
    group_map: GroupMap,
    penalty: Penalty,
    X: Tensor,
    y: Tensor,
    loss: str,
    sizes: Tensor | None = None,
) -> ThresholdReading:
    """Zero thresholds from the full-batch loss gradient on ``(X, y)``.

    For switch networks the switches carry ``alpha``: a switch's threshold
    applies to its whole column of the folded weights.

    Parameters
    ----------
    net : SparseMLP
        The network at the point read.
    group_map : GroupMap
        The groups of ``net``'s parameters that ``penalty`` acts on.
    penalty : Penalty
        The penalty whose :meth:`~skgroupsparse.penalties.Penalty.zero_thresholds`
        are read.
    X : Tensor of shape (n_samples, n_inputs)
        Inputs with the network's current input columns.
    y : Tensor of shape (n_samples, n_outputs)
        Targets (as :meth:`SparseMLP.loss_and_grad` takes them).
    loss : {"squared", "softmax", "logistic"}
        The loss.
    sizes : Tensor of shape (n_groups,), default=None
        The group sizes the penalty weights use (the original ones after units
        were removed); None: the map's.

    Returns
    -------
    ThresholdReading
        The thresholds of the entries and units of the current network.
    """
    theta = net.theta.detach()
    grad = torch.zeros_like(theta)
    net.loss_and_grad(X, y, loss, grad)
    if sizes is None:
        sizes = group_map.sizes
    T = penalty.zero_thresholds(group_map.gather(grad), sizes.to(grad.dtype))
    index = group_map.index
    valid = index != net.layout.sentinel
    if group_map.switch is not None:
        valid = valid & group_map.switch.unsqueeze(1)
    flat = torch.full_like(theta, float("inf"))
    flat[index[valid]] = T[valid]
    layout = net.layout
    if layout.switches:
        # one switch per unit (the switch groups are per-layer chunks of them);
        # a switch's threshold holds for its column of the folded weights
        switch_t = [t.clone() for t in layout.switch_views(flat)]
        weights = [
            t.unsqueeze(0).expand(o, i).clone()
            for t, (o, i) in zip(switch_t, layout.weight_shapes)
        ]
        return ThresholdReading(weights, switch_t)
    weights = [W.clone() for W in layout.views(flat)[0]]
    per_group = torch.where(valid, T, torch.full_like(T, -float("inf"))).amax(dim=1)
    rows = valid.any(dim=1)
    units = []
    for layer, width in enumerate(layout.layer_sizes[:-1]):
        values = torch.full(
            (width,), float("inf"), dtype=theta.dtype, device=theta.device
        )
        mine = rows & (group_map.unit_layer == layer)
        values[group_map.unit[mine]] = per_group[mine]
        units.append(values)
    return ThresholdReading(weights, units)


def resolve_device(device: str) -> torch.device:
    """The one place where a device name becomes a ``torch.device``.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when
        available, else the CPU).

    Returns
    -------
    torch.device
        The device; a CUDA device without an index gets the current one.

    Raises
    ------
    ValueError
        For a name torch does not read as a device, or a CUDA device asked for
        on a machine without CUDA.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev
