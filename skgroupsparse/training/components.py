"""What hooks into the training loop beside the penalty's prox.

A component adds a term to the objective and acts at fixed points of a step
(:class:`LoopComponent`); the loop calls every hook of every component, and
snapshots, restores, removals and warm starts go through the same few methods,
so the loop never names a component.

* :class:`SplitVariable`: the relaxed variable splitting method (RVSM; Dinh
  and Xin 2020, ALGORITHMS.md section 5.2);
* :class:`SignVarianceDetector`: ShrinkNets' death detector for switches
  (ALGORITHMS.md section 3.5c);
* :class:`FixedSupport`: the relaxed fit's constraint, every weight and switch
  that is zero at the start held at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from skgroupsparse import _kernels
from skgroupsparse.penalties import Penalty

if TYPE_CHECKING:  # pragma: no cover
    from skgroupsparse.training.engines import StepEngine
    from skgroupsparse.training.loop import ProximalTrainer

__all__ = [
    "FixedSupport",
    "LoopComponent",
    "SignVarianceDetector",
    "SplitVariable",
    "StepContext",
]


@dataclass
class StepContext:
    """What a component's step hooks see: the trainer and the step's buffers.

    Parameters
    ----------
    trainer : ProximalTrainer
        The trainer running the loop.
    engine : StepEngine
        The engine computing the step (it owns every view a component uses:
        :meth:`~skgroupsparse.training.engines.StepEngine.numpy_views`).
    theta : Tensor of shape (n_params + 1,)
        The flat parameters.
    grad : Tensor of shape (n_params + 1,)
        The gradient buffer.
    switches : slice
        The switches' segment of both (empty without switches).
    arrays : tuple of ndarray or None
        ``(theta, grad)`` as NumPy views when the engine runs numba kernels
        (a component may then run its own kernels on them); else None.
    """

    trainer: ProximalTrainer
    engine: StepEngine
    theta: Tensor
    grad: Tensor
    switches: slice
    arrays: tuple | None = None


class LoopComponent:
    """A part of the objective that acts at fixed points of the loop.

    Every hook does nothing by default. The order of one step is
    ``before_gradient``, the loss gradient, ``add_gradient``, the optimizer
    step and the prox, ``after_step``; ``end_of_epoch`` follows an epoch.
    """

    def attach(self, trainer: ProximalTrainer) -> None:
        """Start on ``trainer``'s network (once, when the trainer is built).

        Parameters
        ----------
        trainer : ProximalTrainer
            The trainer running the loop.
        """

    def before_gradient(self, step: StepContext) -> None:
        """Prepare the parameters at which the loss gradient is taken.

        Parameters
        ----------
        step : StepContext
            The trainer and the buffers; ``step.theta`` is the point where
            the loss gradient will be taken.
        """

    def add_gradient(self, step: StepContext) -> None:
        """Add this component's smooth part to ``step.grad``, in place.

        Parameters
        ----------
        step : StepContext
            Its ``grad`` holds the loss gradient.
        """

    def after_step(self, step: StepContext) -> None:
        """Act on the parameters after the optimizer step and the prox.

        Parameters
        ----------
        step : StepContext
            Its ``theta`` holds the parameters after the optimizer step and
            the prox of the trainer's penalty.
        """

    def end_of_epoch(self, trainer: ProximalTrainer) -> None:
        """Act after an epoch (``trainer.n_iter`` epochs are done).

        Parameters
        ----------
        trainer : ProximalTrainer
            The trainer running the loop.
        """

    def objective_term(self, trainer: ProximalTrainer, theta: Tensor) -> Tensor | None:
        """This component's term of the objective at ``theta``.

        Parameters
        ----------
        trainer : ProximalTrainer
            The trainer running the loop.
        theta : Tensor of shape (n_params + 1,)
            The parameters the network holds.

        Returns
        -------
        Tensor or None
            The term, a 0-d tensor on the parameters' device; None: no term.
        """
        return None

    def penalty_point(self, theta: Tensor) -> Tensor:
        """The parameters at which the trainer's penalty is evaluated.

        Parameters
        ----------
        theta : Tensor of shape (n_params + 1,)
            The parameters the network holds (or those the previous component
            returned).

        Returns
        -------
        Tensor of shape (n_params + 1,)
            ``theta`` itself, unless the component keeps the penalised
            variable elsewhere (RVSM's ``w``).
        """
        return theta

    def state(self) -> dict:
        """A copy of the state that a step changes (for a snapshot).

        Returns
        -------
        dict
            Copies (tensors cloned), so that later steps leave it as it is.
        """
        return {}

    def load_state(self, state: dict) -> None:
        """Go back to a :meth:`state` (which is not changed).

        Parameters
        ----------
        state : dict
            As :meth:`state` returned it.
        """

    def select(self, keep: Tensor) -> None:
        """Keep the state of the units in ``keep`` (units were removed).

        Parameters
        ----------
        keep : BoolTensor
            Per unit of the network (inputs, then hidden layers), True for the
            units kept.
        """

    def renew(self, new: LoopComponent, trainer: ProximalTrainer) -> None:
        """Take ``new``'s settings and keep the learned state (warm start).

        Parameters
        ----------
        new : LoopComponent
            A freshly built component of the same type, with the settings of
            the new fit.
        trainer : ProximalTrainer
            The trainer running the loop.
        """


class SplitVariable(LoopComponent):
    """RVSM's split variable ``u`` and coupling weight ``beta`` (section 5.2).

    The loop then minimises ``F(w) + Omega(w) + P(u) + beta / 2 ||w - u||^2``
    with ``u = prox_{P / beta}(w)`` after every step, in the identity metric
    whatever the optimizer, so that every closed-form prox serves. The gradient
    step (and the trainer's ``penalty`` prox ``Omega``, e.g. the group lasso of
    the nonconvex sparse group lasso) acts on ``w``; ``u`` is the model. The
    network holds ``u`` between steps (predictions, counts and removal see the
    model) and ``w`` is kept aside; ``beta`` starts at ``beta`` and is
    multiplied by ``growth`` every ``every`` epochs.

    Parameters
    ----------
    penalty : Penalty
        ``P``, the penalty of ``u``.
    beta : float, default=1.0
        The initial coupling weight.
    growth : float, default=1.25
        The factor by which ``beta`` grows.
    every : int, default=20
        The epochs between growths.

    Attributes
    ----------
    beta : float
        The current coupling weight.
    relaxed : Tensor of shape (n_params + 1,)
        The relaxed variable ``w``, laid out like the network's ``theta``.
    """

    def __init__(
        self, penalty: Penalty, beta: float = 1.0, growth: float = 1.25, every: int = 20
    ):
        self.penalty = penalty
        self.initial_beta = float(beta)
        self.growth, self.every = float(growth), int(every)

    def attach(self, trainer: ProximalTrainer) -> None:
        if trainer.config.remove_every is not None:
            raise ValueError("removing units while training is not supported with RVSM")
        self.beta = self.initial_beta
        self.relaxed = trainer.net.theta.detach().clone()
        self._project(trainer)

    @torch.no_grad()
    def _project(self, trainer: ProximalTrainer) -> None:
        """``u = prox_{P / beta}(w)`` in place, the network holding ``w``."""
        theta = trainer.net.theta.detach()
        group_map = trainer.group_map
        V = group_map.gather(theta)
        U = self.penalty.prox(V, 1.0 / self.beta, sizes=trainer.group_sizes)
        group_map.scatter_(theta, U)

    @torch.no_grad()
    def resplit(self, trainer: ProximalTrainer) -> None:
        """``u = prox_{P / beta}(w)`` into the network, from the stored ``w``.

        For when the network holds a ``u`` that is out of date (``beta`` or
        the penalty changed).

        Parameters
        ----------
        trainer : ProximalTrainer
            The trainer whose network holds ``u``.
        """
        trainer.net.theta.detach().copy_(self.relaxed)
        self._project(trainer)

    @torch.no_grad()
    def before_gradient(self, step: StepContext) -> None:
        # the network holds u = prox(w) on the grouped weights and w elsewhere:
        # w - u (the coupling direction) is kept on the way back to w
        theta = step.theta
        coupling = vars(self).get("_coupling")
        if coupling is None or coupling.shape != theta.shape:
            coupling = self._coupling = torch.empty_like(theta)
        torch.sub(self.relaxed, theta, out=coupling)
        theta.copy_(self.relaxed)

    @torch.no_grad()
    def add_gradient(self, step: StepContext) -> None:
        step.grad.add_(self._coupling, alpha=self.beta)  # beta (w - u)

    @torch.no_grad()
    def after_step(self, step: StepContext) -> None:
        self.relaxed.copy_(step.theta)
        self._project(step.trainer)

    def end_of_epoch(self, trainer: ProximalTrainer) -> None:
        if trainer.n_iter % self.every == 0:
            self.beta *= self.growth
            self.resplit(trainer)

    def objective_term(self, trainer: ProximalTrainer, theta: Tensor) -> Tensor:
        group_map, sizes = trainer.group_map, trainer.group_sizes
        U = group_map.gather(theta)
        W = group_map.gather(self.relaxed)
        return (
            self.penalty.value(U, sizes=sizes) + 0.5 * self.beta * ((W - U) ** 2).sum()
        )

    def penalty_point(self, theta: Tensor) -> Tensor:
        return self.relaxed

    def state(self) -> dict:
        return dict(relaxed=self.relaxed.clone(), beta=self.beta)

    def load_state(self, state: dict) -> None:
        self.relaxed.copy_(state["relaxed"])
        self.beta = state["beta"]

    def select(self, keep: Tensor) -> None:  # pragma: no cover - refused by attach
        raise ValueError("removing units while training is not supported with RVSM")

    def renew(self, new: SplitVariable, trainer: ProximalTrainer) -> None:
        # beta is learned state: it goes on from where it is
        self.penalty, self.growth, self.every = new.penalty, new.growth, new.every
        self.resplit(trainer)  # the network's u was the old penalty's

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_coupling", None)  # a work buffer, made again on demand
        return state


class SignVarianceDetector(LoopComponent):
    """ShrinkNets' sign-variance death detector for switches (ALGORITHMS.md 3.5c).

    In this mode the switches' l1 penalty is applied as a subgradient (as in
    the ShrinkNets experiments), so switches do not reach zero by themselves:
    after every optimizer step, for each switch ``s = sign(beta)``,
    ``d = s - m``, ``v <- gamma v + (1 - gamma) d^2``, ``m <- gamma m +
    (1 - gamma) s``; once ``v > tau`` the switch is dead for good and held at
    zero. ``m`` starts at ``sign(beta_0)`` and ``v`` at 0. With ``gamma = 0``
    the first sign change kills (one flip gives ``v = 4``).

    When the step engine runs numba kernels, so does the detector
    (``_kernels.add_l1_subgradient`` and ``_kernels.sign_variance_update``);
    otherwise its tensor methods run.

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

        ``grad += strengths * sign(beta)`` on the switch coordinates.

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

    # -- as a component of the loop ----------------------------------------
    def attach(self, trainer: ProximalTrainer) -> None:
        self.reset(trainer.net.theta.detach()[trainer.net.layout.switch_segment])

    def _kernel_arrays(self, step: StepContext) -> tuple:
        """``(switches, their gradient, m, v, alive, strengths)`` as NumPy views."""
        theta, grad = step.arrays
        own = step.engine.numpy_views(
            "detector", self.m, self.v, self.alive, self.strengths
        )
        return theta[step.switches], grad[step.switches], *own

    def add_gradient(self, step: StepContext) -> None:
        if step.arrays is not None:
            switches, grad, _, _, _, strengths = self._kernel_arrays(step)
            _kernels.add_l1_subgradient(switches, grad, strengths)
        else:
            segment = step.switches
            self.add_subgradient(step.theta[segment], step.grad[segment])

    def after_step(self, step: StepContext) -> None:
        if step.arrays is not None:
            switches, _, m, v, alive, _ = self._kernel_arrays(step)
            _kernels.sign_variance_update(
                switches, m, v, alive, self.inertia, self.threshold
            )
        else:
            self.update(step.theta[step.switches])

    def objective_term(self, trainer: ProximalTrainer, theta: Tensor) -> Tensor:
        return self.penalty_value(theta[trainer.net.layout.switch_segment])

    def state(self) -> dict:
        return {
            name: getattr(self, name).clone()
            for name in ("strengths", "m", "v", "alive")
        }

    def load_state(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value.clone())

    def renew(self, new: SignVarianceDetector, trainer: ProximalTrainer) -> None:
        self.strengths = new.strengths
        self.inertia, self.threshold = new.inertia, new.threshold


class FixedSupport(LoopComponent):
    """Hold every weight and switch that is zero when training starts at zero.

    The relaxed fit (Meinshausen's relaxed lasso, for networks): a model
    selected by a penalty is trained on without it, on the support it
    selected. Zeroing the held coordinates after every step is the Euclidean
    projection onto ``{theta : theta_j = 0 for j held}``, and the projection in
    any diagonal metric (Adam's included) too, so the step is the exact
    projected step of every optimizer. Biases are never held.

    The held coordinates are read from the parameters before the first step
    and again whenever the network changes (units removed, a restore): held
    coordinates are zero then, and a free one is zero only by coincidence.
    """

    def __init__(self):
        self._layout = None
        self._held = None

    @torch.no_grad()
    def before_gradient(self, step: StepContext) -> None:
        layout = step.trainer.net.layout
        if layout is not self._layout:
            theta = step.theta
            penalisable = layout.weight_mask(theta.device)
            penalisable[layout.switch_segment] = True
            self._held = torch.nonzero(penalisable & (theta == 0)).flatten()
            self._layout = layout

    @torch.no_grad()
    def after_step(self, step: StepContext) -> None:
        step.theta.index_fill_(0, self._held, 0.0)
