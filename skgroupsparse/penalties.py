"""Penalties on groups of coordinates: pure tensor maths.

Every penalty acts on a *group matrix* ``V`` of shape ``(n_groups, max_size)``:
row ``g`` holds the coordinates of group ``g``, padded with zeros up to the
widest group. ``sizes`` (shape ``(n_groups,)``, any numeric dtype: it is
converted to the group matrix's dtype) gives the true number of coordinates of
each group; it only matters for the group weights ``sqrt(|g|)``, and ``None``
counts every group as ``max_size`` wide. Zero padding is harmless to every
method here: a zero coordinate adds nothing to a norm, its prox is zero and its
(sub)gradient test is met.

``alpha`` is a float or a tensor of shape ``(n_groups,)`` (one strength per
group, e.g. one per layer broadcast to that layer's groups).

The proximal maps solve, for a step ``eta`` and an optional diagonal metric
``D`` (shape of ``V``, all entries positive)::

    prox(Z) = argmin_X  Omega(X) + 1 / (2 eta) * sum_i D_i (X_i - Z_i) ** 2

``D = None`` means the identity (plain proximal gradient). A diagonal ``D`` is
the metric of an adaptive optimizer (ALGORITHMS.md section 6.3): Adam's
``sqrt(v_hat) + eps``. For elementwise penalties the weighted prox is the
scalar prox with step ``eta / D_i``; for the group l2 norm it has no closed
form and is solved per group by a safeguarded Newton iteration on a scalar
equation (see :func:`weighted_block_soft_threshold`). A penalty whose prox has
no closed form in a diagonal metric (``metric_prox = False``) takes ``D = None``
only.

The methods of :class:`Penalty` state the contract once. A subclass method
with the same contract has no docstring of its own and inherits the base one
(:func:`inspect.getdoc`, ``help()`` and the API reference show it); what is
specific to a penalty (its formula, prox, thresholds, optimality residual) is in
the Notes of its class docstring.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "Penalty",
    "L1",
    "GroupLasso",
    "SparseGroupLasso",
    "ElasticNet",
    "TransformedL1",
    "L0",
    "LHalf",
    "L1MinusL2",
    "GroupL0",
    "GroupTransformedL1",
    "RowwiseComposite",
    "soft_threshold",
    "hard_threshold",
    "tl1_threshold",
    "half_threshold",
    "block_soft_threshold",
    "weighted_block_soft_threshold",
    "make_penalty",
    "PENALTIES",
]


# --------------------------------------------------------------------------
# Stateless kernels
# --------------------------------------------------------------------------
def soft_threshold(v: Tensor, t: Tensor | float) -> Tensor:
    """Elementwise soft threshold ``sign(v) * max(|v| - t, 0)``.

    This is the prox of ``t * |x|`` for every entry.

    Parameters
    ----------
    v : torch.Tensor
        Values to threshold, of any shape.
    t : float or torch.Tensor
        Non-negative threshold, a float or a tensor broadcastable to ``v``
        (e.g. of shape ``(n_groups, 1)`` for one threshold per row).

    Returns
    -------
    torch.Tensor
        The soft-thresholded values, of the shape and dtype of ``v``.
    """
    if not torch.is_tensor(t):
        t = torch.as_tensor(t, dtype=v.dtype, device=v.device)
    # v - clip(v, -t, t) is the soft threshold in two kernels
    return v - torch.minimum(torch.maximum(v, -t), t)


def _row_norms(V: Tensor) -> Tensor:
    return torch.linalg.vector_norm(V, dim=1)


def block_soft_threshold(V: Tensor, t: Tensor | float) -> Tensor:
    """Row-wise block soft threshold ``max(0, 1 - t / ||v||_2) v``.

    This is the prox of ``t * ||x||_2`` for every row ``v`` of ``V``; zero rows
    stay zero.

    Parameters
    ----------
    V : torch.Tensor of shape (n_groups, max_size)
        Rows to threshold (the group matrix).
    t : float or torch.Tensor of shape (n_groups,)
        Non-negative threshold: one for every row, or one per row.

    Returns
    -------
    torch.Tensor of shape (n_groups, max_size)
        Every row of ``V`` scaled by ``max(0, 1 - t / ||v||_2)``.
    """
    norms = _row_norms(V)
    # scale = (1 - t / norm)_+, written so that norm == 0 gives 0 without NaN
    scale = torch.clamp(norms - t, min=0) / torch.clamp(
        norms, min=torch.finfo(V.dtype).tiny
    )
    return V * scale.unsqueeze(1)


def weighted_block_soft_threshold(
    Z: Tensor, D: Tensor, t: Tensor | float, n_newton: int | None = None
) -> Tensor:
    """Prox of ``t * ||x||_2`` per row in the metric ``diag(D)``.

    Solves, row by row, ``argmin_x t ||x||_2 + 1/2 sum_i D_i (x_i - z_i)^2``.

    With ``a = D * z``: the row is zero iff ``||a||_2 <= t``. Otherwise
    ``x_i = a_i r / (D_i r + t)`` where ``r = ||x||_2 > 0`` is the unique root of
    ``phi(r) = sum_i (a_i / (D_i r + t))^2 = 1``.

    We run Newton's method on ``h(r) = phi(r)^(-1/2) - 1``. ``h`` is increasing
    and concave (``phi^(-1/2)`` is the power mean of exponent -2 of the affine
    functions ``(D_i r + t) / |a_i|``), and linear when ``D`` is constant on the
    row. Hence from any start every Newton iterate after the first lies left of
    the root and the iterates then increase monotonically and quadratically to
    it; iterates are clipped below at ``(||a|| - t) / max_i D_i``, a lower bound
    of the root. The start is the exact root for the row's ``a``-weighted mean
    metric, so a constant-metric row is solved exactly. ``n_newton`` iterations
    run unconditionally over all rows at once: a fixed sequence of kernels with
    no data-dependent control flow and no host synchronisation, so that on a
    GPU a step can be captured as a CUDA graph. On Adam's metrics in training
    two iterations already reach 1e-8 relative error; with ``D`` log-uniform
    over six orders of magnitude inside a row, six reach float64 round-off; on
    adversarial two-coordinate rows (metric ratio up to 1e6, the large
    coordinate on the small metric, thresholds up to ``1 - 1e-10`` of
    ``||a||``) eight leave 4e-6 and ten 4e-14. The solve runs in float64 whatever
    the dtype of ``Z`` (in float32 the excess ``||a|| - t`` of a row near its
    threshold loses every digit), with twelve iterations by default.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_groups, max_size)
        Point to map, one row per group (e.g. the result of an Adam step).
    D : torch.Tensor of shape (n_groups, max_size)
        Positive diagonal of the metric, in the layout of ``Z``.
    t : float or torch.Tensor of shape (n_groups,)
        Non-negative threshold ``eta * alpha * w_g`` per row.
    n_newton : int or None, default=None
        Number of Newton iterations; ``None`` picks 12.

    Returns
    -------
    torch.Tensor of shape (n_groups, max_size)
        The weighted prox of every row, in the dtype of ``Z``: zero where
        ``||D z||_2 <= t``, else ``x_i = D_i z_i r / (D_i r + t)``.
    """
    if n_newton is None:
        n_newton = 12
    out_dtype = Z.dtype
    work = torch.promote_types(out_dtype, torch.float64)
    Z, D = Z.to(work), D.to(work)
    if not torch.is_tensor(t):
        t = torch.full((Z.shape[0],), float(t), dtype=work, device=Z.device)
    t = t.to(work).expand(Z.shape[0]).unsqueeze(1)
    tiny = torch.finfo(work).tiny
    a = D * Z
    a2 = a * a
    sum_a2 = a2.sum(dim=1, keepdim=True)
    norm_a = torch.sqrt(sum_a2)
    excess = torch.clamp(norm_a - t, min=0)
    d_max = torch.where(a != 0, D, 0.0).amax(dim=1, keepdim=True)
    lower = excess / torch.clamp(d_max, min=tiny)
    d_mean = (a2 * D).sum(dim=1, keepdim=True) / torch.clamp(sum_a2, min=tiny)
    r = excess / torch.clamp(d_mean, min=tiny)
    a2D = a2 * D
    for _ in range(n_newton):
        inv = torch.reciprocal(torch.addcmul(t, D, r))
        inv2 = inv * inv
        phi = (a2 * inv2).sum(dim=1, keepdim=True)
        # h / h' = (phi - phi^{3/2}) / sum_i a_i^2 D_i / (D_i r + t)^3
        slope = (a2D * inv).mul_(inv2).sum(dim=1, keepdim=True)
        r = torch.addcdiv(r, phi * (phi.sqrt() - 1), torch.clamp(slope, min=tiny))
        r = torch.maximum(r, lower)
    x = a * r / torch.addcmul(t, D, r)
    return torch.where(norm_a > t, x, torch.zeros_like(x)).to(out_dtype)


def _as_group_tensor(value: Tensor | float, like: Tensor) -> Tensor:
    """A float or per-group tensor as a tensor of shape ``(n_groups,)``."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.expand(like.shape[0])


