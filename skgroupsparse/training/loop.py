"""The proximal training loop: the story of a fit.

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

Everything else that acts during a step is a component
(:mod:`~skgroupsparse.training.components`: RVSM's split variable, ShrinkNets'
death detector) and how each piece is computed is the step engine's
(:mod:`~skgroupsparse.training.engines`).

The loop never reads a value back to the host inside an epoch: batch losses
are summed on the device and read once per epoch.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from skgroupsparse.groups import (
    FlatLayout,
    GroupMap,
    build_group_map,
    build_switch_group_map,
)
from skgroupsparse.network import SparseMLP, live_units, select_units
from skgroupsparse.penalties import Penalty
from skgroupsparse.training.components import FixedSupport, LoopComponent
from skgroupsparse.training.device import cpu_threads_for
from skgroupsparse.training.engines import StepEngine, choose
from skgroupsparse.training.optimizers import FlatOptimizer
from skgroupsparse.training.readout import NetworkReadout
from skgroupsparse.training.sparse_rows import dense_rows

__all__ = ["ProximalTrainer", "TrainConfig", "TrainingDiverged"]


class TrainingDiverged(ValueError):
    """The loss or the weights became non-finite."""


@dataclass
class TrainConfig:
    """Hyper-parameters of the loop (names follow ``MLPClassifier``).

    Parameters
    ----------
    loss : {"squared", "softmax", "logistic"}
        The loss (one of :data:`~skgroupsparse.network.LOSSES`).
    optimizer : {"adam", "sgd", "adamax", "rmsprop"}, default="adam"
        The optimizer (see
        :class:`~skgroupsparse.training.optimizers.FlatOptimizer`).
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
        Adam's and Adamax's ``beta_1`` (see
        :class:`~skgroupsparse.training.optimizers.FlatOptimizer`).
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
    engine : {"auto", "numba", "torch"}, default="auto"
        The step engine (:func:`~skgroupsparse.training.engines.choose`):
        ``"auto"`` is the innermost
        :func:`~skgroupsparse.training.engines.use_engine`, else numba on the
        CPU and torch elsewhere.
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
    engine: str = "auto"


def _cumulative_weights(y, n_outputs: int):
    """Running sums of the rows' sample weights (0 first), or None unweighted.

    The weights are the column of ``y`` past the ``n_outputs`` targets; they
    are read to the host once an epoch.
    """
    if y.shape[1] <= n_outputs:
        return None
    weights = torch.as_tensor(y[:, n_outputs]).detach().to("cpu", torch.float64)
    return torch.cat([weights.new_zeros(1), torch.cumsum(weights, 0)])


