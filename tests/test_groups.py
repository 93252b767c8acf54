"""Tests of :mod:`skgroupsparse.groups` against a brute-force construction.

The oracle is written here from ALGORITHMS.md section 1.2 alone: the flat
vector is ``W_1, b_1, W_2, b_2, ...`` with each ``W_l`` of shape
``(n_l, n_{l-1})`` (``nn.Linear`` out x in) stored row-major, then one zero
sentinel. Entry ``(i, j)`` of ``W_l`` is at ``offset(W_l) + i * n_{l-1} + j``.
Groups are compared as sets of flat positions built from that formula.
"""

import pytest
import torch

from skgroupsparse.groups import FlatLayout, build_group_map

SIZES = (5, 4, 3, 2)


def _hand_offsets(sizes):
    """``[(weight_offset, bias_offset, n_out, n_in)]`` per layer, by hand."""
    out, pos = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        out.append((pos, pos + n_out * n_in, n_out, n_in))
        pos += n_out * n_in + n_out
    return out, pos


def _weight_pos(off, n_in, i, j):
    return off + i * n_in + j


def _members(gm, g):
    size = int(gm.sizes[g])
    return [int(k) for k in gm.index[g, :size]]


def test_layout_matches_hand_offsets():
    layout = FlatLayout(SIZES)
    hand, n_params = _hand_offsets(SIZES)
    assert n_params == 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2 == 47
    assert layout.n_params == n_params
    assert layout.sentinel == n_params
    assert layout.weight_offsets == [h[0] for h in hand]
    assert layout.bias_offsets == [h[1] for h in hand]
    assert layout.weight_shapes == [(h[2], h[3]) for h in hand]
    flat = torch.arange(n_params + 1, dtype=torch.float64)
    weights, biases = layout.views(flat)
    for (w_off, b_off, n_out, n_in), W, b in zip(hand, weights, biases, strict=True):
        assert W.shape == (n_out, n_in)
        for i in range(n_out):
            for j in range(n_in):
                assert int(W[i, j]) == _weight_pos(w_off, n_in, i, j)
            assert int(b[i]) == b_off + i
    mask = layout.weight_mask()
    expected = torch.zeros(n_params + 1, dtype=torch.bool)
    for w_off, _, n_out, n_in in hand:
        expected[w_off : w_off + n_out * n_in] = True
    assert torch.equal(mask, expected)


def test_outgoing_groups_partition_the_weights():
    layout = FlatLayout(SIZES)
    gm = build_group_map(layout, "outgoing")
    hand, n_params = _hand_offsets(SIZES)
    assert gm.family == "outgoing"
    # one group per unit that has outgoing weights: 5 features + 4 + 3 hidden
    assert gm.n_groups == 5 + 4 + 3

    # brute force: the expected group of each (unit layer, unit) is a column
    expected = {}
    for l, (w_off, _, n_out, n_in) in enumerate(hand):
        for j in range(n_in):
            expected[(l, j)] = sorted(
                _weight_pos(w_off, n_in, i, j) for i in range(n_out)
            )
    got = {}
    for g in range(gm.n_groups):
        key = (int(gm.unit_layer[g]), int(gm.unit[g]))
        assert key not in got, f"unit {key} has two groups"
        got[key] = sorted(_members(gm, g))
        # the group lives in W_{l+1}, whose index is the unit layer
        assert int(gm.layer[g]) == key[0]
        assert int(gm.sizes[g]) == SIZES[key[0] + 1]
    assert got == expected

    # every weight entry in exactly one group, no bias, no sentinel
    counts = torch.zeros(n_params + 1, dtype=torch.long)
    for g in range(gm.n_groups):
        for k in _members(gm, g):
            counts[k] += 1
    is_weight = torch.zeros(n_params + 1, dtype=torch.bool)
    for w_off, _, n_out, n_in in hand:
        is_weight[w_off : w_off + n_out * n_in] = True
    assert torch.all(counts[is_weight] == 1)
    assert torch.all(counts[~is_weight] == 0)
    assert int(gm.sizes.sum()) == int(is_weight.sum())


def test_feature_groups_are_columns_of_first_weight_matrix():
    layout = FlatLayout(SIZES)
    gm = build_group_map(layout, "outgoing")
    flat = torch.randn(
        layout.n_params + 1,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(0),
    )
    flat[-1] = 0.0
    # W_1 read by hand from the flat vector, (out x in) = (4, 5)
    W1 = flat[:20].reshape(4, 5)
    feature_groups = [g for g in range(gm.n_groups) if int(gm.unit_layer[g]) == 0]
    assert len(feature_groups) == 5
    V = gm.gather(flat)
    for g in feature_groups:
        j = int(gm.unit[g])
        assert torch.equal(V[g, :4], W1[:, j])
    assert sorted(int(gm.unit[g]) for g in feature_groups) == list(range(5))


def test_outgoing_without_features_drops_only_feature_groups():
    layout = FlatLayout(SIZES)
    gm = build_group_map(layout, "outgoing", features=False)
    assert gm.n_groups == 4 + 3
    assert set(gm.unit_layer.tolist()) == {1, 2}
    hand, _ = _hand_offsets(SIZES)
    first_w = set(range(hand[0][0], hand[0][0] + 20))
    for g in range(gm.n_groups):
        assert not first_w & set(_members(gm, g))