def _times(x: Tensor, step: Tensor | float) -> Tensor:
    """``x * step`` without building a tensor for a Python number."""
    if isinstance(step, (int, float)):
        return x * step
    return x * torch.as_tensor(step, dtype=x.dtype, device=x.device)


def _sizes(V: Tensor, sizes: Tensor | None) -> Tensor:
    if sizes is None:
        return torch.full((V.shape[0],), V.shape[1], dtype=V.dtype, device=V.device)
    return torch.as_tensor(sizes, device=V.device).to(V.dtype)


def _l1_distance(smooth: Tensor, V: Tensor, t: Tensor) -> Tensor:
    """Per coordinate, the distance of ``-smooth`` to ``t * d|V_i|``.

    ``|smooth + t sign(V_i)|`` where ``V_i != 0``, ``max(|smooth| - t, 0)``
    where ``V_i = 0``: the l1 part of every optimality residual.
    """
    return torch.where(
        V != 0, (smooth + t * torch.sign(V)).abs(), torch.clamp(smooth.abs() - t, min=0)
    )


# --------------------------------------------------------------------------
# Penalties
# --------------------------------------------------------------------------
# Docstrings: see the module docstring. An override without a docstring is
# validated through its base (tests/test_docstrings.py); one whose contract
# differs (it always raises, or its result means something else) keeps a
# complete docstring.
def _same(a, b) -> bool:
    """Whether two settings of a penalty are equal (tensors by value)."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        return (
            torch.is_tensor(a)
            and torch.is_tensor(b)
            and a.shape == b.shape
            and bool(torch.equal(a.cpu(), b.cpu()))
        )
    return a == b


class Penalty:
    """Base class: ``alpha * R(V)`` over the rows (groups) of ``V``.

    Subclasses implement :meth:`value`, :meth:`prox`, :meth:`zero_thresholds`
    (from which :meth:`alpha_max` follows) and :meth:`subdiff_distance`. All
    methods are batched over groups, work on any device and floating dtype,
    and never synchronise with the host.

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group (e.g. one per
        layer broadcast to that layer's groups).
    """

    #: whether :meth:`prox` has a closed form in a diagonal metric (else it
    #: takes ``metric=None`` only)
    metric_prox = True

    def __init__(self, alpha: Tensor | float = 1.0):
        self.alpha = alpha

    def _alpha(self, V: Tensor) -> Tensor:
        return _as_group_tensor(self.alpha, V)

    def value(self, V: Tensor, sizes: Tensor | None = None) -> Tensor:
        """Penalty value ``sum_g alpha_g R_g(V_g)``.

        Parameters
        ----------
        V : torch.Tensor of shape (n_groups, max_size)
            Group matrix: row ``g`` holds the coordinates of group ``g``, padded
            with zeros up to the widest group.
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group (see the module docstring).

        Returns
        -------
        torch.Tensor of shape ()
            The value of the penalty, a 0-d tensor of the dtype of ``V``.
        """
        raise NotImplementedError

    def prox(
        self,
        V: Tensor,
        step: Tensor | float,
        metric: Tensor | None = None,
        sizes: Tensor | None = None,
    ) -> Tensor:
        """Proximal map with step ``step`` in the metric ``diag(metric)``.

        Solves, row by row, ``argmin_X alpha R(X) + 1 / (2 step) * sum_i D_i
        (X_i - V_i) ** 2`` with ``D = metric`` (``D = 1`` when ``metric`` is
        None); for a nonconvex penalty, one of the minimisers. ``V`` is not
        modified.

        Parameters
        ----------
        V : torch.Tensor of shape (n_groups, max_size)
            Point to map, in group layout (e.g. the parameters after an
            optimizer step), padded with zeros up to the widest group.
        step : float or torch.Tensor of shape ()
            Step ``eta > 0`` of the proximal gradient step: the map is the prox
            of ``eta * alpha * R``.
        metric : torch.Tensor of shape (n_groups, max_size) or None, default=None
            Positive diagonal ``D`` of the metric in the layout of ``V``, e.g.
            Adam's ``sqrt(v_hat) + eps`` (ALGORITHMS.md section 6.3); ``None``
            for the identity (plain proximal gradient). Must be None where
            ``metric_prox`` is False.
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group (see the module docstring).

        Returns
        -------
        torch.Tensor of shape (n_groups, max_size)
            The proximal point, a new tensor; padding stays zero.

        Raises
        ------
        NotImplementedError
            If ``metric`` is not None and the penalty's ``metric_prox`` is
            False (its prox has no closed form in a diagonal metric:
            :class:`L1MinusL2`, :class:`GroupTransformedL1`); train such a
            penalty with a prox in the identity metric (``optimizer="sgd"``, or
            ``prox="decoupled"`` after an adaptive step).
        """
        raise NotImplementedError

    def zero_thresholds(self, grad: Tensor, sizes: Tensor | None = None) -> Tensor:
        """Per coordinate, the smallest ``alpha`` at which it is zero when stationary.

        A coordinate is zero at a stationary point of ``loss + penalty`` with
        the loss gradient ``grad`` iff ``alpha`` is at least its threshold (the
        optimality conditions, e.g. ``|g_j|`` for l1 and ``||g_g|| / w_g`` for
        a group). Shen et al. 2024 choose ``alpha`` from these values to reach
        a target sparsity. ``self.alpha`` is ignored.

        Parameters
        ----------
        grad : torch.Tensor of shape (n_groups, max_size)
            Gradient of the smooth loss in group layout (one row per group,
            zero at the padding).
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group (see the module docstring).

        Returns
        -------
        torch.Tensor of shape (n_groups, max_size)
            The threshold of every coordinate (values at the padding mean
            nothing).
        """
        raise NotImplementedError

    def alpha_max(self, grad: Tensor, sizes: Tensor | None = None) -> Tensor:
        """Smallest ``alpha`` for which ``V = 0`` is optimal given ``grad`` at 0.

        For a nonconvex penalty: for which ``V = 0`` is a stationary point.
        This is the maximum of :meth:`zero_thresholds`. ``self.alpha`` is
        ignored.

        Parameters
        ----------
        grad : torch.Tensor of shape (n_groups, max_size)
            Gradient of the smooth loss at ``V = 0``, in group layout (zero at
            the padding).
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group (see the module docstring).

        Returns
        -------
        torch.Tensor of shape ()
            The largest zero threshold, a 0-d tensor.

        Raises
        ------
        NotImplementedError
            If the penalty has no zero thresholds (:meth:`zero_thresholds`
            raises).
        """
        return self.zero_thresholds(grad, sizes).amax()

    def subdiff_distance(
        self, V: Tensor, grad: Tensor, sizes: Tensor | None = None
    ) -> Tensor:
        """Distance of ``-grad`` to ``alpha * dR(V)``, per group.

        All zero exactly at a stationary point of ``loss + penalty`` (restricted
        to these coordinates), so its maximum is an optimality residual. For a
        separable penalty it is the l2 norm over the group of the distances of
        its coordinates; for a nonconvex penalty ``dR`` is the limiting
        subdifferential. Each penalty's formula is in the Notes of its class.

        Parameters
        ----------
        V : torch.Tensor of shape (n_groups, max_size)
            Point at which the optimality is measured, in group layout, padded
            with zeros up to the widest group.
        grad : torch.Tensor of shape (n_groups, max_size)
            Gradient of the smooth loss at ``V``, in the same layout (zero at
            the padding).
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group (see the module docstring).

        Returns
        -------
        torch.Tensor of shape (n_groups,)
            The non-negative residual of every group.
        """
        raise NotImplementedError

    def prox_strengths(self, sizes: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
        """Per-group ``(l1, group, ridge)`` strengths if the penalty has that form.

        A penalty that is ``sum_g (c1_g ||x_g||_1 + c2_g ||x_g||_2 +
        c3_g ||x_g||_2^2)`` returns ``(c1, c2, c3)``; the group weights ``w_g``
        are part of ``c2``. Fused kernels use this to apply its prox without
        the tensor code. Others return ``None``.

        Parameters
        ----------
        sizes : torch.Tensor of shape (n_groups,)
            True number of coordinates of each group, in the floating dtype
            (and on the device) the strengths are to have.

        Returns
        -------
        tuple of three torch.Tensor of shape (n_groups,), or None
            ``(c1, c2, c3)``, or ``None`` when the penalty is not of that form.
        """
        return None

    def select(self, keep: Tensor) -> Penalty:
        """The same penalty on the groups ``keep`` only.

        Per-group strengths are indexed; scalars stay. Used when neurons are
        removed during training.

        Parameters
        ----------
        keep : torch.Tensor of shape (n_groups,), dtype=bool
            Which groups (rows of the group matrix) remain, in their order.

        Returns
        -------
        Penalty
            A new penalty of the same class on the ``keep.sum()`` remaining
            groups; ``self`` is unchanged.
        """
        new = copy.copy(self)
        for name, value in vars(self).items():
            if torch.is_tensor(value) and value.ndim == 1:
                setattr(new, name, value[keep.to(value.device)])
        return new

    @classmethod
    def stack(cls, penalties: Sequence[Penalty]) -> Penalty:
        """One penalty on the groups of all of ``penalties``, in order.

        The inverse of :meth:`select`: per-group strengths are concatenated;
        everything else must be the same in all (K networks of one
        architecture trained as one, each with its own strengths).

        Parameters
        ----------
        penalties : sequence of Penalty
            Penalties of one class, each on its own network's groups.

        Returns
        -------
        Penalty
            A new penalty whose groups are those of ``penalties[0]``, then of
            ``penalties[1]``, and so on.

        Raises
        ------
        ValueError
            If the classes or the settings that are not per group differ.
        """
        first = penalties[0]
        new = copy.copy(first)
        for other in penalties[1:]:
            same_kind = type(other) is type(first)
            if not same_kind or vars(other).keys() != vars(first).keys():
                raise ValueError(
                    f"cannot stack {type(first).__name__} and {type(other).__name__}"
                )
        for name, value in vars(first).items():
            values = [vars(p)[name] for p in penalties]
            if torch.is_tensor(value) and value.ndim == 1:
                setattr(new, name, torch.cat(values))
            elif any(not _same(v, value) for v in values[1:]):
                raise ValueError(
                    f"cannot stack {type(first).__name__} penalties whose {name} "
                    f"differ ({value!r} and others)"
                )
        return new

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class L1(Penalty):
    """Lasso ``alpha * ||V||_1`` (elementwise).

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Weight of the l1 norm: one for every group, or one per group.

    Notes
    -----
    The prox is the soft threshold :func:`soft_threshold` at ``step * alpha /
    D_i`` on coordinate ``i`` (``D = 1`` without a metric), exact in a
    diagonal metric. The zero threshold of a coordinate is ``|g_j|``; the
    strengths for the fused kernels are ``(alpha, 0, 0)``. The optimality
    residual of a coordinate is ``|g_j + alpha sign(v_j)|`` where ``v_j != 0``
    and ``max(|g_j| - alpha, 0)`` where ``v_j = 0``.
    """

    def value(self, V, sizes=None):
        return (self._alpha(V) * V.abs().sum(dim=1)).sum()

    def prox(self, V, step, metric=None, sizes=None):
        t = _times(self._alpha(V).unsqueeze(1), step)
        if metric is not None:
            t = t / metric
        return soft_threshold(V, t)

    def zero_thresholds(self, grad, sizes=None):
        return grad.abs()

    def prox_strengths(self, sizes):
        alpha = self._alpha(sizes.unsqueeze(1))
        return alpha, torch.zeros_like(alpha), torch.zeros_like(alpha)

    def subdiff_distance(self, V, grad, sizes=None):
        return _row_norms(_l1_distance(grad, V, self._alpha(V).unsqueeze(1)))


class _GroupNorms(Penalty):
    """Base of the penalties on weighted group norms, ``alpha sum_g w_g rho(r_g)``.

    ``r_g = ||V_g||_2`` and ``w_g`` the group weight. Subclasses give ``rho``'s
    derivative as :meth:`_slope` (the plain norm, ``rho(r) = r``, is the
    default); the zero thresholds and the optimality residual follow from it.

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group.
    weights : {"sqrt_size", "ones"}, default="sqrt_size"
        Group weights ``w_g``: ``sqrt(|g|)`` or 1.
    """

    def __init__(self, alpha=1.0, weights: str = "sqrt_size"):
        super().__init__(alpha)
        if weights not in ("sqrt_size", "ones"):
            raise ValueError(f"weights must be 'sqrt_size' or 'ones', got {weights!r}")
        self.weights = weights

    def group_weights(self, V: Tensor, sizes: Tensor | None = None) -> Tensor:
        """Group weights ``w_g`` for every row of ``V``.

        Parameters
        ----------
        V : torch.Tensor of shape (n_groups, max_size)
            Group matrix; only its shape, dtype and device are used.
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group (see the module docstring).

        Returns
        -------
        torch.Tensor of shape (n_groups,)
            ``sqrt(|g|)`` for ``weights="sqrt_size"``, 1 for ``weights="ones"``.
        """
        if self.weights == "ones":
            return torch.ones(V.shape[0], dtype=V.dtype, device=V.device)
        return torch.sqrt(_sizes(V, sizes))

    def _group_alpha(self, V, sizes):
        return self._alpha(V) * self.group_weights(V, sizes)

    def _slope(self, norms: Tensor) -> Tensor:
        """``rho'`` at the group norms (at 0: the slope that sets the thresholds)."""
        return torch.ones_like(norms)

    def group_thresholds(self, grad: Tensor, sizes: Tensor | None = None) -> Tensor:
        """Per group, the smallest ``alpha`` at which the whole group is zero.

        The group is zero at a stationary point of ``loss + penalty`` with the
        loss gradient ``grad`` iff ``alpha`` is at least this threshold,
        ``||g_g||_2 / (w_g rho'(0))``: ``||g_g||_2 / w_g`` for the group lasso.
        ``self.alpha`` is ignored.

        Parameters
        ----------
        grad : torch.Tensor of shape (n_groups, max_size)
            Gradient of the smooth loss, as for :meth:`Penalty.zero_thresholds`.
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group (see the module docstring).

        Returns
        -------
        torch.Tensor of shape (n_groups,)
            The threshold of every group.
        """
        norms = _row_norms(grad)
        slope_at_zero = self._slope(torch.zeros_like(norms))
        return norms / (self.group_weights(grad, sizes) * slope_at_zero)

    def zero_thresholds(self, grad, sizes=None):
        return self.group_thresholds(grad, sizes).unsqueeze(1).expand_as(grad)

    def subdiff_distance(self, V, grad, sizes=None):
        t = self._group_alpha(V, sizes)
        norms = _row_norms(V)
        unit = V / torch.clamp(norms, min=torch.finfo(V.dtype).tiny).unsqueeze(1)
        nonzero = _row_norms(grad + (t * self._slope(norms)).unsqueeze(1) * unit)
        slope_at_zero = self._slope(torch.zeros_like(norms))
        zero = torch.clamp(_row_norms(grad) - t * slope_at_zero, min=0)
        return torch.where(norms > 0, nonzero, zero)


class GroupLasso(_GroupNorms):
    """Group lasso ``alpha * sum_g w_g ||V_g||_2``.

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group.
    weights : {"sqrt_size", "ones"}, default="sqrt_size"
        Group weights ``w_g``: ``sqrt(|g|)`` (Scardapane et al. 2017) or 1.

    Notes
    -----
    The prox is the block soft threshold :func:`block_soft_threshold` at ``t =
    step * alpha * w_g`` on row ``g``; in a diagonal metric it is
    :func:`weighted_block_soft_threshold` (no closed form: a Newton
    iteration). A group is zero when stationary iff ``alpha >= ||g_g||_2 /
    w_g`` (:meth:`group_thresholds`), and every coordinate of the group has
    that zero threshold. The strengths for the fused kernels are ``(0, alpha
    w_g, 0)``. The optimality residual of a group is ``||g_g + alpha w_g V_g /
    ||V_g||_2||_2`` when ``V_g != 0`` and ``max(||g_g||_2 - alpha w_g, 0)``
    when ``V_g = 0``.
    """

    def prox_strengths(self, sizes):
        like = sizes.unsqueeze(1)
        group = self._group_alpha(like, sizes)
        return self._l1_alpha(like), group, torch.zeros_like(group)

    def _l1_alpha(self, V):
        return torch.zeros_like(self._alpha(V))

    def value(self, V, sizes=None):
        return (self._group_alpha(V, sizes) * _row_norms(V)).sum()

    def prox(self, V, step, metric=None, sizes=None):
        t = _times(self._group_alpha(V, sizes), step)
        if metric is None:
            return block_soft_threshold(V, t)
        return weighted_block_soft_threshold(V, metric, t)


class SparseGroupLasso(GroupLasso):
    """Sparse group lasso.

    ``alpha * (l1_ratio ||V||_1 + (1 - l1_ratio) sum_g w_g ||V_g||_2)``.

    Its prox is exact on a partition: soft threshold, then block soft
    threshold (in a diagonal metric: the soft threshold with per-coordinate
    step, then the weighted group prox).

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group.
    l1_ratio : float in [0, 1], default=0.5
        Share ``r`` of the l1 term; ``1 - r`` goes to the group term.
    weights : {"sqrt_size", "ones"}, default="sqrt_size"
        Group weights ``w_g``: ``sqrt(|g|)`` or 1.

    Notes
    -----
    Write ``r = l1_ratio``. The soft threshold is at ``step * alpha * r /
    D_i`` and the block soft threshold at ``step * alpha * (1 - r) * w_g``.
    The strengths for the fused kernels are ``(alpha r, alpha (1 - r) w_g,
    0)``.

    A group is zero when stationary iff ``alpha`` is at least the smallest
    ``a`` with ``||S_{a r}(g_g)||_2 <= a (1 - r) w_g`` (``S`` the soft
    threshold): the left side decreases and the right increases in ``a``, so
    :meth:`group_thresholds` bisects on ``[0, max_i |g_i| / r]`` (100 halvings;
    ``||g_g||_2 / w_g`` when ``r = 0``). A coordinate is zero when its group is,
    or when ``|g_j| <= alpha r``: its zero threshold is the smaller of its
    group's threshold and ``|g_j| / r``.

    The optimality residual of a group ``V_g != 0`` is the l1 one (see
    :class:`L1`) at strength ``alpha r`` with ``g_g + alpha (1 - r) w_g V_g /
    ||V_g||_2`` in place of ``g_g``; that of a group ``V_g = 0`` is
    ``max(||S_{alpha r}(g_g)||_2 - alpha (1 - r) w_g, 0)``.
    """

    def __init__(self, alpha=1.0, l1_ratio: float = 0.5, weights: str = "sqrt_size"):
        super().__init__(alpha, weights)
        if not 0.0 <= float(l1_ratio) <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}")
        self.l1_ratio = float(l1_ratio)

    def _group_alpha(self, V, sizes):
        return (1.0 - self.l1_ratio) * super()._group_alpha(V, sizes)

    def _l1_alpha(self, V):
        return self.l1_ratio * self._alpha(V)

    def value(self, V, sizes=None):
        l1 = (self._l1_alpha(V) * V.abs().sum(dim=1)).sum()
        return l1 + super().value(V, sizes)

    def prox(self, V, step, metric=None, sizes=None):
        t1 = _times(self._l1_alpha(V).unsqueeze(1), step)
        if metric is not None:
            t1 = t1 / metric
        return super().prox(soft_threshold(V, t1), step, metric, sizes)

    def zero_thresholds(self, grad, sizes=None):
        # a coordinate is zero when its group is, or when |g_j| <= alpha l1_ratio
        group = self.group_thresholds(grad, sizes).unsqueeze(1)
        if self.l1_ratio == 0.0:
            return group.expand_as(grad)
        return torch.minimum(group, grad.abs() / self.l1_ratio)

    def group_thresholds(self, grad, sizes=None):
        r = self.l1_ratio
        w = self.group_weights(grad, sizes)
        if r == 0.0:
            return _row_norms(grad) / w
        # per group: smallest a with ||S_{a r}(g)||_2 <= a (1 - r) w; the left
        # side decreases and the right increases in a, so bisect on
        # [0, max|g| / r] (at the upper end the soft threshold is already 0).
        lo = torch.zeros(grad.shape[0], dtype=grad.dtype, device=grad.device)
        hi = grad.abs().amax(dim=1) / r
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            ok = (
                _row_norms(soft_threshold(grad, (mid * r).unsqueeze(1)))
                <= mid * (1 - r) * w
            )
            hi = torch.where(ok, mid, hi)
            lo = torch.where(ok, lo, mid)
        return hi

    def subdiff_distance(self, V, grad, sizes=None):
        t1 = self._l1_alpha(V).unsqueeze(1)
        t2 = self._group_alpha(V, sizes)
        norms = _row_norms(V)
        unit = V / torch.clamp(norms, min=torch.finfo(V.dtype).tiny).unsqueeze(1)
        u = grad + t2.unsqueeze(1) * unit
        nonzero = _row_norms(_l1_distance(u, V, t1))
        zero = torch.clamp(_row_norms(soft_threshold(grad, t1)) - t2, min=0)
        return torch.where(norms > 0, nonzero, zero)


