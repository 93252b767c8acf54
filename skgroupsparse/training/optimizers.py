"""First-order optimizers on one flat parameter vector.

The state and the maths of every optimizer, written in tensor operations (the
reference). How a step is run (these operations, ``torch._fused_adam_`` or a
numba kernel) is the step engine's choice (:mod:`.engines`); what the codes
below mean to a kernel is written once, in :data:`OPTIMIZER_CODES`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "HAS_FUSED_ADAM",
    "OPTIMIZERS",
    "OPTIMIZER_CODES",
    "PROX_MODES",
    "SCHEDULES",
    "FlatOptimizer",
]

OPTIMIZERS = ("sgd", "adam", "adamax", "rmsprop")
#: each optimizer's code in the numba kernels, which is also the code of its
#: metric ``D`` (:meth:`FlatOptimizer.metric_spec`): 0 SGD (no metric), 1 Adam
#: ``sqrt(second / bc2) + eps``, 2 Adamax ``second``, 3 RMSprop
#: ``sqrt(second) + eps``
OPTIMIZER_CODES = {name: code for code, name in enumerate(OPTIMIZERS)}
SCHEDULES = ("constant", "invscaling", "adaptive")
PROX_MODES = ("preconditioned", "decoupled")
HAS_FUSED_ADAM = hasattr(torch, "_fused_adam_")


class FlatOptimizer:
    """First-order optimizers on one flat parameter vector, updated in place.

    The maths follows ``torch.optim`` (SGD with heavy-ball or Nesterov
    momentum, Adam and Adamax with bias correction, RMSprop without momentum).
    :meth:`metric` returns the diagonal ``D`` of the last step, written so that
    the step was ``theta -= lr * D^-1 * direction`` (``None`` for SGD).

    :meth:`step` is the step in tensor operations; :meth:`fused_adam_step` runs
    Adam as ``torch._fused_adam_`` (the kernel behind
    ``torch.optim.Adam(fused=True)``), and the numba engine runs the others
    as one kernel on this object's buffers.

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

    @property
    def code(self) -> int:
        """The optimizer's code in the kernels (:data:`OPTIMIZER_CODES`)."""
        return OPTIMIZER_CODES[self.name]

    def step(self, theta: Tensor, grad: Tensor, lr: float) -> None:
        """Update ``theta`` in place by one step, in tensor operations.

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

    def fused_adam_step(self, theta: Tensor, grad: Tensor, lr: float) -> bool:
        """Adam's step as ``torch._fused_adam_``, where torch has it.

        Parameters
        ----------
        theta : Tensor of shape (n_params + 1,)
            The flat parameters, updated in place.
        grad : Tensor of shape (n_params + 1,)
            The gradient at ``theta``.
        lr : float
            The learning rate.

        Returns
        -------
        bool
            Whether the step was taken (False: not Adam, or no fused kernel).
        """
        if self.name != "adam" or not HAS_FUSED_ADAM:
            return False
        self.n_steps += 1
        self._step_count.fill_(self.n_steps)
        torch._fused_adam_(
            [theta],
            [grad],
            [self.first],
            [self.second],
            [],
            [self._step_count],
            lr=lr,
            beta1=self.beta_1,
            beta2=self.beta_2,
            weight_decay=0.0,
            eps=self.epsilon,
            amsgrad=False,
            maximize=False,
        )
        return True

    def prox_step_size(self, lr: float) -> float:
        """The step that the prox after a step must use.

        Parameters
        ----------
        lr : float
            The learning rate of the step.

        Returns
        -------
        float
            ``lr / (1 - momentum)`` for SGD with momentum, else ``lr``: the
            steady-state length of a momentum step on a constant gradient, so
            that a fixed point of "step, then prox" is a stationary point of
            the objective with the ``alpha`` the user gave.
        """
        if self.name == "sgd" and self.momentum > 0:
            return lr / (1.0 - self.momentum)
        return lr

    def metric_spec(self) -> tuple[int, float, float]:
        """How the diagonal ``D`` of the last step follows from ``second``.

        Returns
        -------
        code : int
            The optimizer's code (:data:`OPTIMIZER_CODES`): 0 no metric (SGD);
            1 ``sqrt(second / bc2) + eps`` (Adam); 2 ``second`` (Adamax); 3
            ``sqrt(second) + eps`` (RMSprop).
        bc2 : float
            The bias correction ``1 - beta_2**n_steps`` (Adam; 1.0 otherwise).
        eps : float
            The optimizer's ``epsilon``.
        """
        bc2 = 1.0 - self.beta_2**self.n_steps if self.name == "adam" else 1.0
        return self.code, bc2, self.epsilon

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

    def select(self, index: Tensor) -> None:
        """Keep the state of the coordinates ``index`` (units were removed).

        Parameters
        ----------
        index : LongTensor
            The positions kept, in the new order, on the buffers' device.
        """
        self.first = self.first.index_select(0, index)
        self.second = self.second.index_select(0, index)

    def expand(self, index: Tensor, length: int) -> None:
        """The inverse of :meth:`select`: the state at ``index`` of ``length``.

        Parameters
        ----------
        index : LongTensor
            Where the current coordinates go, in a vector of ``length``
            entries; the others start at zero.
        length : int
            The new length.
        """
        for name in ("first", "second"):
            old = getattr(self, name)
            new = old.new_zeros(length)
            new[index] = old
            setattr(self, name, new)

    @classmethod
    def stack(cls, optimizers: list[FlatOptimizer], theta: Tensor) -> FlatOptimizer:
        """One optimizer over the stacked parameters of several.

        Every step is elementwise, so the stacked optimizer steps each part as
        its own optimizer would, given they have taken the same number of
        steps with the same settings.

        Parameters
        ----------
        optimizers : list of FlatOptimizer
            One per part of ``theta``, in order.
        theta : Tensor
            The stacked parameters (their lengths summed).

        Returns
        -------
        FlatOptimizer
            The state of all, concatenated.

        Raises
        ------
        ValueError
            If the settings or the step counts differ.
        """
        first = optimizers[0]
        settings = ("name", "momentum", "nesterov", "beta_1", "beta_2", "epsilon")
        for other in optimizers[1:]:
            if any(getattr(other, a) != getattr(first, a) for a in settings) or (
                other.n_steps != first.n_steps
            ):
                raise ValueError(
                    "optimizers stacked must have the same settings and steps"
                )
        new = cls(
            first.name,
            theta,
            momentum=first.momentum,
            nesterov=first.nesterov,
            beta_1=first.beta_1,
            beta_2=first.beta_2,
            epsilon=first.epsilon,
        )
        new.first = torch.cat([o.first for o in optimizers])
        new.second = torch.cat([o.second for o in optimizers])
        new.n_steps = first.n_steps
        return new

    def state(self) -> dict:
        """A copy of the state a step changes (for a snapshot).

        Returns
        -------
        dict
            ``first``, ``second`` (copies) and ``n_steps``.
        """
        return dict(
            first=self.first.clone(), second=self.second.clone(), n_steps=self.n_steps
        )

    def load_state(self, state: dict) -> None:
        """Go back to a :meth:`state`; the buffers are reused when they fit.

        Parameters
        ----------
        state : dict
            As :meth:`state` returned it (it is not changed).
        """
        if self.first.shape != state["first"].shape:
            self.first, self.second = state["first"].clone(), state["second"].clone()
        else:
            self.first.copy_(state["first"])
            self.second.copy_(state["second"])
        self.n_steps = state["n_steps"]