@pytest.mark.parametrize("family", ["outgoing", "incoming"])
def test_padding_points_at_zero_sentinel(family):
    layout = FlatLayout(SIZES)
    gm = build_group_map(layout, family)
    width = gm.index.shape[1]
    assert width == int(gm.sizes.max())
    n_padding = 0
    for g in range(gm.n_groups):
        size = int(gm.sizes[g])
        pad = gm.index[g, size:]
        assert torch.all(pad == layout.n_params)
        # real entries never point at the sentinel
        assert torch.all(gm.index[g, :size] < layout.n_params)
        n_padding += width - size
    assert n_padding > 0  # the layout has groups of different sizes
    flat = torch.randn(layout.n_params + 1, dtype=torch.float64)
    flat[-1] = 0.0
    V = gm.gather(flat)
    mask = torch.arange(width).unsqueeze(0) < gm.sizes.unsqueeze(1)
    assert torch.all(V[~mask] == 0)


@pytest.mark.parametrize("family", ["outgoing", "incoming"])
def test_gather_scatter_round_trip(family):
    layout = FlatLayout(SIZES)
    gm = build_group_map(layout, family)
    gen = torch.Generator().manual_seed(1)
    flat = torch.randn(layout.n_params + 1, dtype=torch.float64, generator=gen)
    flat[-1] = 0.0
    in_group = torch.zeros(layout.n_params + 1, dtype=torch.bool)
    for g in range(gm.n_groups):
        in_group[_members(gm, g)] = True

    # identity round trip
    out = flat.clone()
    gm.scatter_(out, gm.gather(flat))
    assert torch.equal(out, flat)

    # scatter into zeros: exactly the grouped entries come back
    out = torch.zeros_like(flat)
    gm.scatter_(out, gm.gather(flat))
    assert torch.equal(out[in_group], flat[in_group])
    assert torch.all(out[~in_group] == 0)

    # a transformed group matrix lands on its own entries only
    out = flat.clone()
    gm.scatter_(out, 3.0 * gm.gather(flat))
    assert torch.equal(out[in_group], 3.0 * flat[in_group])
    assert torch.equal(out[~in_group], flat[~in_group])
    assert out[-1] == 0.0

    # norms are the Euclidean norms of the members
    norms = gm.norms(flat)
    for g in range(gm.n_groups):
        ref = torch.linalg.vector_norm(flat[_members(gm, g)])
        assert torch.allclose(norms[g], ref, rtol=1e-14, atol=0)


def test_incoming_groups_are_rows_plus_bias():
    layout = FlatLayout(SIZES)
    gm = build_group_map(layout, "incoming")
    hand, n_params = _hand_offsets(SIZES)
    assert gm.family == "incoming"
    # hidden units only: 4 + 3; the output layer is not grouped
    assert gm.n_groups == 4 + 3
    expected = {}
    for l, (w_off, b_off, n_out, n_in) in enumerate(hand[:-1]):
        for i in range(n_out):
            row = [_weight_pos(w_off, n_in, i, j) for j in range(n_in)]
            expected[(l + 1, i)] = sorted(row + [b_off + i])
    got = {}
    for g in range(gm.n_groups):
        key = (int(gm.unit_layer[g]), int(gm.unit[g]))
        assert key not in got
        got[key] = sorted(_members(gm, g))
        assert int(gm.layer[g]) == key[0] - 1
        assert int(gm.sizes[g]) == SIZES[key[0] - 1] + 1
    assert got == expected
    # disjoint groups
    all_members = [k for g in range(gm.n_groups) for k in _members(gm, g)]
    assert len(all_members) == len(set(all_members))
    # nothing of the output layer
    w_off, b_off, n_out, n_in = hand[-1]
    assert not set(all_members) & set(range(w_off, n_params))


@pytest.mark.parametrize("sizes", [(5, 2), (3, 1)])
def test_incoming_without_hidden_layer_raises(sizes):
    with pytest.raises(ValueError, match="hidden"):
        build_group_map(FlatLayout(sizes), "incoming")


def test_unknown_family_raises():
    with pytest.raises(ValueError, match="groups must be one of"):
        build_group_map(FlatLayout(SIZES), "columns")


@pytest.mark.parametrize("family", ["outgoing", "incoming"])
def test_per_layer_broadcasts_one_value_per_weight_matrix(family):
    layout = FlatLayout(SIZES)
    gm = build_group_map(layout, family)
    hand, _ = _hand_offsets(SIZES)
    values = torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64)
    per_group = gm.per_layer(values)
    assert per_group.shape == (gm.n_groups,)
    for g in range(gm.n_groups):
        # find by hand the weight matrix W_l that holds the group's weights
        first = _members(gm, g)[0]
        (l,) = [
            l
            for l, (w_off, _, n_out, n_in) in enumerate(hand)
            if w_off <= first < w_off + n_out * n_in
        ]
        assert per_group[g] == values[l]
    expected_counts = {"outgoing": [5, 4, 3], "incoming": [4, 3, 0]}[family]
    assert [int((per_group == v).sum()) for v in values] == expected_counts


def test_outgoing_linear_model_groups_are_columns():
    # hidden_layer_sizes=(): one group per feature, of size n_outputs
    layout = FlatLayout((4, 3))
    gm = build_group_map(layout)
    assert gm.n_groups == 4
    for g in range(4):
        j = int(gm.unit[g])
        assert sorted(_members(gm, g)) == [j, 4 + j, 8 + j]