class ElasticNet(Penalty):
    """Elementwise ``alpha * ||V||_1 + l2 * ||V||_2^2``.

    ShrinkNets penalise their switches by ``alpha ||beta||_1`` and the other
    weights by ``lambda_2 ||theta||_p^p`` with ``p`` in {1, 2}: both are this
    penalty with one strength pair per group (ALGORITHMS.md section 3.2).

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Strength of the l1 term: one for every group, or one per group.
    l2 : float or torch.Tensor of shape (n_groups,), default=0.0
        Strength of the squared l2 term (not halved): one for every group, or
        one per group.

    Notes
    -----
    The prox in a diagonal metric ``D`` is closed form: the ridge term changes
    the metric to ``D' = D + 2 eta l2`` and the centre to ``D z / D'``; the l1
    term is then a soft threshold at ``eta alpha / D'``.

    The ridge term has zero gradient at 0, so the zero threshold of a
    coordinate is ``|g_j|``, as for l1. The strengths for the fused kernels are
    ``(alpha, 0, l2)``. The optimality residual is that of l1 with ``g + 2 l2
    V`` in place of ``g``.
    """

    def __init__(self, alpha=1.0, l2=0.0):
        super().__init__(alpha)
        self.l2 = l2

    def _l2(self, V: Tensor) -> Tensor:
        return _as_group_tensor(self.l2, V)

    def value(self, V, sizes=None):
        l1 = self._alpha(V) * V.abs().sum(dim=1)
        return (l1 + self._l2(V) * (V * V).sum(dim=1)).sum()

    def prox(self, V, step, metric=None, sizes=None):
        ridge = _times(self._l2(V).unsqueeze(1), 2 * step)
        D = torch.ones_like(V) if metric is None else metric
        D_new = D + ridge
        center = D * V / D_new
        return soft_threshold(center, _times(self._alpha(V).unsqueeze(1), step) / D_new)

    def zero_thresholds(self, grad, sizes=None):
        return grad.abs()

    def prox_strengths(self, sizes):
        like = sizes.unsqueeze(1)
        alpha = self._alpha(like)
        return alpha, torch.zeros_like(alpha), self._l2(like).clone()

    def subdiff_distance(self, V, grad, sizes=None):
        smooth = grad + 2 * self._l2(V).unsqueeze(1) * V
        return _row_norms(_l1_distance(smooth, V, self._alpha(V).unsqueeze(1)))