@dataclass
class ProximalTrainer(NetworkReadout):
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
    components : list of LoopComponent, optional
        What hooks into the loop beside the prox
        (:mod:`~skgroupsparse.training.components`: RVSM's split variable,
        ShrinkNets' death detector); starts empty.
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
    settle_epochs : int or None, default=None
        A warm stage of a path ends once it has settled: its support (live
        input features and live neurons per layer, read after every epoch)
        the same for this many epochs and its objective not improved by
        ``config.tol`` for as many (:meth:`settled`). None: only
        ``max_iter`` and the usual plateau rule stop a training.

    Attributes
    ----------
    optimizer : FlatOptimizer
        The optimizer and its state.
    engine : StepEngine
        How a step is computed (:mod:`~skgroupsparse.training.engines`),
        chosen by ``config.engine`` when first needed; a copy of the trainer
        makes its own (buffers are not copied).
    engine_state : dict
        What the engines keep that is not a buffer and that a copy keeps:
        whether CUDA graphs failed, the Newton starting points of the groups
        kept by a removal that no prox has used yet.
    group_sizes : Tensor of shape (n_groups,)
        The group sizes the penalty weights use: those of the original network
        (the objective does not change when a unit goes).
    lr : float
        The current learning rate.
    original_sizes : tuple of int
        The layer sizes of the network before any unit was removed.
    kept : list of LongTensor
        Per layer of units but the outputs, the original indices of the units
        the network still has.
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
    components: list = field(default_factory=list)
    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    history: list = field(default_factory=list)
    best_loss: float = float("inf")
    best_validation_score: float = -float("inf")
    no_improvement_count: int = 0
    n_iter: int = 0
    t: int = 0
    stop_rule: Callable[[ProximalTrainer], bool] | None = None
    settle_epochs: int | None = None

    def __post_init__(self):
        self.lr = float(self.config.learning_rate_init)
        self.reset_optimizer()
        self._best = None
        # group sizes as floats of the parameter dtype: no conversion per step
        self.group_sizes = self.group_map.sizes.to(self.net.theta.dtype)
        self.original_sizes = self.net.layout.layer_sizes
        self.kept = [torch.arange(n) for n in self.original_sizes[:-1]]
        self.engine_state = {}
        for component in self.components:
            component.attach(self)

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_engine", None)  # buffers and views: a copy makes its own
        return state

    def __deepcopy__(self, memo):
        # an epoch's history row is written once and never changed, so a copy
        # shares the rows: copying them one by one cost 10 ms a copy after a
        # path's few hundred epochs, most of a search's copying
        state = self.__getstate__()
        history = state.pop("history")
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        vars(new).update(copy.deepcopy(state, memo))
        new.history = list(history)
        return new

    @property
    def engine(self) -> StepEngine:
        """The step engine, chosen when first needed.

        Chosen again when ``config.engine`` names another.
        """
        cached = vars(self).get("_engine")
        if cached is None or cached[0] != self.config.engine:
            kind = choose(self.config.engine, self.net.theta.device)
            cached = self._engine = (self.config.engine, kind(self))
        return cached[1]

    def component(self, kind: type) -> LoopComponent | None:
        """The component of type ``kind``, or None.

        Parameters
        ----------
        kind : type
            A subclass of :class:`LoopComponent`.

        Returns
        -------
        LoopComponent or None
            The first component that is an instance of ``kind``.
        """
        return next((c for c in self.components if isinstance(c, kind)), None)

    def renew_components(self, components: list) -> None:
        """Take new components' settings, keeping what was learned (warm start).

        Parameters
        ----------
        components : list of LoopComponent
            Freshly built components, of the same types as the trainer's.

        Raises
        ------
        ValueError
            If their types differ from the trainer's components'.
        """
        if [type(c) for c in components] != [type(c) for c in self.components]:
            raise ValueError(
                "a warm start cannot change the loop's components: "
                f"{[type(c).__name__ for c in self.components]} -> "
                f"{[type(c).__name__ for c in components]}"
            )
        for old, new in zip(self.components, components):
            old.renew(new, self)

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
        return torch.as_tensor(self._step(X, y), dtype=self.net.theta.dtype)

    def _step(self, X, y):
        """The step of :meth:`train_step` on the engine's data; its loss as the
        engine gives it (a float, or a 0-d tensor on the device)."""
        engine, components = self.engine, self.components
        step = engine.buffers()
        for component in components:
            component.before_gradient(step)
        loss = engine.loss_and_grad(X, y)
        for component in components:
            component.add_gradient(step)
        engine.optimizer_step(self.lr)
        if self.penalty is not None:
            # the optimizer's effective step (lr / (1 - momentum) for SGD with
            # momentum): a fixed point is then stationary for the alpha given
            engine.prox(self.optimizer.prox_step_size(self.lr))
        for component in components:
            component.after_step(step)
        return loss

    # -- removing units ---------------------------------------------------
    @torch.no_grad()
    def remove_dead(self) -> Tensor | None:
        """Physically remove the units that cannot reach the outputs.

        The weights, the optimizer state, the group map, the penalty's
        per-group strengths and the components' state are all sliced with the
        same indices; the engine then rebinds its buffers.

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
        group_map = self._group_map_of(layout)
        if group_map.n_groups != int(groups_kept.sum()):  # pragma: no cover
            raise RuntimeError(
                "removing units: the rebuilt group map does not match the kept "
                f"groups ({group_map.n_groups} != {int(groups_kept.sum())})"
            )
        self.optimizer.select(index)
        if self.penalty is not None:
            self.penalty = self.penalty.select(groups_kept)
        self.group_sizes = self.group_sizes[groups_kept]
        self.group_map = group_map
        for component in self.components:
            component.select(torch.cat(keep))
        self.kept = [old[k.cpu()] for old, k in zip(self.kept, keep)]
        self.net = new_net
        self.engine.rebind(groups_kept)
        return torch.nonzero(keep[0]).flatten()

    def _group_map_of(self, layout: FlatLayout) -> GroupMap:
        """The groups of the trainer's family on ``layout``, on its device."""
        if self.group_map.family == "switch":
            group_map = build_switch_group_map(layout)
        else:
            group_map = build_group_map(
                layout, self.group_map.family, features=self.group_map.features
            )
        return group_map.to(self.net.theta.device)

    @torch.no_grad()
    def expand(self) -> None:
        """Put the removed units back, at zero: the network at its original widths.

        The inverse of :meth:`remove_dead` for the parameters, the optimizer
        state and the group map. A penalty's per-group strengths cannot be
        put back: when units are put back the penalty is dropped (None), and
        whoever expands sets one for the full group map (a network already at
        its original widths is left as it is). Components cannot be expanded
        either.

        Raises
        ------
        ValueError
            If the trainer has components.
        """
        sizes = self.original_sizes
        if tuple(self.net.layout.layer_sizes) == tuple(sizes):
            return
        if self.components:
            raise ValueError("a trainer with components cannot be expanded")
        net = self.net
        theta = net.theta.detach()
        layout = FlatLayout(sizes, net.layout.switches)
        keep = []
        for n, kept in zip(sizes[:-1], self.kept):
            mask = torch.zeros(n, dtype=torch.bool)
            mask[kept.cpu()] = True  # kept may follow the model to a device
            keep.append(mask)
        index = select_units(layout, keep)[1].to(theta.device)
        full = SparseMLP(
            sizes,
            net.activation,
            dtype=theta.dtype,
            device=theta.device,
            switches=layout.switches,
        )
        full.theta.detach()[index] = theta
        self.optimizer.expand(index, layout.n_params + 1)
        self.group_map = self._group_map_of(layout)
        self.group_sizes = self.group_map.sizes.to(theta.dtype)
        self.penalty = None
        self.kept = [torch.arange(n) for n in sizes[:-1]]
        self.net = full
        self.engine_state.pop("r_state", None)  # Newton starts of the old groups
        self.engine.rebind()

    def freeze_support(self) -> None:
        """Go on without the penalty, on the support the network has now.

        The components are dropped (the network holds the model: RVSM's
        relaxed variable is let go) and a
        :class:`~skgroupsparse.training.components.FixedSupport` holds every
        zero weight and switch at zero from then on: the relaxed fit. A dead
        unit stays dead (its zero weights are held; the weights it still has
        get no gradient) and is removed now when units are removed while
        training (``config.remove_every``). A new optimizer state follows.
        """
        self.components = []
        self.penalty = None
        if self.config.remove_every is not None:
            self.remove_dead()
        self.components = [FixedSupport()]
        self.reset_optimizer()

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
        engine = self.engine
        X_s, y_s = engine.epoch_data(X, y, perm)
        total = engine.zero()  # summed on the device: no host read per batch
        start, batches, cost, seen = 0, 0, 0.0, 0
        # with sample weights (a column past the outputs) a batch's mean loss
        # counts by its weight, not its rows: the epoch's weighted mean
        mass = _cumulative_weights(y_s, self.net.layout.layer_sizes[-1])
        done, weight_seen = 0, 0.0
        self.rule_fired = False
        while start < X_s.shape[0]:
            stop = min(start + bs, X_s.shape[0])
            cost += sum(self.net.layout.layer_sizes[:-1]) * (stop - start)
            # sparse data is made dense one mini-batch at a time
            loss = self._step(dense_rows(X_s[start:stop]), y_s[start:stop])
            weight = stop - start
            if mass is not None:
                weight = float(mass[done + stop] - mass[done + start])
            total = engine.accumulate(total, loss, weight)
            weight_seen += weight
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
                    X_s = engine.drop_columns(X_s, columns)
                    done += start
                    start = 0
        self.t += seen
        self.n_iter += 1
        mean = total / weight_seen if weight_seen > 0 else 0.0 * total
        value = float(mean + self.penalty_value())  # the epoch's host read
        self.loss_curve.append(value)
        self._epoch_cost = cost / seen
        if self.config.remove_every is not None:
            self.remove_dead()
        if self.config.learning_rate == "invscaling":
            self.lr = (
                self.config.learning_rate_init / (self.t + 1) ** self.config.power_t
            )
        for component in self.components:
            component.end_of_epoch(self)
        return value

    def penalty_value(self) -> Tensor:
        """The penalty part of the objective, with every component's term.

        Returns
        -------
        Tensor
            A 0-d tensor on the parameters' device.
        """
        theta = self.net.theta.detach()
        point = theta
        for component in self.components:
            point = component.penalty_point(point)
        if self.penalty is not None:
            V = self.group_map.gather(point)
            value = self.penalty.value(V, sizes=self.group_sizes)
        else:
            value = torch.zeros((), dtype=theta.dtype, device=theta.device)
        for component in self.components:
            term = component.objective_term(self, theta)
            if term is not None:
                value = value + term
        return value

    # -- snapshots --------------------------------------------------------
    def _snapshot(self) -> dict:
        """Everything a step changes, copied (small next to an epoch's work)."""
        return dict(
            net=self.net,
            theta=self.net.theta.detach().clone(),
            group_map=self.group_map,
            penalty=self.penalty,
            group_sizes=self.group_sizes,
            kept=list(self.kept),
            optimizer=self.optimizer.state(),
            components=[c.state() for c in self.components],
            epochs=len(self.history),
            n_iter=self.n_iter,
            t=self.t,
            lr=self.lr,
        )

    @torch.no_grad()
    def _restore(self, snap: dict, counters: bool = True) -> None:
        """Go back to ``snap``; ``counters=False`` keeps epochs, samples, rate."""
        network_changed = snap["net"] is not self.net
        self.net = snap["net"]
        self.net.theta.copy_(snap["theta"])
        self.group_map, self.penalty = snap["group_map"], snap["penalty"]
        self.group_sizes, self.kept = snap["group_sizes"], list(snap["kept"])
        self.optimizer.load_state(snap["optimizer"])
        for component, state in zip(self.components, snap["components"]):
            component.load_state(state)
        if counters:
            self.n_iter, self.t, self.lr = snap["n_iter"], snap["t"], snap["lr"]
        if network_changed:
            self.engine.rebind()

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
        engine = self.engine
        with cpu_threads_for(engine.drives_cpu_kernels, work):
            stopped = self._epochs(
                X, y, generator, max_iter, validation_score, incremental
            )
        # a stop rule ends the training where it holds: the best validation
        # epoch before it would not meet it
        if validation_score is not None and not incremental and not self.rule_fired:
            self.restore_best()
        engine.end_fit()  # the shuffled copy of the data is not part of the model
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
                if self.close_epoch(began, validation_score, incremental):
                    stopped = True
                    break
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

    def close_epoch(
        self,
        began: float,
        validation_score: Callable[[], float] | None = None,
        incremental: bool = False,
        layer_sizes: list[int] | None = None,
        masks: list[Tensor] | None = None,
    ) -> bool:
        """After an epoch: check, score, record, count; whether to stop.

        Parameters
        ----------
        began : float
            When the epoch began (:func:`time.perf_counter`).
        validation_score : callable or None, default=None
            Early stopping's score, called once.
        incremental : bool, default=False
            A ``partial_fit``: no stop at a plateau.
        layer_sizes : list of int, default=None
            The widths to record in ``history`` (the batched engine's, where
            units are masked, not removed); None: the network's.
        masks : list of Tensor, default=None
            The live units of the network at its original widths
            (:func:`~skgroupsparse.network.live_units`), when the caller has
            them (the batched engine reads all its networks' at once); None:
            read from the network.

        Returns
        -------
        bool
            True to stop: the stop rule fired, or a plateau ended the training.

        Raises
        ------
        TrainingDiverged
            If the objective or the parameters are not finite.
        """
        self.check_finite()
        score = validation_score() if validation_score is not None else None
        self._record_epoch(time.perf_counter() - began, layer_sizes, masks)
        self.update_no_improvement(score)
        if self.config.verbose:
            self._print_progress(score)
        if self.rule_fired:
            return True
        if incremental:
            return False
        if self.settled():
            if self.config.verbose:
                print(
                    f"Support unchanged and the objective settled for "
                    f"{self.settle_epochs} epochs. Stopping."
                )
            return True
        if self.no_improvement_count > self.config.n_iter_no_change:
            if self.trigger_stopping():
                if self.config.verbose:
                    print(self._stop_message(validation_score is not None))
                return True
            self.no_improvement_count = 0
        return False

    def settled(self) -> bool:
        """Whether a warm stage has settled (see ``settle_epochs``).

        The support read after each of the last ``settle_epochs`` epochs is
        the one of the epoch before them, and none of those epochs improved the
        objective by ``config.tol`` (``no_improvement_count``, reset when a
        warm-started fit begins, so the epochs are this fit's).

        Returns
        -------
        bool
            False without ``settle_epochs``.
        """
        n = self.settle_epochs
        if n is None or self.no_improvement_count < n or len(self.history) <= n:
            return False
        supports = {
            (row["live_features"], tuple(row["live_neurons"]))
            for row in self.history[-(n + 1) :]
        }
        return len(supports) == 1

    def _record_epoch(
        self, seconds: float, layer_sizes: list | None = None, masks: list | None = None
    ) -> None:
        """One row of ``history``: the epoch's size, cost and time."""
        if masks is None:
            masks = live_units(self.full_parameters()[0])
        if layer_sizes is None:
            layer_sizes = list(self.net.layout.layer_sizes)
        self.history.append(
            dict(
                epoch=self.n_iter,
                objective=self.loss_curve[-1],
                live_features=int(masks[0].sum()),
                live_neurons=[int(m.sum()) for m in masks[1:-1]],
                layer_sizes=list(layer_sizes),
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
