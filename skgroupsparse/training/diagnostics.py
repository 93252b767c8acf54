"""What a trained network says about itself: optimality and zero thresholds.

Read-only functions of a network, its groups, its penalty and the full-batch
loss gradient on some data; the loop never calls them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from skgroupsparse.groups import GroupMap
from skgroupsparse.network import SparseMLP
from skgroupsparse.penalties import Penalty
from skgroupsparse.training.components import SignVarianceDetector

__all__ = ["ThresholdReading", "optimality_residual", "read_thresholds"]


def _loss_gradient(net: SparseMLP, X: Tensor, y: Tensor, loss: str) -> Tensor:
    """The full-batch gradient of the mean loss (no penalty) at ``net.theta``."""
    grad = torch.zeros_like(net.theta.detach())
    net.loss_and_grad(X, y, loss, grad)
    return grad


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
    grad = _loss_gradient(net, X, y, loss)
    V = group_map.gather(net.theta)
    G = group_map.gather(grad)
    sizes = group_map.sizes if sizes is None else sizes
    group_res = penalty.subdiff_distance(V, G, sizes=sizes)
    if detector is not None and group_map.switch is not None:
        group_res = torch.where(group_map.switch, 0.0, group_res)
        layout = net.layout
        beta = net.theta[layout.switch_segment]
        g = grad[layout.switch_segment]
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
    X, y : Tensor
        The data whose full-batch loss gradient is read, as
        :func:`optimality_residual` takes it.
    loss : str
        One of :data:`~skgroupsparse.network.LOSSES`.
    sizes : Tensor or None, default=None
        As for :func:`optimality_residual`.

    Returns
    -------
    ThresholdReading
        The thresholds of the entries and units of the current network.
    """
    theta = net.theta.detach()
    grad = _loss_gradient(net, X, y, loss)
    sizes = group_map.sizes if sizes is None else sizes
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
