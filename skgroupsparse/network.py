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

import torch
from torch import Tensor, nn

from skgroupsparse.groups import FlatLayout

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "SparseMLP",
    "live_units",
    "compact",
    "CompactMLP",
]

LEAKY_SLOPE = 0.01


def _relu(z: Tensor) -> Tensor:
    return torch.relu_(z)


def _leaky(z: Tensor) -> Tensor:
    return torch.nn.functional.leaky_relu_(z, LEAKY_SLOPE)


_aten = torch.ops.aten

# (activation applied in place, backward: (delta, output h) -> delta * act'(z)).
# The backward passes are ATen's fused kernels, written from the output h:
# one kernel each instead of a mask and a product.
ACTIVATIONS = {
    "identity": (lambda z: z, None),
    "relu": (_relu, lambda d, h: _aten.threshold_backward(d, h, 0)),
    "leaky_relu": (
        _leaky,
        lambda d, h: _aten.leaky_relu_backward(d, h, LEAKY_SLOPE, True),
    ),
    "tanh": (torch.tanh_, lambda d, h: _aten.tanh_backward(d, h)),
    "logistic": (torch.sigmoid_, lambda d, h: _aten.sigmoid_backward(d, h)),
}

#: losses: "squared" (1/2 sum over outputs), "softmax" (cross-entropy with class
#: indices), "logistic" (binary cross-entropy per output, summed over outputs);
#: each is a mean over samples.
LOSSES = ("squared", "softmax", "logistic")


def _torch_activation(name: str) -> nn.Module:
    return {
        "identity": nn.Identity(),
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(LEAKY_SLOPE),
        "tanh": nn.Tanh(),
        "logistic": nn.Sigmoid(),
    }[name]


