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

__all__ = [
    "FlatLayout",
    "GroupMap",
    "build_group_map",
    "build_switch_group_map",
    "GROUP_FAMILIES",
]

GROUP_FAMILIES = ("outgoing", "incoming")


@dataclass(frozen=True)
class FlatLayout:
    """Offsets of the weights and biases of an MLP inside one flat vector.

    Layer ``l`` (``1 <= l <= L``) has ``W_l`` of shape ``(n_l, n_{l-1})``
    stored row-major at ``weight_offsets[l-1]``, then ``b_l`` of length ``n_l``
    at ``bias_offsets[l-1]``. With ``switches=True`` the switches follow all
    weights and biases: ``beta_0`` (one per input feature), then ``beta_l`` for
    every hidden layer ``l``, at ``switch_offsets``; ``beta_{l-1}`` scales the
    input of ``W_l`` (ShrinkNets, ALGORITHMS.md section 3). The first
    ``n_plain`` entries are therefore always the layout of the plain MLP. The
    vector has ``n_params + 1`` entries: the last one is the zero sentinel.

    Parameters
    ----------
    layer_sizes : tuple of int
        ``(n_0, n_1, ..., n_L)``: the number of input features, the width of
        every hidden layer, then the number of outputs.
    switches : bool, default=False
        Whether the vector also holds the switches ``beta_0, ..., beta_{L-1}``
        (after all weights and biases).
    """

    layer_sizes: tuple[int, ...]
    switches: bool = False

    @property
    def n_layers(self) -> int:
        """Number ``L`` of weight matrices (hidden layers plus one)."""
        return len(self.layer_sizes) - 1

    @cached_property
    def weight_shapes(self) -> list[tuple[int, int]]:
        """Shape ``(n_l, n_{l-1})`` of every weight matrix ``W_l``."""
        s = self.layer_sizes
        return [(s[l + 1], s[l]) for l in range(self.n_layers)]

    @cached_property
    def weight_offsets(self) -> list[int]:
        """Flat position of the first entry of every weight matrix ``W_l``."""
        return self._offsets()[0]

    @cached_property
    def bias_offsets(self) -> list[int]:
        """Flat position of the first entry of every bias ``b_l``."""
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
    def n_plain(self) -> int:
        """Number of weights and biases."""
        return sum(o * i + o for o, i in self.weight_shapes)

    @property
    def switch_sizes(self) -> tuple[int, ...]:
        """Length of each switch vector (empty without switches)."""
        return self.layer_sizes[:-1] if self.switches else ()

    @cached_property
    def switch_offsets(self) -> list[int]:
        """Flat position of the first entry of every switch vector ``beta_l``."""
        offsets, pos = [], self.n_plain
        for size in self.switch_sizes:
            offsets.append(pos)
            pos += size
        return offsets

    @cached_property
    def n_params(self) -> int:
        """Number of real parameters (the sentinel excluded)."""
        return self.n_plain + sum(self.switch_sizes)

    @property
    def switch_segment(self) -> slice:
        """Where all the switches lie in a flat vector: ``[n_plain, n_params)``."""
        return slice(self.n_plain, self.n_params)

    def switch_views(self, flat: Tensor) -> list[Tensor]:
        """Views of the switch vectors ``beta_0, ..., beta_{L-1}`` in ``flat``.

        Parameters
        ----------
        flat : Tensor of shape (n_params + 1,)
            A flat vector of this layout, as for :meth:`views`.

        Returns
        -------
        switches : list of Tensor
            ``switches[l]`` is ``beta_l``, of length ``layer_sizes[l]``; views
            into ``flat`` (no copies). Empty without switches.
        """
        return [
            flat[off : off + size]
            for off, size in zip(self.switch_offsets, self.switch_sizes)
        ]

    @property
    def sentinel(self) -> int:
        """Flat position of the zero sentinel: the last entry, ``n_params``."""
        return self.n_params

    def weight_mask(self, device=None) -> Tensor:
        """Boolean vector (with sentinel) that is True on weight entries.

        Parameters
        ----------
        device : torch.device or str, default=None
            Where the mask is made; None: torch's default device.

        Returns
        -------
        mask : BoolTensor of shape (n_params + 1,)
            True on the entries of the weight matrices; False on biases,
            switches and the sentinel.
        """
        mask = torch.zeros(self.n_params + 1, dtype=torch.bool, device=device)
        for off, (o, i) in zip(self.weight_offsets, self.weight_shapes):
            mask[off : off + o * i] = True
        return mask

    def views(self, flat: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Weight and bias views into ``flat`` (no copies).

        Parameters
        ----------
        flat : Tensor of shape (n_params + 1,)
            A flat vector of this layout (parameters, gradient, or any vector
            laid out alike).

        Returns
        -------
        weights : list of Tensor
            ``weights[l - 1]`` is ``W_l`` as a view of shape ``(n_l, n_{l-1})``.
        biases : list of Tensor
            ``biases[l - 1]`` is ``b_l`` as a view of length ``n_l``.
        """
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

    Parameters
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
        Layer of units: 0 for input features, ``l`` for hidden layer ``l``,
        ``L`` for the outputs.
    family : {"outgoing", "incoming", "switch"}
        The family the map was built for (``"switch"``: the chunks of
        :func:`build_switch_group_map`).
    switch : BoolTensor of shape (n_groups,) or None, default=None
        Which groups hold switches (``"switch"`` family only; None otherwise).
    features : bool, default=True
        Whether input features have groups (``"outgoing"`` family).
    """

    index: Tensor
    sizes: Tensor
    layer: Tensor
    unit: Tensor
    unit_layer: Tensor
    family: str
    switch: Tensor | None = None
    features: bool = True

    @property
    def n_groups(self) -> int:
        """Number of groups (rows of ``index``)."""
        return int(self.index.shape[0])

    def to(self, device) -> GroupMap:
        """Copy of the map with every tensor on ``device``.

        Parameters
        ----------
        device : torch.device or str
            Where the tensors go.

        Returns
        -------
        GroupMap
            The same groups, ``family`` and ``features``, on ``device``.
        """
        return self._map(lambda t: t.to(device))

    def _map(self, fn, index: Tensor | None = None) -> GroupMap:
        """The map with ``fn`` applied to every per-group tensor.

        ``index`` replaces the index matrix (``fn`` applies to it otherwise);
        ``family`` and ``features`` are kept.
        """
        return GroupMap(
            fn(self.index) if index is None else index,
            fn(self.sizes),
            fn(self.layer),
            fn(self.unit),
            fn(self.unit_layer),
            self.family,
            None if self.switch is None else fn(self.switch),
            self.features,
        )

    def stack(self, n: int, stride: int) -> GroupMap:
        """The map of ``n`` copies of the network, one after another.

        Copy ``k``'s flat vector starts at ``k * stride`` of the stacked vector
        (``stride``: the length of one vector, its sentinel included), so its
        padding points at its own sentinel. Groups come copy by copy.

        Parameters
        ----------
        n : int
            The number of copies.
        stride : int
            The length of one copy's flat vector (``n_params + 1``).

        Returns
        -------
        GroupMap
            ``n * n_groups`` groups into a vector of ``n * stride`` entries.
        """
        offsets = torch.arange(n, device=self.index.device) * stride
        index = (self.index.unsqueeze(0) + offsets.view(n, 1, 1)).reshape(
            -1, self.index.shape[1]
        )
        return self._map(lambda t: t.repeat(n), index=index)

    def kept_groups(self, keep: list[Tensor]) -> Tensor:
        """Which groups survive when only the units in ``keep`` are kept.

        A group survives when its unit does; switch chunks always survive
        (they shrink instead). The surviving groups are those of
        :func:`build_group_map` on the smaller layout, in the same order,
        because both list groups by layer and then by unit.

        Parameters
        ----------
        keep : list of BoolTensor
            ``keep[u]`` is a boolean mask over unit layer ``u``, for every
            layer of units but the outputs (inputs first; the outputs are
            always kept), as from :func:`~skgroupsparse.network.kept_units`.

        Returns
        -------
        kept : BoolTensor of shape (n_groups,)
            True for the groups that survive, on the device of ``unit``.
        """
        flags = torch.cat(
            [k.to(self.unit.device) for k in keep]
            + [torch.ones(1, dtype=torch.bool, device=self.unit.device)]
        )
        starts = torch.tensor(
            [0, *torch.tensor([len(k) for k in keep]).cumsum(0).tolist()],
            device=self.unit.device,
        )
        # outputs (unit_layer == len(keep)) point at the trailing True
        unit_layer = self.unit_layer.clamp(max=len(keep))
        position = starts[unit_layer] + torch.where(
            unit_layer < len(keep), self.unit, 0
        )
        kept = flags[position]
        if self.switch is not None:
            kept = kept | self.switch
        return kept

    def gather(self, flat: Tensor) -> Tensor:
        """The ``(n_groups, max_size)`` group matrix of ``flat`` (a copy).

        Parameters
        ----------
        flat : Tensor of shape (n_params + 1,)
            A flat vector of the map's layout (parameters, gradient, optimizer
            metric), sentinel included.

        Returns
        -------
        groups : Tensor of shape (n_groups, max_size)
            Row ``g`` holds group ``g``'s coordinates; its padding holds
            ``flat``'s sentinel entry (zero for parameters and gradients).
        """
        # index_select on the flattened index is several times faster than
        # advanced indexing with a 2-D index on the CPU
        return flat.index_select(0, self.index.view(-1)).view(self.index.shape)

    def scatter_(self, flat: Tensor, groups: Tensor) -> Tensor:
        """Write a group matrix back into ``flat`` in place.

        Padding entries of ``groups`` must be zero: they all land on the
        sentinel, so whichever write wins, it writes zero.

        Parameters
        ----------
        flat : Tensor of shape (n_params + 1,)
            The flat vector written to, in place.
        groups : Tensor of shape (n_groups, max_size)
            A group matrix in the layout of :meth:`gather`.

        Returns
        -------
        flat : Tensor of shape (n_params + 1,)
            ``flat`` itself, holding the groups' new values.
        """
        flat.index_copy_(0, self.index.view(-1), groups.reshape(-1))
        return flat

    def norms(self, flat: Tensor) -> Tensor:
        """Euclidean norm of every group.

        Parameters
        ----------
        flat : Tensor of shape (n_params + 1,)
            A flat vector of the map's layout, with a zero sentinel.

        Returns
        -------
        norms : Tensor of shape (n_groups,)
            ``||flat[group g]||_2`` for every group ``g``.
        """
        return torch.linalg.vector_norm(self.gather(flat), dim=1)

    def per_layer(self, values: Tensor) -> Tensor:
        """Broadcast one value per weight matrix to one value per group.

        Parameters
        ----------
        values : Tensor of shape (n_layers,)
            One value per weight matrix ``W_l``, in layer order.

        Returns
        -------
        per_group : Tensor of shape (n_groups,)
            The value of the weight matrix each group lives in (``layer``).
        """
        return values[self.layer]


@dataclass
class _Block:
    """Groups of equal size: ``rows`` (n, size) of flat positions and labels."""

    rows: Tensor
    layer: int
    unit: Tensor
    unit_layer: int
    switch: bool = False


def _group_map(blocks: list[_Block], layout: FlatLayout, family: str) -> GroupMap:
    """Stack blocks of groups into one padded map (built without Python loops
    over groups: removal rebuilds maps while training)."""
    width = max((b.rows.shape[1] for b in blocks), default=0)
    n_groups = sum(b.rows.shape[0] for b in blocks)
    index = torch.full((n_groups, width), layout.sentinel, dtype=torch.long)
    sizes, layer, unit, unit_layer, switch = [], [], [], [], []
    start = 0
    for b in blocks:
        n, size = b.rows.shape
        index[start : start + n, :size] = b.rows
        start += n
        sizes.append(torch.full((n,), size, dtype=torch.long))
        layer.append(torch.full((n,), b.layer, dtype=torch.long))
        unit.append(b.unit)
        unit_layer.append(torch.full((n,), b.unit_layer, dtype=torch.long))
        switch.append(torch.full((n,), b.switch, dtype=torch.bool))

    def cat(parts, dtype=torch.long):
        return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype)

    return GroupMap(
        index=index,
        sizes=cat(sizes),
        layer=cat(layer),
        unit=cat(unit),
        unit_layer=cat(unit_layer),
        family=family,
        switch=cat(switch, torch.bool) if family == "switch" else None,
    )


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
        One group per input feature (``"outgoing"`` with ``features``) and per
        hidden unit, listed by layer and then by unit.
    """
    if family not in GROUP_FAMILIES:
        raise ValueError(f"groups must be one of {GROUP_FAMILIES}, got {family!r}")
    blocks: list[_Block] = []
    shapes = layout.weight_shapes
    if family == "outgoing":
        for l, ((n_out, n_in), off) in enumerate(zip(shapes, layout.weight_offsets)):
            if l == 0 and not features:
                continue
            # group j: column j of W_l, positions off + i * n_in + j
            rows = off + torch.arange(n_in).unsqueeze(1) + n_in * torch.arange(n_out)
            blocks.append(_Block(rows, l, torch.arange(n_in), l))
    else:
        if layout.n_layers < 2:
            raise ValueError(
                "groups='incoming' needs at least one hidden layer: with "
                "hidden_layer_sizes=() there are no neurons to group"
            )
        for l in range(layout.n_layers - 1):
            n_out, n_in = shapes[l]
            w_off, b_off = layout.weight_offsets[l], layout.bias_offsets[l]
            # group i: row i of W_l, then the bias b_l[i]
            row = w_off + torch.arange(n_out * n_in).view(n_out, n_in)
            bias = b_off + torch.arange(n_out).unsqueeze(1)
            blocks.append(
                _Block(torch.cat([row, bias], 1), l, torch.arange(n_out), l + 1)
            )
    group_map = _group_map(blocks, layout, family)
    group_map.features = bool(features) and family == "outgoing"
    return group_map


def build_switch_group_map(layout: FlatLayout) -> GroupMap:
    """Chunks of a switch network, for elementwise penalties (ShrinkNets).

    One chunk per switch vector ``beta_l`` (``unit_layer = l``, ``switch``
    True), then one per row of every weight matrix (``unit_layer`` is the layer
    of the row's unit, ``L`` for output rows). Biases are not in any chunk.
    Elementwise penalties do not care how coordinates are chunked; these
    chunks follow the units so that removing a unit removes its row's chunk.

    Parameters
    ----------
    layout : FlatLayout
        Where the weights and switches live; it must have ``switches=True``.

    Returns
    -------
    GroupMap
        The chunks, with ``family="switch"`` and ``switch`` set.
    """
    if not layout.switches:
        raise ValueError("build_switch_group_map needs a layout with switches")
    blocks = [
        _Block(
            (off + torch.arange(size)).unsqueeze(0),
            l,
            torch.zeros(1, dtype=torch.long),
            l,
            switch=True,
        )
        for l, (off, size) in enumerate(zip(layout.switch_offsets, layout.switch_sizes))
    ]
    for l, ((n_out, n_in), off) in enumerate(
        zip(layout.weight_shapes, layout.weight_offsets)
    ):
        rows = off + torch.arange(n_out * n_in).view(n_out, n_in)
        blocks.append(_Block(rows, l, torch.arange(n_out), l + 1))
    return _group_map(blocks, layout, "switch")