# --------------------------------------------------------------------------
# Nonconvex penalties (ALGORITHMS.md sections 0.3 and 5)
# --------------------------------------------------------------------------
def hard_threshold(v: Tensor, tau: Tensor | float) -> Tensor:
    """Prox of ``tau * ||x||_0``: keep ``v_i`` where ``|v_i| > sqrt(2 tau)``.

    At ``|v_i| == sqrt(2 tau)`` both 0 and ``v_i`` are minimisers; 0 is returned.

    Parameters
    ----------
    v : torch.Tensor
        Values to threshold, of any shape.
    tau : float or torch.Tensor
        Non-negative strength of the l0 term (step times ``alpha``), a float or
        a tensor broadcastable to ``v``.

    Returns
    -------
    torch.Tensor
        ``v`` where ``|v| > sqrt(2 tau)``, else 0; of the shape and dtype of
        ``v``.
    """
    tau = torch.as_tensor(tau, dtype=v.dtype, device=v.device)
    return torch.where(v.abs() > torch.sqrt(2.0 * tau), v, torch.zeros_like(v))


def tl1_threshold(v: Tensor, tau: Tensor | float, a: float) -> Tensor:
    """Prox of ``tau * rho_a`` elementwise, ``rho_a(x) = (a + 1)|x| / (a + |x|)``.

    Zhang and Xin's thresholding: zero below ``t* = tau (a + 1) / a`` when
    ``tau <= a^2 / (2 (a + 1))``, else below ``sqrt(2 tau (a + 1)) - a / 2``;
    above it the root of a cubic in trigonometric form. At ``|v| == t*`` in
    the second regime both 0 and the nonzero root are minimisers; 0 is
    returned. The root is written as ``|v| - (4/3)(a + |v|) sin^2(phi / 6)``
    with ``phi = 2 asin(sqrt(e / 2))``, ``e = 27 tau a (a + 1) / (2 (a +
    |v|)^3)`` (the same number as the textbook ``arccos(1 - e)`` form, without
    its cancellation), and computed in float64: training steps give ``tau``
    around 1e-6, where float32 loses the shrinkage.

    Parameters
    ----------
    v : torch.Tensor
        Values to threshold, of any shape.
    tau : float or torch.Tensor
        Non-negative strength of the TL1 term (step times ``alpha``), a float
        or a tensor broadcastable to ``v``.
    a : float
        Shape parameter ``a > 0`` of ``rho_a``.

    Returns
    -------
    torch.Tensor
        The prox of every entry, of the shape and dtype of ``v``.
    """
    dtype = v.dtype
    v = v.to(torch.float64)
    tau = torch.as_tensor(tau, device=v.device).to(torch.float64)
    a = float(a)
    small = tau <= a * a / (2.0 * (a + 1.0))
    t_star = torch.where(
        small,
        tau * (a + 1.0) / a,
        torch.sqrt(2.0 * tau * (a + 1.0)) - a / 2.0,
    )
    mag = v.abs()
    e = 27.0 * tau * a * (a + 1.0) / (2.0 * (a + mag) ** 3)
    phi = 2.0 * torch.asin(torch.sqrt(torch.clamp(e / 2.0, 0.0, 1.0)))
    root = mag - (4.0 / 3.0) * (a + mag) * torch.sin(phi / 6.0) ** 2
    out = torch.where(mag > t_star, torch.sign(v) * root, torch.zeros_like(v))
    return out.to(dtype)


