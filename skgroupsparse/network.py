"""The MLP used for training, its hand-written backward pass, and compaction.

:class:`SparseMLP` keeps every weight and bias in one flat parameter vector
(layout :class:`~skgroupsparse.groups.FlatLayout`), so that an optimizer step
and the prox over all groups are a handful of kernels whatever the depth. Its
:meth:`SparseMLP.loss_and_grad` computes the loss and writes the gradient into
a flat buffer by explicit backpropagation (no autograd graph), which is what
makes small-batch training cheap; :meth:`SparseMLP.forward` is an ordinary
autograd-capable forward pass used to check that gradient.

:func:`live_units` and :func:`compact` implement ALGORITHMS.md section 1.5: a
unit is live when some path of non-zero weights joins an input feature to the
output through it. A unit that no live input reaches outputs a constant, which
is folded into the next layer's bias before the unit is removed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from skgroupsparse.groups import FlatLayout

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "LOSSES",
    "SWITCH_INITS",
    "SparseMLP",
    "live_units",
    "kept_units",
    "select_units",
    "stacked_loss_and_grad",
    "compact",
    "CompactMLP",
]

#: how switches start: U(-1, 1) (the ShrinkNets experiments' code), N(0, 1)
#: (the ShrinkNets text) or all ones (the network starts as the plain MLP)
SWITCH_INITS = ("uniform", "normal", "ones")

LEAKY_SLOPE = 0.01


def _relu(z: Tensor) -> Tensor:
    return torch.relu_(z)


def _leaky(z: Tensor) -> Tensor:
    return torch.nn.functional.leaky_relu_(z, LEAKY_SLOPE)


_aten = torch.ops.aten


@dataclass(frozen=True)
class Activation:
    """One hidden activation, as every part of the package computes it.

    Parameters
    ----------
    forward : callable
        ``forward(z)`` applies the activation to ``z`` in place, returns it.
    backward : callable or None
        ``backward(delta, h)``: ``delta * act'(z)`` written from the output
        ``h`` (ATen's fused kernels: one kernel each instead of a mask and a
        product); None for the identity.
    module : callable
        Makes the ``torch.nn`` module of the activation (compacted networks).
    code : int
        The activation's code in the numba kernels (``_kernels._activate``
        and ``_kernels._derivative`` implement each code; the fused passes
        ``_add_bias_activate`` and ``_times_derivative`` have their own loops
        for codes 1 and 2).
    """

    forward: Callable[[Tensor], Tensor]
    backward: Callable[[Tensor, Tensor], Tensor] | None
    module: Callable[[], nn.Module]
    code: int


#: the hidden activations, by name (the registry every engine reads)
ACTIVATIONS = {
    "identity": Activation(lambda z: z, None, nn.Identity, 0),
    "relu": Activation(
        _relu, lambda d, h: _aten.threshold_backward(d, h, 0), nn.ReLU, 1
    ),
    "leaky_relu": Activation(
        _leaky,
        lambda d, h: _aten.leaky_relu_backward(d, h, LEAKY_SLOPE, True),
        lambda: nn.LeakyReLU(LEAKY_SLOPE),
        2,
    ),
    "tanh": Activation(torch.tanh_, lambda d, h: _aten.tanh_backward(d, h), nn.Tanh, 3),
    "logistic": Activation(
        torch.sigmoid_, lambda d, h: _aten.sigmoid_backward(d, h), nn.Sigmoid, 4
    ),
}

#: losses: "squared" (1/2 sum over outputs), "softmax" (cross-entropy with class
#: indices), "logistic" (binary cross-entropy per output, summed over outputs);
#: each is a mean over samples.
LOSSES = ("squared", "softmax", "logistic")


class SparseMLP(nn.Module):
    """MLP with all parameters in one flat vector.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    activation : str, default="relu"
        One of ``ACTIVATIONS``; used by every hidden layer.
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the parameters.
    device : torch.device or str, default=None
        Device of the parameters; None: torch's default device.
    switches : bool, default=False
        Give every layer a switch vector on its input (ShrinkNets): layer ``l``
        computes ``act(W_l (beta_{l-1} * h_{l-1}) + b_l)``, with ``beta_0`` on
        the input features and ``beta_l`` on hidden layer ``l``. A zero switch
        silences its unit whatever the activation, and a switch folds exactly
        into the weights it scales (:meth:`effective_weights`).

    Attributes
    ----------
    layout : FlatLayout
        Where every weight, bias and switch lives in ``theta``.
    theta : torch.nn.Parameter of shape (layout.n_params + 1,)
        All parameters in one flat vector, then the zero sentinel. Starts at
        zero: :meth:`reset_parameters` draws the initial values.
    """

    def __init__(
        self,
        layer_sizes,
        activation: str = "relu",
        dtype=torch.float32,
        device=None,
        switches: bool = False,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        self.layout = FlatLayout(tuple(int(s) for s in layer_sizes), bool(switches))
        self.activation = activation
        self.theta = nn.Parameter(
            torch.zeros(self.layout.n_params + 1, dtype=dtype, device=device)
        )

    @property
    def weights(self) -> list[Tensor]:
        """Views ``W_l`` of shape ``(n_l, n_{l-1})`` into ``theta``, in layer order."""
        return self.layout.views(self.theta)[0]

    @property
    def biases(self) -> list[Tensor]:
        """Views ``b_l`` of length ``n_l`` into ``theta``, in layer order."""
        return self.layout.views(self.theta)[1]

    @property
    def switches(self) -> list[Tensor]:
        """The switch vectors ``beta_0, ..., beta_{L-1}`` (empty without switches)."""
        return self.layout.switch_views(self.theta)

    def effective_weights(self) -> list[Tensor]:
        """The weights with the switches folded in: ``W_l * beta_{l-1}`` per column.

        The plain MLP with these weights and the same biases computes the same
        function (for any activation and either sign of a switch, because the
        switch scales the layer's input).

        Returns
        -------
        weights : list of Tensor
            ``W_l * beta_{l-1}`` of shape ``(n_l, n_{l-1})`` per layer (new
            tensors, differentiable through ``theta``). Without switches: the
            weights (the views :attr:`weights`).
        """
        weights = self.weights
        if not self.layout.switches:
            return weights
        return [W * beta.unsqueeze(0) for W, beta in zip(weights, self.switches)]

    @torch.no_grad()
    def keep_strongest_units(self, counts: Sequence[int]) -> None:
        """Zero the weakest live units of every hidden layer beyond ``counts``.

        A unit's strength is the product of the norms of its incoming and
        outgoing (effective) weights; the weakest live units of a layer with
        more than its count lose their weights (and switch), which makes them
        dead (:func:`live_units`). Layers are taken in order, liveness read
        again after each; a layer with at most its count is left as it is.

        Parameters
        ----------
        counts : sequence of int
            The most live units to keep in each hidden layer.
        """
        weights, switches = self.weights, self.switches
        for l, count in enumerate(counts, start=1):
            effective = self.effective_weights()
            live = live_units(effective)[l]
            surplus = int(live.sum()) - int(count)
            if surplus <= 0:
                continue
            strength = torch.linalg.vector_norm(
                effective[l - 1], dim=1
            ) * torch.linalg.vector_norm(effective[l], dim=0)
            strength = torch.where(live, strength, torch.inf)
            weakest = torch.argsort(strength)[:surplus]
            weights[l - 1][weakest] = 0.0
            weights[l][:, weakest] = 0.0
            if switches:
                switches[l][weakest] = 0.0

    def reset_parameters(
        self, generator: torch.Generator, switch_init: str = "uniform"
    ) -> None:
        """Glorot-uniform init as in scikit-learn's MLP (weights and biases).

        Drawn on the CPU from ``generator`` so that a seed gives the same
        network on every device. Switches (if any) are drawn afterwards, by
        ``switch_init`` (one of ``SWITCH_INITS``), so the weights do not depend
        on whether the network has switches. The sentinel is set to zero.

        Parameters
        ----------
        generator : torch.Generator
            A CPU generator; every value is drawn from it.
        switch_init : {"uniform", "normal", "ones"}, default="uniform"
            How switches start: ``U(-1, 1)``, ``N(0, 1)`` or all ones. Ignored
            without switches.
        """
        values = []
        for n_out, n_in in self.layout.weight_shapes:
            factor = 2.0 if self.activation == "logistic" else 6.0
            bound = math.sqrt(factor / (n_in + n_out))
            u = torch.rand(
                n_out * n_in + n_out, generator=generator, dtype=torch.float64
            )
            values.append((2 * u - 1) * bound)
        n_switches = sum(self.layout.switch_sizes)
        if n_switches:
            if switch_init not in SWITCH_INITS:
                raise ValueError(
                    f"switch_init must be one of {SWITCH_INITS}, got {switch_init!r}"
                )
            if switch_init == "ones":
                values.append(torch.ones(n_switches, dtype=torch.float64))
            elif switch_init == "normal":
                values.append(
                    torch.randn(n_switches, generator=generator, dtype=torch.float64)
                )
            else:
                u = torch.rand(n_switches, generator=generator, dtype=torch.float64)
                values.append(2 * u - 1)
        values.append(torch.zeros(1, dtype=torch.float64))
        with torch.no_grad():
            self.theta.copy_(torch.cat(values).to(self.theta.dtype))

    def forward(self, X: Tensor) -> Tensor:
        """Raw outputs (no output activation); differentiable by autograd.

        Parameters
        ----------
        X : Tensor of shape (n_samples, layer_sizes[0])
            Inputs, in the dtype and on the device of ``theta``.

        Returns
        -------
        Tensor of shape (n_samples, layer_sizes[-1])
            The last layer's pre-activations.
        """
        act = ACTIVATIONS[self.activation].module()
        weights, biases = self.effective_weights(), self.biases
        h = X
        for l, (W, b) in enumerate(zip(weights, biases)):
            h = torch.nn.functional.linear(h, W, b)
            if l < len(weights) - 1:
                h = act(h)
        return h

    def grad_views(self, grad: Tensor) -> tuple:
        """Views of ``theta`` and of a flat gradient buffer, for :meth:`loss_and_grad`.

        Build them once per training run: creating views costs Python time on
        every batch otherwise. A switch network also gets buffers for its
        effective weights and their gradient.

        Parameters
        ----------
        grad : Tensor of shape (layout.n_params + 1,)
            The flat gradient buffer (shaped like ``theta``).

        Returns
        -------
        views : tuple
            ``(weights, biases, grad_weights, grad_biases)``: lists of views of
            the weights and biases in ``theta`` (detached) and in ``grad``. A
            switch network adds ``(switches, grad_switches, effective,
            grad_effective)``: views of the switches in ``theta`` and in
            ``grad``, then buffers for the effective weights and their gradient.
        """
        theta = self.theta.detach()
        views = (*self.layout.views(theta), *self.layout.views(grad))
        if not self.layout.switches:
            return views
        effective = [torch.empty_like(W) for W in views[0]]
        return (
            *views,
            self.layout.switch_views(theta),
            self.layout.switch_views(grad),
            effective,
            [torch.empty_like(W) for W in effective],
        )

    def loss_and_grad(
        self, X: Tensor, Y: Tensor, loss: str, grad: Tensor, views: tuple | None = None
    ) -> Tensor:
        """Mean loss over the batch; its gradient is written into ``grad``.

        Runs under ``torch.no_grad`` semantics: the backward pass is written by
        hand.

        Parameters
        ----------
        X : Tensor of shape (n_samples, layer_sizes[0])
            Inputs, in the dtype and on the device of ``theta``.
        Y : Tensor of shape (n_samples, n_outputs) or (n_samples, n_outputs + 1)
            A float matrix of targets (``n_outputs = layer_sizes[-1]``):
            one-hot rows for ``"softmax"`` (a vector of class indices is
            accepted too, and one-hot encoded here). One more column holds
            the rows' sample weights: the loss is then their weighted mean
            (``sum_i w_i l_i / sum_i w_i``; zero when every weight is zero).
        loss : {"squared", "softmax", "logistic"}
            One of ``LOSSES``.
        grad : Tensor of shape (layout.n_params + 1,)
            A flat buffer shaped like ``theta``, overwritten with the gradient;
            its sentinel entry is left untouched (zero).
        views : tuple, default=None
            The result of :meth:`grad_views` for this ``grad``; None: built
            here.

        Returns
        -------
        Tensor
            The mean loss as a 0-d tensor on the device (no host
            synchronisation).
        """
        with torch.no_grad():
            views = views or self.grad_views(grad)
            if not self.layout.switches:
                return _loss_and_grad(X, Y, loss, self.activation, *views)
            weights, biases, gweights, gbiases, betas, gbetas, eff, geff = views
            for W, beta, W_eff in zip(weights, betas, eff):
                torch.mul(W, beta.unsqueeze(0), out=W_eff)
            value = _loss_and_grad(
                X, Y, loss, self.activation, eff, biases, geff, gbiases
            )
            for W, beta, gW, gbeta, gW_eff in zip(
                weights, betas, gweights, gbetas, geff
            ):
                torch.sum(gW_eff * W, dim=0, out=gbeta)
                torch.mul(gW_eff, beta.unsqueeze(0), out=gW)
            return value


def _row_scale(Y: Tensor, n_outputs: int) -> tuple[Tensor, Tensor | None]:
    """Targets with a sample-weight column: ``(targets, row_scale)``.

    The column past the ``n_outputs`` targets holds the rows' sample weights;
    each row's share of its batch's loss is its weight over the batch's total
    (the last axis holds the batch's rows), 0 when the batch weighs nothing.
    Without the column, ``(Y, None)``.
    """
    if Y.shape[-1] <= n_outputs:
        return Y, None
    Y, weights = Y[..., :n_outputs], Y[..., n_outputs]
    total = weights.sum(dim=-1, keepdim=True)
    return Y, torch.where(total > 0, weights / total, torch.zeros_like(weights))


def _loss_and_grad(X, Y, loss, activation, weights, biases, gweights, gbiases):
    """Mean loss of the plain MLP; gradients written into ``gweights``/``gbiases``."""
    act, dact = ACTIVATIONS[activation].forward, ACTIVATIONS[activation].backward
    n_layers = len(weights)
    hs = [X]
    h = X
    for l in range(n_layers):
        h = torch.addmm(biases[l], h, weights[l].t())
        if l < n_layers - 1:
            h = act(h)
            hs.append(h)
    out = h
    scale = 1.0 / X.shape[0]
    row_scale = None
    if Y.dim() == 2:  # (integer class labels are a vector)
        Y, row_scale = _row_scale(Y, out.shape[1])
    if loss == "squared":
        delta = out.sub_(Y)
        if row_scale is None:
            value = 0.5 * torch.vdot(delta.view(-1), delta.view(-1))
        else:
            rows = 0.5 * delta.square().sum(dim=1)
    elif loss == "softmax":
        if not Y.is_floating_point():
            Y = torch.nn.functional.one_hot(Y, out.shape[1]).to(out.dtype)
        # softmax and log-sum-exp by hand: faster than log_softmax on
        # the narrow rows of a classifier's output
        top = out.amax(dim=1, keepdim=True)
        delta = out.sub(top).exp_()
        total = delta.sum(dim=1, keepdim=True)
        delta.div_(total)
        log_norm = total.log_().add_(top)
        if row_scale is None:
            value = log_norm.sum() - torch.vdot(out.view(-1), Y.reshape(-1))
        else:
            rows = log_norm.squeeze(1) - (out * Y).sum(dim=1)
        delta.sub_(Y)
    elif loss == "logistic":
        per = "sum" if row_scale is None else "none"
        value = torch.nn.functional.binary_cross_entropy_with_logits(
            out, Y, reduction=per
        )
        rows = value.sum(dim=1) if row_scale is not None else None
        delta = out.sigmoid_().sub_(Y)
    else:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if row_scale is None:
        delta.mul_(scale)
        value = value * scale
    else:
        delta.mul_(row_scale.unsqueeze(1))
        value = torch.dot(rows, row_scale)
    for l in range(n_layers - 1, -1, -1):
        torch.mm(delta.t(), hs[l], out=gweights[l])
        torch.sum(delta, dim=0, out=gbiases[l])
        if l > 0:
            delta = delta @ weights[l]
            if dact is not None:
                delta = dact(delta, hs[l])
    return value


def stacked_loss_and_grad(
    X: Tensor,
    Y: Tensor,
    loss: str,
    activation: str,
    weights: list[Tensor],
    biases: list[Tensor],
    gweights: list[Tensor],
    gbiases: list[Tensor],
    row_scale: Tensor,
) -> Tensor:
    """Mean losses of K plain MLPs of one architecture, each on its own batch.

    The K networks are stacked: ``weights[l]`` is ``(K, n_l, n_{l-1})`` and
    every product a batched matrix product, so K small networks cost about
    what one wider one does. Each network's loss is a weighted sum over its
    rows: ``row_scale`` is ``1 / B_k`` on the ``B_k`` rows of network ``k``'s
    batch and 0 on padding, which gives network ``k`` the mean over its batch
    (and the gradient of it), exactly as :meth:`SparseMLP.loss_and_grad` gives
    one network.

    Parameters
    ----------
    X : Tensor of shape (K, B, n_0)
        Every network's batch (padded to ``B`` rows).
    Y : Tensor of shape (K, B, n_L) or (K, B, n_L + 1)
        Their targets: a float matrix, one-hot rows for ``"softmax"``; with
        one more column, the rows' sample weights: each network's loss is then
        the weighted mean over its batch (zero when its weights are all zero)
        and ``row_scale`` is not read.
    loss : {"squared", "softmax", "logistic"}
        One of ``LOSSES``.
    activation : str
        The hidden activation (one of ``ACTIVATIONS``).
    weights, biases : list of Tensor
        ``(K, n_l, n_{l-1})`` and ``(K, n_l)`` per layer (views are fine).
    gweights, gbiases : list of Tensor
        Shaped like ``weights`` and ``biases``; overwritten with the
        gradients.
    row_scale : Tensor of shape (K, B)
        The weight of every row in its network's loss.

    Returns
    -------
    Tensor of shape (K,)
        Every network's loss (on the device; no host synchronisation).
    """
    act, dact = ACTIVATIONS[activation].forward, ACTIVATIONS[activation].backward
    n_layers = len(weights)
    hs = [X]
    h = X
    for l in range(n_layers):
        h = torch.baddbmm(biases[l].unsqueeze(1), h, weights[l].transpose(1, 2))
        if l < n_layers - 1:
            h = act(h)
            hs.append(h)
    out = h
    Y, weighted = _row_scale(Y, out.shape[2])  # padding rows weigh 0
    if weighted is not None:
        row_scale = weighted
    if loss == "squared":
        delta = out.sub_(Y)
        rows = 0.5 * (delta * delta).sum(dim=2)
    elif loss == "softmax":
        top = out.amax(dim=2, keepdim=True)
        delta = out.sub(top).exp_()
        total = delta.sum(dim=2, keepdim=True)
        delta.div_(total)
        rows = (total.log_().add_(top)).squeeze(2) - (out * Y).sum(dim=2)
        delta.sub_(Y)
    elif loss == "logistic":
        rows = torch.nn.functional.binary_cross_entropy_with_logits(
            out, Y, reduction="none"
        ).sum(dim=2)
        delta = out.sigmoid_().sub_(Y)
    else:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    value = (rows * row_scale).sum(dim=1)
    delta.mul_(row_scale.unsqueeze(2))
    for l in range(n_layers - 1, -1, -1):
        torch.bmm(delta.transpose(1, 2), hs[l], out=gweights[l])
        torch.sum(delta, dim=1, out=gbiases[l])
        if l > 0:
            delta = torch.bmm(delta, weights[l])
            if dact is not None:
                delta = dact(delta, hs[l])
    return value


# --------------------------------------------------------------------------
# Liveness and compaction
# --------------------------------------------------------------------------
def live_units(weights: list[Tensor]) -> list[Tensor]:
    """Boolean masks of the live units of every layer of units.

    Parameters
    ----------
    weights : list of Tensor
        ``W_l`` of shape ``(..., n_l, n_{l-1})``: one network, or a stack of
        networks along the leading dimensions (the batched engine's).

    Returns
    -------
    masks : list of Tensor
        ``masks[0]`` over input features, ``masks[l]`` over hidden layer ``l``,
        ``masks[L]`` over outputs (all True), each of shape ``(..., n_l)``. A
        unit is live when a path of non-zero weights joins some input feature
        to some output through it.
    """
    nonzero = [W != 0 for W in weights]
    lead, device = weights[0].shape[:-2], weights[0].device
    n_in = weights[0].shape[-1]
    reach = [torch.ones(*lead, n_in, dtype=torch.bool, device=device)]
    for nz in nonzero:
        reach.append((nz & reach[-1].unsqueeze(-2)).any(dim=-1))
    back = [torch.ones(*lead, weights[-1].shape[-2], dtype=torch.bool, device=device)]
    for nz in reversed(nonzero):
        back.append((nz & back[-1].unsqueeze(-1)).any(dim=-2))
    back.reverse()
    masks = [r & b for r, b in zip(reach, back)]
    masks[-1] = torch.ones_like(masks[-1])
    return masks


#: activations with act(0) == 0: a unit with zero input weights and zero bias
#: then outputs exactly zero
_ZERO_AT_ZERO = ("identity", "relu", "leaky_relu", "tanh")


def kept_units(
    weights: list[Tensor], biases: list[Tensor], activation: str
) -> list[Tensor]:
    """The units that cannot be removed without changing the network's function.

    A unit can go when its output never reaches the outputs: it is *silent*
    (``act(0) == 0``, zero bias, and zero weights from every input that can be
    non-zero), or none of the units it feeds through a non-zero weight is kept.
    Removing the others is exact: the function, and the gradients of the kept
    parameters, are unchanged. Unlike :func:`live_units`, constant units are
    kept (their constant still matters while training goes on).

    Parameters
    ----------
    weights : list of Tensor
        Effective weights ``W_l`` of shape ``(n_l, n_{l-1})`` (switches folded).
    biases : list of Tensor
        ``b_l``.
    activation : str
        The hidden activation.

    Returns
    -------
    keep : list of BoolTensor
        ``keep[0]`` over the input features, ``keep[l]`` over hidden layer
        ``l``; at least one unit per layer is kept (a layer cannot be empty).
    """
    device = weights[0].device
    can_be_nonzero = [torch.ones(weights[0].shape[1], dtype=torch.bool, device=device)]
    for W, b in zip(weights[:-1], biases[:-1]):
        if activation in _ZERO_AT_ZERO:
            fed = ((W != 0) & can_be_nonzero[-1].unsqueeze(0)).any(dim=1) | (b != 0)
        else:
            fed = torch.ones(W.shape[0], dtype=torch.bool, device=device)
        can_be_nonzero.append(fed)
    keep = [None] * len(weights)
    kept_next = torch.ones(weights[-1].shape[0], dtype=torch.bool, device=device)
    for l in range(len(weights) - 1, -1, -1):
        useful = ((weights[l] != 0) & kept_next.unsqueeze(1)).any(dim=0)
        kept = useful & can_be_nonzero[l]
        if not bool(kept.any()):
            kept[0] = True
        keep[l] = kept
        kept_next = kept
    return keep


def select_units(layout: FlatLayout, keep: list[Tensor]) -> tuple[FlatLayout, Tensor]:
    """The smaller layout that keeps the units ``keep``, and where its entries were.

    Parameters
    ----------
    layout : FlatLayout
        The current layout.
    keep : list of BoolTensor
        One mask per layer of units but the outputs (inputs first).

    Returns
    -------
    new_layout : FlatLayout
        The layout with only the kept units (and the same ``switches``).
    index : LongTensor of shape (new_layout.n_params + 1,)
        ``new_flat = old_flat[index]`` for parameters, gradients and optimizer
        state alike; the last entry maps the sentinel to the sentinel.
    """
    keep = [k.cpu() for k in keep]
    n_out = layout.layer_sizes[-1]
    sizes = (*(int(k.sum()) for k in keep), n_out)
    rows = [*keep[1:], torch.ones(n_out, dtype=torch.bool)]
    positions = torch.arange(layout.n_params + 1)
    weights, biases = layout.views(positions)
    parts = []
    for W, b, cols, r in zip(weights, biases, keep, rows):
        parts += [W[r][:, cols].reshape(-1), b[r]]
    for beta, k in zip(layout.switch_views(positions), keep):
        parts.append(beta[k])
    parts.append(positions[-1:])
    return FlatLayout(sizes, layout.switches), torch.cat(parts)


def compact(
    weights: list[Tensor], biases: list[Tensor], activation: str
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Remove dead units and features, folding constant units into biases.

    The compact network computes the same function as the original (exactly
    in exact arithmetic).

    Parameters
    ----------
    weights : list of Tensor
        ``W_l`` of shape ``(n_l, n_{l-1})``, in layer order.
    biases : list of Tensor
        ``b_l`` of length ``n_l``.
    activation : str
        The hidden activation (one of ``ACTIVATIONS``): a constant unit
        outputs ``act(bias)``.

    Returns
    -------
    weights : list of Tensor
        The smaller weights: ``W_l`` restricted to the live units (copies).
    biases : list of Tensor
        The smaller biases, with the output of every constant unit (one that
        no live input reaches) folded into the next layer's bias.
    masks : list of BoolTensor
        The boolean masks of :func:`live_units` (``masks[0]`` selects the input
        columns the compact network reads).
    """
    masks = live_units(weights)
    n_in = weights[0].shape[1]
    reach = torch.ones(n_in, dtype=torch.bool, device=weights[0].device)
    new_w, new_b = [], []
    # folded bias of the current layer; constants of layer l-1 already added
    bias = biases[0].clone()
    for l, W in enumerate(weights):
        reach = (
            (W != 0)[:, reach].any(dim=1)
            if reach.any()
            else torch.zeros(W.shape[0], dtype=torch.bool, device=W.device)
        )
        keep_in, keep_out = masks[l], masks[l + 1]
        new_w.append(W[keep_out][:, keep_in].clone())
        new_b.append(bias[keep_out].clone())
        if l + 1 < len(weights):
            # units of layer l+1 that no input reaches output act(bias): fold them
            constant = ~reach
            value = ACTIVATIONS[activation].module()(bias[constant])
            bias = biases[l + 1] + weights[l + 1][:, constant] @ value
    return new_w, new_b, masks


class CompactMLP(nn.Module):
    """A plain ``nn.Sequential``-style MLP made of ``nn.Linear`` layers.

    Built by :meth:`from_weights`; reads only the input columns in
    ``feature_index`` (a buffer, from the ``feature_mask`` given to
    :meth:`from_weights`), so it takes the full feature matrix.

    Parameters
    ----------
    layers : torch.nn.Sequential
        The ``nn.Linear`` layers, with the hidden activation between them.
    feature_index : LongTensor of shape (n_read,)
        Positions of the input columns the network reads, in order.
    """

    #: TorchScript compiles properties; this one is for Python callers only
    __jit_unused_properties__ = ["n_params"]

    def __init__(self, layers: nn.Sequential, feature_index: Tensor):
        super().__init__()
        self.layers = layers
        self.register_buffer("feature_index", feature_index)

    @classmethod
    def from_weights(cls, weights, biases, activation, feature_mask) -> CompactMLP:
        """Build the network from the weights and biases of :func:`compact`.

        Parameters
        ----------
        weights : list of Tensor
            ``W_l`` of shape ``(n_l, n_{l-1})``; the layers take their dtype
            and device. A layer may have no units.
        biases : list of Tensor
            ``b_l`` of length ``n_l``.
        activation : str
            The hidden activation (one of ``ACTIVATIONS``), put after every
            layer but the last.
        feature_mask : BoolTensor of shape (n_features,)
            True on the input columns the network reads (``masks[0]`` of
            :func:`compact`): ``weights[0]`` has one column per True entry.

        Returns
        -------
        CompactMLP
            A network holding copies of ``weights`` and ``biases``.
        """
        modules: list[nn.Module] = []
        for l, (W, b) in enumerate(zip(weights, biases)):
            with warnings.catch_warnings():
                # torch warns that initialising an empty layer (every unit of
                # the previous layer dead) is a no-op; the weights are copied
                warnings.filterwarnings("ignore", "Initializing zero-element")
                linear = nn.Linear(
                    W.shape[1], W.shape[0], dtype=W.dtype, device=W.device
                )
            with torch.no_grad():
                linear.weight.copy_(W)
                linear.bias.copy_(b)
            modules.append(linear)
            if l < len(weights) - 1:
                modules.append(ACTIVATIONS[activation].module())
        index = torch.nonzero(feature_mask).flatten()
        return cls(nn.Sequential(*modules), index)

    def forward(self, X: Tensor) -> Tensor:
        """Raw outputs (no output activation) on the full feature matrix.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            All the input features; only the columns ``feature_index`` are
            read.

        Returns
        -------
        Tensor of shape (n_samples, n_outputs)
            The last layer's pre-activations.
        """
        return self.layers(X.index_select(1, self.feature_index))

    @property
    def n_params(self) -> int:
        """Number of weights and biases of the compact network."""
        return sum(p.numel() for p in self.parameters())
