"""K networks of one architecture trained as one: the batched engine.

A cross-validated path fits the same network on every fold, each with its own
rows; a grid fits it at every alpha. Small tabular networks are
overhead-bound, so K of them stacked into one network (weights of shape
``(K, n_out, n_in)``, every product a batched matrix product) cost little more
than one. :class:`BatchedTrainer` takes K :class:`ProximalTrainer` s built as
for K single fits and trains them together so that network ``k`` goes exactly
as its single fit would (same initial weights, the same mini-batches of its
own rows in the same order, the same steps), up to floating-point rounding:

* the parameters of all K are one flat vector, network after network, so the
  optimizer (elementwise: its own moments per network) and the penalty's prox
  (per group: each network's groups carry its own strengths,
  :meth:`~skgroupsparse.penalties.Penalty.stack`) are the single fit's own
  step engine (:mod:`.engines`: the numba kernels on the CPU, tensor
  operations and CUDA graphs on CUDA) run on the stacked vector;
* the loss gradient is :func:`~skgroupsparse.network.stacked_loss_and_grad`,
  each network on a batch of its own rows, with a mean over that batch;
* units a single fit would remove while training (``remove_every``) are held
  at zero instead (masked), which is the same training (removal is exact);
  units that no network keeps any more leave the stack (it is rebuilt as wide
  as the widest network), and each trainer is compacted when the fit ends;
* a network that stops (its training loss stopped improving) leaves the batch,
  and the others go on.

What a single fit has that this engine does not (a batch of such trainers is
refused with the reason, :func:`batch_refusal`): components (RVSM, the
sign-variance detector), switches (ShrinkNets), early stopping on validation
data, a learning-rate schedule other than ``"constant"``, networks whose rows
give them different batch sizes or numbers of batches.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from skgroupsparse.network import (
    kept_units,
    live_units,
    select_units,
    stacked_loss_and_grad,
)
from skgroupsparse.training.device import subnormals_flushed
from skgroupsparse.training.engines import choose
from skgroupsparse.training.loop import ProximalTrainer, TrainConfig, TrainingDiverged
from skgroupsparse.training.optimizers import FlatOptimizer

if TYPE_CHECKING:  # pragma: no cover
    from skgroupsparse.groups import GroupMap
    from skgroupsparse.penalties import Penalty

__all__ = ["BatchedTrainer", "batch_refusal", "rows_refusal"]

#: what must be the same in the configurations of trainers batched together
_SHARED_CONFIG = (
    "loss",
    "optimizer",
    "learning_rate",
    "learning_rate_init",
    "momentum",
    "nesterovs_momentum",
    "beta_1",
    "beta_2",
    "epsilon",
    "batch_size",
    "tol",
    "n_iter_no_change",
    "shuffle",
    "prox",
    "remove_every",
    "engine",
)


def batch_refusal(
    trainers: Sequence[ProximalTrainer], n_rows: Sequence[int]
) -> str | None:
    """Why these trainers cannot be trained as one batched network, or None.

    Parameters
    ----------
    trainers : sequence of ProximalTrainer
        The trainers, each at its original widths.
    n_rows : sequence of int
        The number of training rows of each.

    Returns
    -------
    str or None
        The first reason found, or None when they can be batched.
    """
    first = trainers[0]
    for tr in trainers:
        net = tr.net
        if tr.components:
            return "a trainer has components (RVSM, a death detector)"
        if net.layout.switches:
            return "networks with switches (ShrinkNets)"
        if tuple(net.layout.layer_sizes) != tuple(tr.original_sizes):
            return "a network has units removed (expand it first)"
        if net.layout.layer_sizes != first.net.layout.layer_sizes:
            return "the networks differ in their layer sizes"
        if net.activation != first.net.activation:
            return "the networks differ in their activation"
        if (net.theta.dtype, net.theta.device) != (
            first.net.theta.dtype,
            first.net.theta.device,
        ):
            return "the networks differ in dtype or device"
        if (tr.penalty is None) != (first.penalty is None):
            return "some trainers have a penalty and others none"
        if tr.stop_rule is not None:
            return "a trainer has a stop rule (the target search's)"
        if tr.lr != first.lr:
            return "the trainers' learning rates differ"
        for name in _SHARED_CONFIG:
            if getattr(tr.config, name) != getattr(first.config, name):
                return f"the trainers differ in {name}"
    if first.config.learning_rate != "constant":
        return f"learning_rate={first.config.learning_rate!r} (only 'constant')"
    if first.penalty is not None:
        try:
            type(first.penalty).stack([tr.penalty for tr in trainers])
        except ValueError as error:
            return str(error)
    steps = {tr.optimizer.n_steps for tr in trainers}
    if len(steps) > 1:
        # a warm start that keeps the optimizer state: the folds' last fits
        # stopped after different numbers of steps
        return "the optimizers have taken different numbers of steps"
    return rows_refusal([tr.config.batch_size for tr in trainers], n_rows)


def rows_refusal(batch_sizes: Sequence[int], n_rows: Sequence[int]) -> str | None:
    """Why networks with these rows cannot step together, or None.

    Every network of a batch takes the same number of mini-batches an epoch,
    of one size (the last one of each may be smaller).

    Parameters
    ----------
    batch_sizes : sequence of int
        Each network's ``batch_size``.
    n_rows : sequence of int
        Each network's number of training rows.

    Returns
    -------
    str or None
        The reason, or None when they can.
    """
    sizes = {max(1, min(int(b), n)) for b, n in zip(batch_sizes, n_rows)}
    if len(sizes) > 1:
        return "the networks' rows give them different batch sizes"
    bs = sizes.pop()
    if len({-(-n // bs) for n in n_rows}) > 1:
        return "the networks' rows give them different numbers of batches"
    return None


class BatchedTrainer:
    """K trainers of one architecture trained as one network.

    Parameters
    ----------
    trainers : sequence of ProximalTrainer
        Built as for K single fits, at their original widths (see
        :func:`batch_refusal` for what they must share); their penalties may
        differ in strength. They are updated in place as their single fits
        would update them: parameters, optimizer state, counters,
        ``loss_curve`` and ``history``, and with ``remove_every`` their dead
        units removed at the end.

    Attributes
    ----------
    stacked_sizes : list of tuple of int
        The layer sizes of every stack built, in order: narrower than the
        networks' when no network keeps some units (``remove_every``).
    """

    def __init__(self, trainers: Sequence[ProximalTrainer]):
        self.trainers = list(trainers)
        self.stacked_sizes = []

    def fit(
        self,
        data: Sequence[tuple[Tensor, Tensor]],
        generators: Sequence[torch.Generator],
        max_iter: int,
    ) -> list[bool]:
        """Train every network for at most ``max_iter`` epochs.

        Parameters
        ----------
        data : sequence of (X, y)
            Each network's training rows: inputs with the original features
            and targets as :meth:`SparseMLP.loss_and_grad` takes them.
        generators : sequence of torch.Generator
            Each network's shuffling.
        max_iter : int
            The most epochs of each.

        Returns
        -------
        list of bool
            Per network, whether it stopped before ``max_iter`` (its training
            loss stopped improving).

        Raises
        ------
        ValueError
            If the trainers cannot be batched (:func:`batch_refusal`).
        TrainingDiverged
            If a network diverges; the message names it (``network k``) and
            so does its attribute ``network`` (``k``). The
            trainers are then part-way through (an estimator fits copies of
            its trainer, so no fitted model changes).
        """
        trainers = self.trainers
        n_rows = [int(X.shape[0]) for X, _ in data]
        reason = batch_refusal(trainers, n_rows)
        if reason is not None:
            raise ValueError(f"these trainers cannot be batched: {reason}")
        config = trainers[0].config
        self._bs = max(1, min(int(config.batch_size), n_rows[0]))
        self._n_batches = -(-n_rows[0] // self._bs)
        for tr in trainers:
            tr.interrupted = tr.rule_fired = False
        with subnormals_flushed():
            stopped = self._fit(data, generators, max_iter, n_rows)
        for tr in trainers:
            tr.engine.rebind()  # the parameters were written from outside
            if tr.config.remove_every is not None:
                tr.remove_dead()
        return stopped

    def _fit(self, data, generators, max_iter, n_rows) -> list[bool]:
        trainers = self.trainers
        stopped = [False] * len(trainers)
        active = list(range(len(trainers)))
        self._stack(active, n_rows)
        for _ in range(max_iter):
            began = time.perf_counter()
            means, costs = self._epoch(active, data, generators, n_rows)
            finished = self._end_epoch(active, means, costs, n_rows, began)
            for k in finished:
                stopped[k] = True
            if finished or self._narrower:
                self._unstack(active)
                active = [k for k in active if k not in finished]
                if not active:
                    break
                self._stack(active, n_rows)
        else:
            self._unstack(active)
        return stopped

    # -- the stack ----------------------------------------------------------
    def _stack(self, active: list[int], n_rows: list[int]) -> None:
        """Stack the active trainers' parameters, state, groups and penalties.

        With ``remove_every``, only the units some network still keeps are
        stacked (the union over the networks): the others are removed in
        every single fit, so the batch is as narrow as its widest network.
        """
        trainers = [self.trainers[k] for k in active]
        first = trainers[0]
        full = first.net.layout
        device = first.net.theta.device
        union = self._union(trainers)
        layout, self._index, self._cols = full, None, None
        self._union_index = None
        group_map, pieces = first.group_map, []
        if union is not None:
            layout, index = select_units(full, union)
            self._index = index.to(device)
            self._union_index = [torch.nonzero(u).flatten().to(device) for u in union]
            self._cols = self._union_index[0]
            group_map = first._group_map_of(layout)
            kept = first.group_map.kept_groups(union)
        for tr in trainers:
            optimizer = copy.copy(tr.optimizer)
            theta, penalty, sizes = tr.net.theta.detach(), tr.penalty, tr.group_sizes
            if union is not None:
                theta = theta[self._index]
                optimizer.first = tr.optimizer.first[self._index]
                optimizer.second = tr.optimizer.second[self._index]
                penalty = None if penalty is None else penalty.select(kept)
                sizes = sizes[kept.to(sizes.device)]
            pieces.append((theta, optimizer, penalty, sizes))
        self._layout = layout
        self.stacked_sizes.append(layout.layer_sizes)
        K, stride = len(trainers), layout.n_params + 1
        flat = torch.cat([theta for theta, _, _, _ in pieces])
        stack = _Stack(
            _StackedNet(flat),
            FlatOptimizer.stack([opt for _, opt, _, _ in pieces], flat),
            None,
            group_map.stack(K, stride),
            torch.cat([sizes for _, _, _, sizes in pieces]),
            first.config,
        )
        if first.penalty is not None:
            stack.penalty = type(first.penalty).stack([p for _, _, p, _ in pieces])
        self._stacked = stack
        self._optimizer = stack.optimizer
        self._engine = choose(first.config.engine, flat.device)(stack)
        buffers = self._engine.buffers()
        self._theta = buffers.theta.view(K, stride)
        self._grad = buffers.grad.view(K, stride)
        self._views = [
            _stacked_views(self._theta, layout),
            _stacked_views(self._grad, layout),
        ]
        self._rows = torch.tensor([n_rows[k] for k in active])
        self._counts, self._scale = self._batch_rows(self._rows)
        self._held = None
        self._sizes = [list(layout.layer_sizes)] * K
        self._units = self._theta.new_full(
            (K,), float(sum(layout.layer_sizes[:-1])), dtype=torch.float64
        )
        self._narrower = False
        if first.config.remove_every is not None:
            self._hold_removed()

    def _union(self, trainers) -> list[Tensor] | None:
        """The units some network keeps, per layer of units; None: all of them."""
        if trainers[0].config.remove_every is None:
            return None
        union = None
        for tr in trainers:
            keep = tr._kept_units()
            union = keep if union is None else [u | k for u, k in zip(union, keep)]
        if all(bool(u.all()) for u in union):
            return None
        return union

    @torch.no_grad()
    def _write(self, i: int, tr: ProximalTrainer) -> None:
        """Network ``i`` of the stack into its trainer's full-width parameters."""
        theta = tr.net.theta.detach()
        if self._index is None:
            theta.copy_(self._theta[i])
        else:
            theta.zero_()
            theta[self._index] = self._theta[i]

    def _unstack(self, active: list[int]) -> None:
        """Write the stacked parameters and optimizer state back to the trainers."""
        first, second = (
            buf.view(len(active), -1)
            for buf in (self._optimizer.first, self._optimizer.second)
        )
        for i, k in enumerate(active):
            tr = self.trainers[k]
            self._write(i, tr)
            for buffer, rows in (
                (tr.optimizer.first, first),
                (tr.optimizer.second, second),
            ):
                if self._index is None:
                    buffer.copy_(rows[i])
                else:
                    buffer.zero_()
                    buffer[self._index] = rows[i]
            tr.optimizer.n_steps = self._optimizer.n_steps

    def _batch_rows(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Each network's rows per batch, and every row's weight ``1 / B``.

        Returns ``counts`` of shape ``(K, n_batches)`` (a network's last batch
        may be smaller) and ``scale`` of shape ``(K, max rows)``: ``1 / B`` on
        each row of a batch of ``B`` rows, in the parameters' dtype as the
        single fit scales its batch, 0 on padding.
        """
        bs, dtype = self._bs, self._theta.dtype
        starts = torch.arange(self._n_batches) * bs
        counts = (rows.unsqueeze(1) - starts).clamp(0, bs).to(dtype)
        n_max = int(rows.max())
        valid = torch.arange(n_max).unsqueeze(0) < rows.unsqueeze(1)
        scale = counts.clamp(min=1).reciprocal()
        scale = scale.repeat_interleave(bs, dim=1)[:, :n_max] * valid
        device = self._theta.device
        return counts.to(device), scale.to(device)

    @torch.no_grad()
    def _hold_removed(self) -> None:
        """Zero (and hold) what a single fit's removal of dead units drops."""
        first = self.trainers[0]
        layout = self._layout
        stride = layout.n_params + 1
        held, self._sizes, union = [], [], None
        n_out = layout.layer_sizes[-1]
        for i in range(self._theta.shape[0]):
            weights, biases = layout.views(self._theta[i])
            keep = kept_units(weights, biases, first.net.activation)
            union = keep if union is None else [u | k for u, k in zip(union, keep)]
            # the widths a single fit has after this removal
            self._sizes.append([int(k.sum()) for k in keep] + [n_out])
            if all(bool(k.all()) for k in keep):
                continue
            kept = select_units(layout, keep)[1][:-1].to(self._theta.device)
            mask = torch.ones(layout.n_params, dtype=torch.bool, device=kept.device)
            mask[kept] = False
            held.append(torch.nonzero(mask).flatten() + i * stride)
        self._held = torch.cat(held) if held else None
        # a unit no network keeps any more: the stack can be made narrower
        self._narrower = not all(bool(u.all()) for u in union)
        self._units = self._theta.new_tensor(
            [float(sum(n[:-1])) for n in self._sizes], dtype=torch.float64
        )
        if self._held is not None:
            self._theta.view(-1).index_fill_(0, self._held, 0.0)

    # -- an epoch -----------------------------------------------------------
    @torch.no_grad()
    def _epoch(self, active, data, generators, n_rows) -> tuple[Tensor, Tensor]:
        """One epoch of every active network.

        Returns each network's mean loss over the epoch (each batch's mean
        loss weighted by its rows, or by its rows' sample weights) and summed
        input neurons (its widths times its rows).
        """
        first = self.trainers[0]
        config = first.config
        K = len(active)
        n_max = int(self._rows.max())
        _, y0 = data[active[0]]
        theta = self._theta
        Xs = theta.new_zeros(K, n_max, self._layout.layer_sizes[0])
        Ys = theta.new_zeros(K, n_max, y0.shape[1])
        for i, k in enumerate(active):
            X, y = data[k]
            order = torch.arange(n_rows[k])
            if config.shuffle:
                order = torch.randperm(n_rows[k], generator=generators[k])
            order = order.to(X.device)
            if self._cols is not None:
                X = X.index_select(1, self._cols.to(X.device))
            Xs[i, : n_rows[k]] = X.index_select(0, order)
            Ys[i, : n_rows[k]] = y.index_select(0, order)
        every = config.remove_every
        every = None if every is None or every == "epoch" else int(every)
        flat = theta.view(-1)
        (weights, biases), (gweights, gbiases) = self._views
        totals = theta.new_zeros(K)
        mass = theta.new_zeros(K)
        costs = totals.new_zeros(K, dtype=torch.float64)
        # sample weights ride as a column past the outputs: a batch's mean loss
        # then counts by its weight in the epoch's mean, as in a single fit
        weighted = Ys.shape[2] > self._layout.layer_sizes[-1]
        engine, optimizer, lr = self._engine, self._optimizer, first.lr
        bs = self._bs
        for b in range(self._n_batches):
            rows = slice(b * bs, (b + 1) * bs)
            scale = self._scale[:, rows]
            loss = stacked_loss_and_grad(
                Xs[:, rows],
                Ys[:, rows],
                config.loss,
                first.net.activation,
                weights,
                biases,
                gweights,
                gbiases,
                scale,
            )
            counts = self._counts[:, b]
            weight = Ys[:, rows, -1].sum(dim=1) if weighted else counts
            totals += loss * weight
            mass += weight
            # the input neurons of every row (the widths of this batch)
            costs += self._units * counts
            engine.optimizer_step(lr)
            if self._held is not None:
                # before the prox: removed coordinates are no part of a group
                flat.index_fill_(0, self._held, 0.0)
            if self._stacked.penalty is not None:
                engine.prox(optimizer.prox_step_size(lr))
            if every is not None and (b + 1) % every == 0 and b + 1 < self._n_batches:
                self._hold_removed()
        tiny = torch.finfo(mass.dtype).tiny
        means = torch.where(mass > 0, totals / mass.clamp(min=tiny), 0.0 * totals)
        return means, costs

    def _end_epoch(self, active, means, costs, n_rows, began) -> list[int]:
        """Every active trainer's epoch bookkeeping, as its single fit does it.

        Returns the networks that stop.
        """
        means = means.tolist()
        costs = (costs / self._rows.to(costs)).tolist()
        for i, k in enumerate(active):
            # the objective with the penalty at the end of the epoch, before
            # the removal of dead units (as the single fit reads it)
            tr = self.trainers[k]
            self._write(i, tr)
            tr.loss_curve.append(float(means[i] + tr.penalty_value()))
        removing = self.trainers[0].config.remove_every is not None
        if removing:
            self._hold_removed()
        # every network's live units at once (the stack's widths, then placed
        # at the networks' original widths where the stack is narrower)
        masks = live_units(self._views[0][0])
        if self._union_index is not None:
            sizes = self.trainers[0].original_sizes
            masks = [
                m.new_zeros(m.shape[0], n).index_copy_(1, kept, m)
                for m, n, kept in zip(masks, sizes, self._union_index)
            ] + masks[-1:]
        finished = []
        for i, k in enumerate(active):
            tr = self.trainers[k]
            if removing:  # the removal zeroed more of the parameters
                self._write(i, tr)
            tr.t += n_rows[k]
            tr.n_iter += 1
            tr._epoch_cost = costs[i]
            try:
                stop = tr.close_epoch(
                    began, layer_sizes=self._sizes[i], masks=[m[i] for m in masks]
                )
            except TrainingDiverged as error:
                named = TrainingDiverged(f"network {k}: {error}")
                named.network = k
                raise named from error
            if stop:
                finished.append(k)
        return finished


@dataclass
class _Stack:
    """The stacked networks as a step engine reads a trainer.

    A :class:`~skgroupsparse.training.engines.StepEngine` steps a trainer's
    ``net.theta`` with its ``optimizer`` and the prox of its ``penalty`` on
    ``group_map``; given this, it steps the K networks' stacked vector.
    """

    net: _StackedNet
    optimizer: FlatOptimizer
    penalty: Penalty | None
    group_map: GroupMap
    group_sizes: Tensor
    config: TrainConfig
    engine_state: dict = field(default_factory=dict)


class _StackedNet:
    """The stacked parameter vector (what an engine reads of a network)."""

    def __init__(self, theta: Tensor):
        self.theta = theta
        self.layout = SimpleNamespace(switch_segment=slice(0, 0))


def _stacked_views(flat2d: Tensor, layout) -> tuple[list[Tensor], list[Tensor]]:
    """``(K, n_l, n_{l-1})`` weight and ``(K, n_l)`` bias views of K flat rows."""
    K = flat2d.shape[0]
    weights = [
        flat2d[:, off : off + o * i].view(K, o, i)
        for off, (o, i) in zip(layout.weight_offsets, layout.weight_shapes)
    ]
    biases = [
        flat2d[:, off : off + o]
        for off, (o, _) in zip(layout.bias_offsets, layout.weight_shapes)
    ]
    return weights, biases
