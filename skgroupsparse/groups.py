"""Group maps: which coordinates of a flat parameter vector form each group.

A network's parameters live in one flat vector (see :class:`FlatLayout`). A
:class:`GroupMap` lists groups as rows of a padded index matrix into that
vector, so that all groups of all layers are gathered into one
``(n_groups, max_size)`` matrix, handed to a penalty in one batched call, and
scattered back. A group map knows structure (which entries, which layer, which
unit), never penalties.

The last entry of every flat vector is a *sentinel* that is always zero:
padding indices point at it, so a gathered matrix is zero-padded for free and a
scatter of the (still zero) padding writes zero back to it.

Group families (ALGORITHMS.md section 1.2, in ``nn.Linear`` out x in layout):

* ``"outgoing"`` (Scardapane et al. 2017, the default): input feature ``j`` is
  column ``W_1[:, j]``; hidden unit ``i`` of layer ``l`` is column
  ``W_{l+1}[:, i]``. These groups partition the weights, so the group prox is
  exact. Biases are not grouped (not penalised).
* ``"incoming"``: hidden unit ``i`` of layer ``l`` is row ``W_l[i, :]`` together
  with its bias ``b_l[i]``. Input-feature columns of ``W_1`` would overlap the
  rows of the first hidden layer, which breaks the exact prox, so this family
  has no feature groups: a feature drops out only when every unit reading it
  dies. The output layer is not penalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

__all__ = ["FlatLayout", "GroupMap", "build_group_map", "GROUP_FAMILIES"]

GROUP_FAMILIES = ("outgoing", "incoming")


@dataclass(frozen=True)
class FlatLayout:
    """Offsets of the weights and biases of an MLP inside one flat vector.

    Layer ``l`` (``1 <= l <= L``) has ``W_l`` of shape ``(n_l, n_{l-1})``
    stored row-major at ``weight_offsets[l-1]``, then ``b_l`` of length ``n_l``
    at ``bias_offsets[l-1]``. The vector has ``n_params + 1`` entries: the last
    one is the zero sentinel.
    """

    layer_sizes: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    @cached_property
    def weight_shapes(self) -> list[tuple[int, int]]:
        s = self.layer_sizes
        return [(s[l + 1], s[l]) for l in range(self.n_layers)]

    @cached_property
    def weight_offsets(self) -> list[int]:
        return self._offsets()[0]

    @cached_property
    def bias_offsets(self) -> list[int]:
        return self._offsets()[1]

    def _offsets(self) -> tuple[list[int], list[int]]:
        w_off, b_off, pos = [], [], 0
        for n_out, n_in in self.weight_shapes:
            w_off.append(pos)
            pos += n_out * n_in
            b_off.append(pos)
            pos += n_out
        return w_off, b_off

    @cached_property
    def n_params(self) -> int:
        """Number of real parameters (the sentinel excluded)."""
        return sum(o * i + o for o, i in self.weight_shapes)

    @property
    def sentinel(self) -> int:
        return self.n_params

    def weight_mask(self, device=None) -> Tensor:
        """Boolean vector (with sentinel) that is True on weight entries."""
        mask = torch.zeros(self.n_params + 1, dtype=torch.bool, device=device)
        for off, (o, i) in zip(self.weight_offsets, self.weight_shapes):
            mask[off : off + o * i] = True
        return mask

    def views(self, flat: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Weight and bias views into ``flat`` (no copies)."""
        weights, biases = [], []
        for (o, i), wo, bo in zip(
            self.weight_shapes, self.weight_offsets, self.bias_offsets
        ):
            weights.append(flat[wo : wo + o * i].view(o, i))
            biases.append(flat[bo : bo + o])
        return weights, biases