def half_threshold(v: Tensor, tau: Tensor | float) -> Tensor:
    """Prox of ``tau * |x|^(1/2)`` elementwise (Xu et al. 2012).

    Zero for ``|v| <= (54^(1/3) / 4) (2 tau)^(2/3)``; above, ``(2/3) v (1 +
    cos(2 pi / 3 - (2/3) phi))`` with ``phi = arccos((tau / 4) (|v| / 3)^(-3/2))``.
    At the threshold both 0 and the nonzero root are minimisers; 0 is returned.

    Parameters
    ----------
    v : torch.Tensor
        Values to threshold, of any shape.
    tau : float or torch.Tensor
        Non-negative strength of the ``|x|^(1/2)`` term (step times ``alpha``),
        a float or a tensor broadcastable to ``v``.

    Returns
    -------
    torch.Tensor
        The prox of every entry, of the shape and dtype of ``v``.
    """
    tau = torch.as_tensor(tau, dtype=v.dtype, device=v.device)
    lam = 2.0 * tau
    threshold = (54.0 ** (1.0 / 3.0) / 4.0) * lam ** (2.0 / 3.0)
    mag = torch.clamp(v.abs(), min=torch.finfo(v.dtype).tiny)
    phi = torch.arccos(torch.clamp(lam / 8.0 * (mag / 3.0) ** -1.5, -1.0, 1.0))
    root = (2.0 / 3.0) * v * (1.0 + torch.cos(2.0 * torch.pi / 3.0 - 2.0 * phi / 3.0))
    return torch.where(v.abs() > threshold, root, torch.zeros_like(v))