class SparseMLP(nn.Module):
    """MLP with all parameters in one flat vector.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    activation : str
        One of ``ACTIVATIONS``; used by every hidden layer.
    dtype, device
        Of the parameters.
    """

    def __init__(
        self, layer_sizes, activation: str = "relu", dtype=torch.float32, device=None
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        self.layout = FlatLayout(tuple(int(s) for s in layer_sizes))
        self.activation = activation
        self.theta = nn.Parameter(
            torch.zeros(self.layout.n_params + 1, dtype=dtype, device=device)
        )

    @property
    def weights(self) -> list[Tensor]:
        return self.layout.views(self.theta)[0]

    @property
    def biases(self) -> list[Tensor]:
        return self.layout.views(self.theta)[1]

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Glorot-uniform init as in scikit-learn's MLP (weights and biases).

        Drawn on the CPU from ``generator`` so that a seed gives the same
        network on every device.
        """
        values = []
        for n_out, n_in in self.layout.weight_shapes:
            factor = 2.0 if self.activation == "logistic" else 6.0
            bound = math.sqrt(factor / (n_in + n_out))
            u = torch.rand(
                n_out * n_in + n_out, generator=generator, dtype=torch.float64
            )
            values.append((2 * u - 1) * bound)
        values.append(torch.zeros(1, dtype=torch.float64))
        with torch.no_grad():
            self.theta.copy_(torch.cat(values).to(self.theta.dtype))

    def forward(self, X: Tensor) -> Tensor:
        """Raw outputs (no output activation); differentiable by autograd."""
        act = _torch_activation(self.activation)
        weights, biases = self.weights, self.biases
        h = X
        for l, (W, b) in enumerate(zip(weights, biases)):
            h = torch.nn.functional.linear(h, W, b)
            if l < len(weights) - 1:
                h = act(h)
        return h

    def grad_views(self, grad: Tensor) -> tuple:
        """Views of ``theta`` and of a flat gradient buffer, for :meth:`loss_and_grad`.

        Build them once per training run: creating views costs Python time on
        every batch otherwise.
        """
        theta = self.theta.detach()
        return (*self.layout.views(theta), *self.layout.views(grad))

    def loss_and_grad(
        self, X: Tensor, Y: Tensor, loss: str, grad: Tensor, views: tuple | None = None
    ) -> Tensor:
        """Mean loss over the batch; its gradient is written into ``grad``.

        ``Y`` is a float matrix of targets: one-hot rows for ``"softmax"`` (a
        vector of class indices is accepted too, and one-hot encoded here).
        ``grad`` is a flat buffer shaped like ``theta``; its sentinel entry is
        left untouched (zero). ``views`` is the result of :meth:`grad_views`
        for this ``grad``. Returns the mean loss as a 0-d
        tensor on the device (no host synchronisation). Runs under
        ``torch.no_grad`` semantics: the backward pass is written by hand.
        """
        with torch.no_grad():
            weights, biases, gweights, gbiases = views or self.grad_views(grad)
            act, dact = ACTIVATIONS[self.activation]
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
            if loss == "squared":
                delta = out.sub_(Y)
                value = 0.5 * torch.vdot(delta.view(-1), delta.view(-1))
            elif loss == "softmax":
                if not Y.is_floating_point():
                    Y = torch.nn.functional.one_hot(Y, out.shape[1]).to(out.dtype)
                # softmax and log-sum-exp by hand: faster than log_softmax on
                # the narrow rows of a classifier's output
                top = out.amax(dim=1, keepdim=True)
                delta = out.sub(top).exp_()
                total = delta.sum(dim=1, keepdim=True)
                delta.div_(total)
                log_norm = total.log_().add_(top).sum()
                value = log_norm - torch.vdot(out.view(-1), Y.reshape(-1))
                delta.sub_(Y)
            elif loss == "logistic":
                value = torch.nn.functional.binary_cross_entropy_with_logits(
                    out, Y, reduction="sum"
                )
                delta = out.sigmoid_().sub_(Y)
            else:
                raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
            delta.mul_(scale)
            value = value * scale
            for l in range(n_layers - 1, -1, -1):
                torch.mm(delta.t(), hs[l], out=gweights[l])
                torch.sum(delta, dim=0, out=gbiases[l])
                if l > 0:
                    delta = delta @ weights[l]
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
        ``W_l`` of shape ``(n_l, n_{l-1})``.

    Returns
    -------
    masks : list of Tensor
        ``masks[0]`` over input features, ``masks[l]`` over hidden layer ``l``,
        ``masks[L]`` over outputs (all True). A unit is live when a path of
        non-zero weights joins some input feature to some output through it.
    """
    nonzero = [W != 0 for W in weights]
    n_in = weights[0].shape[1]
    reach = [torch.ones(n_in, dtype=torch.bool, device=weights[0].device)]
    for nz in nonzero:
        reach.append((nz & reach[-1].unsqueeze(0)).any(dim=1))
    back = [
        torch.ones(weights[-1].shape[0], dtype=torch.bool, device=weights[0].device)
    ]
    for nz in reversed(nonzero):
        back.append((nz & back[-1].unsqueeze(1)).any(dim=0))
    back.reverse()
    masks = [r & b for r, b in zip(reach, back)]
    masks[-1] = torch.ones_like(masks[-1])
    return masks


def compact(
    weights: list[Tensor], biases: list[Tensor], activation: str
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Remove dead units and features, folding constant units into biases.

    Returns the smaller weights and biases and the boolean ``masks`` of
    :func:`live_units` (``masks[0]`` selects the input columns the compact
    network reads). The compact network computes the same function as the
    original (exactly in exact arithmetic).
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
            value = _torch_activation(activation)(bias[constant])
            bias = biases[l + 1] + weights[l + 1][:, constant] @ value
    return new_w, new_b, masks


class CompactMLP(nn.Module):
    """A plain ``nn.Sequential``-style MLP made of ``nn.Linear`` layers.

    Built by :meth:`from_weights`; reads only the input columns in
    ``feature_mask`` (a buffer), so it takes the full feature matrix.
    """

    def __init__(self, layers: nn.Sequential, feature_index: Tensor):
        super().__init__()
        self.layers = layers
        self.register_buffer("feature_index", feature_index)

    @classmethod
    def from_weights(cls, weights, biases, activation, feature_mask) -> CompactMLP:
        modules: list[nn.Module] = []
        for l, (W, b) in enumerate(zip(weights, biases)):
            linear = nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype, device=W.device)
            with torch.no_grad():
                linear.weight.copy_(W)
                linear.bias.copy_(b)
            modules.append(linear)
            if l < len(weights) - 1:
                modules.append(_torch_activation(activation))
        index = torch.nonzero(feature_mask).flatten()
        return cls(nn.Sequential(*modules), index)

    def forward(self, X: Tensor) -> Tensor:
        return self.layers(X.index_select(1, self.feature_index))

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
