"""What a trained network is at its original widths: counts, outputs, weights.

The trainer physically removes dead units while it trains; these read-outs
translate back to the network the user asked for (``kept`` holds, per layer,
the original indices of the units still there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from skgroupsparse.network import kept_units, live_units

__all__ = ["NetworkReadout"]


class NetworkReadout:
    """Read-outs of a trainer's network (a mixin of ``ProximalTrainer``).

    Reads ``net``, ``kept``, ``original_sizes`` and ``config.remove_every``.
    """

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