class _NoZeroThresholds:
    """Mixin of the penalties whose slope at zero is unbounded (l0, l1/2, group l0)."""

    def zero_thresholds(self, grad, sizes=None):
        """No zero thresholds: every zero coordinate or group is stationary.

        With ``alpha > 0`` the slope of the penalty at 0 is unbounded, so
        ``alpha`` cannot be read off the gradient; choose it on a grid instead.

        Parameters
        ----------
        grad : torch.Tensor of shape (n_groups, max_size)
            Gradient of the smooth loss in group layout; unused.
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            True number of coordinates of each group; unused.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no zero threshold: every zero coordinate "
            "is a stationary point of loss + penalty for any alpha > 0 (the "
            "penalty's slope at 0 is unbounded), so alpha cannot be read off the "
            "gradient; choose alpha on a grid instead"
        )


class _Elementwise(Penalty):
    """An elementwise nonconvex penalty ``alpha * sum_i rho(V_i)``.

    Its prox in a diagonal metric is the scalar prox with step ``step / D_i``:
    subclasses give ``rho`` and the scalar prox of ``tau * rho``.
    """

    def _rho(self, V: Tensor) -> Tensor:
        raise NotImplementedError

    def _scalar_prox(self, V: Tensor, tau: Tensor) -> Tensor:
        raise NotImplementedError

    def value(self, V, sizes=None):
        return (self._alpha(V) * self._rho(V).sum(dim=1)).sum()

    def prox(self, V, step, metric=None, sizes=None):
        tau = _times(self._alpha(V).unsqueeze(1), step)
        if metric is not None:
            tau = tau / metric
        return self._scalar_prox(V, tau)


class TransformedL1(_Elementwise):
    """Transformed l1 ``alpha * sum_i (a + 1)|V_i| / (a + |V_i|)`` (TL1).

    Interpolates between l0 (``a -> 0``) and l1 (``a -> infinity``).

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group.
    a : float > 0, default=1.0
        Shape parameter.

    Notes
    -----
    Write ``rho_a(x) = (a + 1)|x| / (a + |x|)``. The prox is
    :func:`tl1_threshold` at ``tau = step * alpha / D_i`` on coordinate ``i``
    (``D = 1`` without a metric), exact in a diagonal metric. The slope of
    ``rho_a`` at 0 is ``(a + 1) / a``, so the zero threshold of a coordinate
    is ``|g_j| a / (a + 1)``. The optimality residual of a coordinate is ``|g_j
    + alpha a (a + 1) sign(v_j) / (a + |v_j|)^2|`` where ``v_j != 0`` and
    ``max(|g_j| - alpha (a + 1) / a, 0)`` where ``v_j = 0``. There are no
    strengths for the fused kernels.
    """

    def __init__(self, alpha=1.0, a: float = 1.0):
        super().__init__(alpha)
        if not float(a) > 0:
            raise ValueError(f"a must be positive, got {a!r}")
        self.a = float(a)

    def _rho(self, V):
        return (self.a + 1.0) * V.abs() / (self.a + V.abs())

    def _scalar_prox(self, V, tau):
        return tl1_threshold(V, tau, self.a)

    def zero_thresholds(self, grad, sizes=None):
        # the slope of rho_a at 0 is (a + 1) / a
        return grad.abs() * self.a / (self.a + 1.0)

    def subdiff_distance(self, V, grad, sizes=None):
        alpha = self._alpha(V).unsqueeze(1)
        a = self.a
        slope = a * (a + 1.0) * torch.sign(V) / (a + V.abs()) ** 2
        dist = torch.where(
            V != 0,
            (grad + alpha * slope).abs(),
            torch.clamp(grad.abs() - alpha * (a + 1.0) / a, min=0),
        )
        return _row_norms(dist)


class L0(_NoZeroThresholds, _Elementwise):
    """``alpha * ||V||_0``, the number of nonzero entries; prox: hard threshold.

    Its prox keeps ``v_i`` iff ``|v_i| > sqrt(2 tau)`` (:func:`hard_threshold`)
    with ``tau = step * alpha / D_i`` on coordinate ``i`` (``D = 1`` without a
    metric), exact in a diagonal metric.

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Price per nonzero entry: one for every group, or one per group.

    Notes
    -----
    The limiting subdifferential of ``||.||_0`` is 0 off zero and the whole
    line at zero, so the optimality residual of a coordinate is ``|g_j|``
    where ``v_j != 0`` and 0 where ``v_j = 0``: every zero coordinate is
    stationary and there are no zero thresholds. There are no strengths for
    the fused kernels.
    """

    def _rho(self, V):
        return (V != 0).to(V.dtype)

    def _scalar_prox(self, V, tau):
        return hard_threshold(V, tau)

    def subdiff_distance(self, V, grad, sizes=None):
        # the limiting subdifferential of ||.||_0 is 0 off zero and R at zero
        return _row_norms(torch.where(V != 0, grad, torch.zeros_like(grad)))


class LHalf(_NoZeroThresholds, _Elementwise):
    """``alpha * sum_i |V_i|^(1/2)``; prox: half thresholding.

    Its prox is Xu et al.'s half thresholding :func:`half_threshold` at ``tau =
    step * alpha / D_i`` on coordinate ``i`` (``D = 1`` without a metric),
    exact in a diagonal metric.

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Weight of the sum of square roots: one for every group, or one per
        group.

    Notes
    -----
    The slope of ``|x|^(1/2)`` is unbounded at 0, so the optimality residual
    of a coordinate is ``|g_j + alpha sign(v_j) / (2 sqrt(|v_j|))|`` where
    ``v_j != 0`` and 0 where ``v_j = 0``: every zero coordinate is stationary
    and there are no zero thresholds. There are no strengths for the fused
    kernels.
    """

    def _rho(self, V):
        return torch.sqrt(V.abs())

    def _scalar_prox(self, V, tau):
        return half_threshold(V, tau)

    def subdiff_distance(self, V, grad, sizes=None):
        alpha = self._alpha(V).unsqueeze(1)
        mag = torch.clamp(V.abs(), min=torch.finfo(V.dtype).tiny)
        slope = 0.5 * torch.sign(V) / torch.sqrt(mag)
        dist = torch.where(V != 0, grad + alpha * slope, torch.zeros_like(grad))
        return _row_norms(dist)


def _identity_metric_only(penalty: Penalty, metric: Tensor | None) -> None:
    if metric is not None:
        raise NotImplementedError(
            f"{type(penalty).__name__} has no closed-form prox in a diagonal "
            "metric (its prox is not elementwise); train it with a prox in the "
            "identity metric (optimizer='sgd', or prox='decoupled' after an "
            "adaptive step)"
        )


class L1MinusL2(Penalty):
    """``alpha * sum_g (||V_g||_1 - l2_weight ||V_g||_2)`` per group (row).

    Lou and Yan's closed-form prox, applied to every row: with ``m =
    max_i |v_i|``, ``m > tau`` gives ``z (||z|| + l2_weight tau) / ||z||`` for
    ``z = S_tau(v)``; ``(1 - l2_weight) tau < m <= tau`` keeps only the largest
    entry, moved ``(1 - l2_weight) tau`` towards 0; otherwise 0. Identity metric
    only (``metric_prox`` is False).

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group.
    l2_weight : float in (0, 1], default=1.0
        Weight of the subtracted l2 norm.

    Notes
    -----
    Here ``tau = step * alpha``. Inside a live row the l2 part is smooth, so a
    coordinate is zero when stationary iff ``|g_j| <= alpha``: its zero
    threshold is ``|g_j|``. A zero row is stationary iff ``max_i |g_i| <=
    alpha (1 - l2_weight)``, which gives :meth:`alpha_max`. The optimality
    residual of a live row is the l1 one (see :class:`L1`) with ``g_g - alpha
    l2_weight V_g / ||V_g||_2`` in place of ``g_g``; that of a zero row is
    ``max(max_i |g_i| - alpha (1 - l2_weight), 0)``. There are no strengths
    for the fused kernels.
    """

    metric_prox = False

    def __init__(self, alpha=1.0, l2_weight: float = 1.0):
        super().__init__(alpha)
        if not 0.0 < float(l2_weight) <= 1.0:
            raise ValueError(f"l2_weight must be in (0, 1], got {l2_weight!r}")
        self.l2_weight = float(l2_weight)

    def value(self, V, sizes=None):
        rows = V.abs().sum(dim=1) - self.l2_weight * _row_norms(V)
        return (self._alpha(V) * rows).sum()

    def prox(self, V, step, metric=None, sizes=None):
        _identity_metric_only(self, metric)
        c = self.l2_weight
        tau = _times(self._alpha(V), step)  # shape (n_groups,)
        m, where = V.abs().max(dim=1)
        z = soft_threshold(V, tau.unsqueeze(1))
        z_norm = torch.clamp(_row_norms(z), min=torch.finfo(V.dtype).tiny)
        dense = z * ((z_norm + c * tau) / z_norm).unsqueeze(1)
        one = torch.zeros_like(V)
        top = torch.gather(V, 1, where.unsqueeze(1)).squeeze(1)
        one.scatter_(
            1,
            where.unsqueeze(1),
            (torch.sign(top) * (m + (c - 1.0) * tau)).unsqueeze(1),
        )
        out = torch.where((m > tau).unsqueeze(1), dense, one)
        return torch.where((m > (1.0 - c) * tau).unsqueeze(1), out, torch.zeros_like(V))

    def zero_thresholds(self, grad, sizes=None):
        # inside a live row a coordinate is zero when stationary iff |g_j| <=
        # alpha (the l1 part; the l2 part is smooth there)
        return grad.abs()

    def alpha_max(self, grad, sizes=None):
        """Smallest ``alpha`` for which ``V = 0`` is stationary given ``grad`` at 0.

        A zero row is stationary iff ``max_i |g_i| <= alpha (1 - l2_weight)``,
        so this is ``max |g| / (1 - l2_weight)``, not the maximum of
        :meth:`zero_thresholds` (those hold inside a live row). ``self.alpha``
        is ignored.

        Parameters
        ----------
        grad : torch.Tensor of shape (n_groups, max_size)
            Gradient of the smooth loss at ``V = 0``, as for
            :meth:`Penalty.alpha_max`.
        sizes : torch.Tensor of shape (n_groups,) or None, default=None
            Unused (no group weights).

        Returns
        -------
        torch.Tensor of shape ()
            ``max |g| / (1 - l2_weight)``, a 0-d tensor.

        Raises
        ------
        NotImplementedError
            If ``l2_weight == 1``: the penalty vanishes on 1-sparse rows, so its
            prox never zeroes a row whose gradient is nonzero.
        """
        # a zero row is stationary iff max_i |g_i| <= alpha (1 - l2_weight)
        if self.l2_weight == 1.0:
            raise NotImplementedError(
                "L1MinusL2 with l2_weight=1 has no alpha_max: its prox never "
                "zeroes a row whose gradient is nonzero (the penalty vanishes on "
                "1-sparse rows); choose alpha on a grid instead"
            )
        return grad.abs().amax() / (1.0 - self.l2_weight)

    def subdiff_distance(self, V, grad, sizes=None):
        alpha = self._alpha(V).unsqueeze(1)
        norms = _row_norms(V).unsqueeze(1)
        unit = V / torch.clamp(norms, min=torch.finfo(V.dtype).tiny)
        smooth = grad - alpha * self.l2_weight * unit
        in_row = _l1_distance(smooth, V, alpha)
        zero_row = torch.clamp(
            grad.abs().amax(dim=1) - alpha.squeeze(1) * (1.0 - self.l2_weight), min=0
        )
        return torch.where(norms.squeeze(1) > 0, _row_norms(in_row), zero_row)


class GroupL0(_NoZeroThresholds, _GroupNorms):
    """Group l0 ``alpha * sum_g w_g [V_g != 0]``: the number of live groups.

    Its prox keeps a row whole or zeroes it: keep iff ``sum_i D_i v_i^2 / 2 >
    step alpha w_g`` (``D = 1`` without a metric), exact in a diagonal metric.

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group.
    weights : {"ones", "sqrt_size"}, default="ones"
        Group weights ``w_g``: 1 or ``sqrt(|g|)``.

    Notes
    -----
    The limiting subdifferential of ``[x != 0]`` is 0 off zero and the whole
    space at zero, so the optimality residual of a group is ``||g_g||_2`` when
    ``V_g != 0`` and 0 when ``V_g = 0``: every zero group is stationary and
    there are no zero or group thresholds. There are no strengths for the
    fused kernels.
    """

    def __init__(self, alpha=1.0, weights: str = "ones"):
        super().__init__(alpha, weights)

    def value(self, V, sizes=None):
        live = (_row_norms(V) > 0).to(V.dtype)
        return (self._group_alpha(V, sizes) * live).sum()

    def prox(self, V, step, metric=None, sizes=None):
        t = _times(self._group_alpha(V, sizes), step)
        energy = V * V if metric is None else metric * V * V
        keep = 0.5 * energy.sum(dim=1) > t
        return torch.where(keep.unsqueeze(1), V, torch.zeros_like(V))

    group_thresholds = _NoZeroThresholds.zero_thresholds

    def subdiff_distance(self, V, grad, sizes=None):
        live = _row_norms(V) > 0
        return torch.where(
            live, _row_norms(grad), torch.zeros_like(live, dtype=V.dtype)
        )


class GroupTransformedL1(_GroupNorms):
    """TL1 on group norms: ``alpha * sum_g w_g rho_a(||V_g||_2)``.

    The prox keeps each row's direction and applies the scalar TL1 prox
    :func:`tl1_threshold` (strength ``step alpha w_g``) to its norm. Identity
    metric only (``metric_prox`` is False).

    Parameters
    ----------
    alpha : float or torch.Tensor of shape (n_groups,), default=1.0
        Penalty strength: one for every group, or one per group.
    a : float > 0, default=1.0
        Shape parameter of ``rho_a(r) = (a + 1) r / (a + r)``.
    weights : {"sqrt_size", "ones"}, default="sqrt_size"
        Group weights ``w_g``: ``sqrt(|g|)`` or 1.

    Notes
    -----
    The slope of ``rho_a`` at 0 is ``(a + 1) / a``, so a group is zero when
    stationary iff ``alpha >= ||g_g||_2 a / ((a + 1) w_g)``
    (:meth:`group_thresholds`), and every coordinate of the group has that
    zero threshold. The optimality residual of a group is ``||g_g + alpha w_g
    rho_a'(||V_g||_2) V_g / ||V_g||_2||_2`` with ``rho_a'(r) = a (a + 1) / (a
    + r)^2`` when ``V_g != 0``, and ``max(||g_g||_2 - alpha w_g (a + 1) / a,
    0)`` when ``V_g = 0``. There are no strengths for the fused kernels.
    """

    metric_prox = False

    def __init__(self, alpha=1.0, a: float = 1.0, weights: str = "sqrt_size"):
        super().__init__(alpha, weights)
        if not float(a) > 0:
            raise ValueError(f"a must be positive, got {a!r}")
        self.a = float(a)

    def value(self, V, sizes=None):
        r = _row_norms(V)
        rho = (self.a + 1.0) * r / (self.a + r)
        return (self._group_alpha(V, sizes) * rho).sum()

    def prox(self, V, step, metric=None, sizes=None):
        _identity_metric_only(self, metric)
        t = _times(self._group_alpha(V, sizes), step)
        norms = _row_norms(V)
        new = tl1_threshold(norms, t, self.a)
        scale = new / torch.clamp(norms, min=torch.finfo(V.dtype).tiny)
        return V * scale.unsqueeze(1)

    def _slope(self, norms):
        a = self.a
        return a * (a + 1.0) / (a + norms) ** 2


class RowwiseComposite(Penalty):
    """One penalty on some groups (rows) and another on the rest.

    ShrinkNets with a nonconvex switch penalty use it: ``first`` on the
    switch rows, ``second`` (the weights' ``alpha2 ||W||_p^p``) on the others.
    Each part's per-group strengths cover its own rows only.

    Parameters
    ----------
    first : Penalty
        The penalty on the rows where ``first_rows`` is True.
    second : Penalty
        The penalty on the other rows.
    first_rows : torch.Tensor of shape (n_groups,), dtype=bool
        The rows ``first`` acts on.

    Notes
    -----
    Every method splits the rows of its tensor arguments (``V``, ``grad``,
    ``metric``, ``sizes``) between the two parts, calls the part's method on
    its own rows and joins the results in the original row order; the value
    is the sum of the parts' values. ``alpha`` is None (the strengths live in
    the parts), its prox takes a metric iff both parts' do, and there are no
    strengths for the fused kernels. :meth:`select` selects the kept rows of
    each part.
    """

    def __init__(self, first: Penalty, second: Penalty, first_rows: Tensor):
        self.first, self.second = first, second
        self.first_rows = first_rows.to(torch.bool)
        self.metric_prox = first.metric_prox and second.metric_prox
        self.alpha = None
        # row indices, built once: boolean indexing would synchronise with the
        # device on every step
        self._rows = (
            torch.nonzero(self.first_rows).flatten(),
            torch.nonzero(~self.first_rows).flatten(),
        )

    def _split_rows(self, A: Tensor | None):
        if A is None:
            return None, None
        return tuple(A.index_select(0, r.to(A.device)) for r in self._rows)

    def _join(self, like: Tensor, a: Tensor, b: Tensor) -> Tensor:
        out = like.new_empty((like.shape[0], *a.shape[1:]))
        first, second = (r.to(like.device) for r in self._rows)
        out.index_copy_(0, first, a)
        out.index_copy_(0, second, b)
        return out

    def value(self, V, sizes=None):
        (V1, V2), (s1, s2) = self._split_rows(V), self._split_rows(sizes)
        return self.first.value(V1, s1) + self.second.value(V2, s2)

    def prox(self, V, step, metric=None, sizes=None):
        (V1, V2), (s1, s2) = self._split_rows(V), self._split_rows(sizes)
        D1, D2 = self._split_rows(metric)
        return self._join(
            V,
            self.first.prox(V1, step, metric=D1, sizes=s1),
            self.second.prox(V2, step, metric=D2, sizes=s2),
        )

    def zero_thresholds(self, grad, sizes=None):
        (G1, G2), (s1, s2) = self._split_rows(grad), self._split_rows(sizes)
        return self._join(
            grad,
            self.first.zero_thresholds(G1, s1),
            self.second.zero_thresholds(G2, s2),
        )

    def subdiff_distance(self, V, grad, sizes=None):
        (V1, V2), (G1, G2) = self._split_rows(V), self._split_rows(grad)
        s1, s2 = self._split_rows(sizes)
        return self._join(
            V[:, 0],
            self.first.subdiff_distance(V1, G1, s1),
            self.second.subdiff_distance(V2, G2, s2),
        )

    @classmethod
    def stack(cls, penalties):
        return RowwiseComposite(
            type(penalties[0].first).stack([p.first for p in penalties]),
            type(penalties[0].second).stack([p.second for p in penalties]),
            torch.cat([p.first_rows for p in penalties]),
        )

    def select(self, keep):
        mask = self.first_rows
        keep = keep.to(device=mask.device, dtype=torch.bool)
        return RowwiseComposite(
            self.first.select(keep[mask]),
            self.second.select(keep[~mask]),
            mask[keep],
        )

    def __repr__(self) -> str:
        return f"RowwiseComposite({self.first!r}, {self.second!r})"


PENALTIES = {
    "l1": L1,
    "group_lasso": GroupLasso,
    "sparse_group_lasso": SparseGroupLasso,
    "tl1": TransformedL1,
    "l0": L0,
    "l_half": LHalf,
    "l1_l2": L1MinusL2,
    "group_l0": GroupL0,
    "group_tl1": GroupTransformedL1,
}


def make_penalty(
    name: str,
    alpha: Tensor | float,
    l1_ratio: float = 0.5,
    tl1_a: float = 1.0,
    l1_l2_weight: float = 1.0,
) -> Penalty:
    """Build a penalty from the flat estimator parameters.

    Parameters
    ----------
    name : str
        Key of the penalty in ``PENALTIES``: ``"l1"``, ``"group_lasso"``,
        ``"sparse_group_lasso"``, ``"tl1"``, ``"l0"``, ``"l_half"``,
        ``"l1_l2"``, ``"group_l0"`` or ``"group_tl1"``.
    alpha : float or torch.Tensor of shape (n_groups,)
        Penalty strength: one for every group, or one per group.
    l1_ratio : float, default=0.5
        Share of the l1 term of ``"sparse_group_lasso"``; ignored otherwise.
    tl1_a : float, default=1.0
        Shape parameter ``a`` of ``"tl1"`` and ``"group_tl1"``; ignored
        otherwise.
    l1_l2_weight : float, default=1.0
        Weight of the subtracted l2 norm of ``"l1_l2"``; ignored otherwise.

    Returns
    -------
    Penalty
        A new penalty of the class ``PENALTIES[name]``, with that class's
        defaults for everything else (e.g. its group weights).

    Raises
    ------
    ValueError
        If ``name`` is not a key of ``PENALTIES``, or a parameter the penalty
        uses is out of its range.
    """
    if name not in PENALTIES:
        raise ValueError(f"penalty must be one of {sorted(PENALTIES)}, got {name!r}")
    if name == "sparse_group_lasso":
        return SparseGroupLasso(alpha, l1_ratio)
    if name in ("tl1", "group_tl1"):
        return PENALTIES[name](alpha, a=tl1_a)
    if name == "l1_l2":
        return L1MinusL2(alpha, l2_weight=l1_l2_weight)
    return PENALTIES[name](alpha)