@dataclass
class GroupMap:
    """Groups as rows of a padded index matrix into a flat parameter vector.

    Attributes
    ----------
    index : LongTensor of shape (n_groups, max_size)
        Flat positions of each group's coordinates; padding points at the
        sentinel.
    sizes : LongTensor of shape (n_groups,)
        True number of coordinates per group.
    layer : LongTensor of shape (n_groups,)
        Index ``l - 1`` of the weight matrix ``W_l`` the group lives in (used to
        give each layer its own strength).
    unit : LongTensor of shape (n_groups,)
        The unit the group belongs to, numbered inside its layer of units.
    unit_layer : LongTensor of shape (n_groups,)
        Layer of units: 0 for input features, ``l`` for hidden layer ``l``.
    family : str
        ``"outgoing"`` or ``"incoming"``.
    """

    index: Tensor
    sizes: Tensor
    layer: Tensor
    unit: Tensor
    unit_layer: Tensor
    family: str

    @property
    def n_groups(self) -> int:
        return int(self.index.shape[0])

    def to(self, device) -> GroupMap:
        return GroupMap(
            self.index.to(device),
            self.sizes.to(device),
            self.layer.to(device),
            self.unit.to(device),
            self.unit_layer.to(device),
            self.family,
        )

    def gather(self, flat: Tensor) -> Tensor:
        """The ``(n_groups, max_size)`` group matrix of ``flat`` (a copy)."""
        # index_select on the flattened index is several times faster than
        # advanced indexing with a 2-D index on the CPU
        return flat.index_select(0, self.index.view(-1)).view(self.index.shape)

    def scatter_(self, flat: Tensor, groups: Tensor) -> Tensor:
        """Write a group matrix back into ``flat`` in place.

        Padding entries of ``groups`` must be zero: they all land on the
        sentinel, so whichever write wins, it writes zero.
        """
        flat.index_copy_(0, self.index.view(-1), groups.reshape(-1))
        return flat

    def norms(self, flat: Tensor) -> Tensor:
        """Euclidean norm of every group: shape ``(n_groups,)``."""
        return torch.linalg.vector_norm(self.gather(flat), dim=1)

    def per_layer(self, values: Tensor) -> Tensor:
        """Broadcast one value per weight matrix to one value per group."""
        return values[self.layer]


def _pad(rows: list[Tensor], sentinel: int) -> Tensor:
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), sentinel, dtype=torch.long)
    for g, r in enumerate(rows):
        out[g, : len(r)] = r
    return out


def build_group_map(
    layout: FlatLayout, family: str = "outgoing", features: bool = True
) -> GroupMap:
    """Build the group map of an MLP.

    Parameters
    ----------
    layout : FlatLayout
        Where the weights live.
    family : {"outgoing", "incoming"}, default="outgoing"
        Which weights make a neuron's group (see the module docstring).
    features : bool, default=True
        Whether input features get groups (``"outgoing"`` only).

    Returns
    -------
    GroupMap
    """
    if family not in GROUP_FAMILIES:
        raise ValueError(f"groups must be one of {GROUP_FAMILIES}, got {family!r}")
    rows: list[Tensor] = []
    layer, unit, unit_layer = [], [], []
    shapes = layout.weight_shapes
    if family == "outgoing":
        for l, ((n_out, n_in), off) in enumerate(zip(shapes, layout.weight_offsets)):
            if l == 0 and not features:
                continue
            column = off + torch.arange(n_out) * n_in
            for j in range(n_in):
                rows.append(column + j)
                layer.append(l)
                unit.append(j)
                unit_layer.append(l)
    else:
        if layout.n_layers < 2:
            raise ValueError(
                "groups='incoming' needs at least one hidden layer: with "
                "hidden_layer_sizes=() there are no neurons to group"
            )
        for l in range(layout.n_layers - 1):
            n_out, n_in = shapes[l]
            w_off, b_off = layout.weight_offsets[l], layout.bias_offsets[l]
            for i in range(n_out):
                row = torch.arange(n_in) + w_off + i * n_in
                rows.append(torch.cat([row, torch.tensor([b_off + i])]))
                layer.append(l)
                unit.append(i)
                unit_layer.append(l + 1)
    long = dict(dtype=torch.long)
    return GroupMap(
        index=_pad(rows, layout.sentinel),
        sizes=torch.tensor([len(r) for r in rows], **long),
        layer=torch.tensor(layer, **long),
        unit=torch.tensor(unit, **long),
        unit_layer=torch.tensor(unit_layer, **long),
        family=family,
    )
