"""Fused CPU kernels (numba) for the training step.

On the CPU a small network is bound by per-operation overhead, not arithmetic:
a step made of a hundred small torch operations costs far more than a few
passes of compiled code. These kernels make a step three calls:

* :func:`mlp_loss_and_grad`: forward pass, loss and backward pass (matrix
  products through BLAS), the maths of ``SparseMLP.loss_and_grad``;
* :func:`optimizer_step`: SGD, Adamax or RMSprop, the maths of
  ``FlatOptimizer`` (Adam runs as ``torch._fused_adam_``);
* :func:`prox_l1_group`: the prox of every group, for penalties of the form
  "elementwise l1 + weighted group l2 + ridge"
  (:meth:`~skgroupsparse.penalties.Penalty.prox_strengths`), in the
  optimizer's metric.

Two differences from the tensor versions, both in favour of exactness: the prox
is computed in float64 whatever the parameter dtype, and the Newton iteration of
the weighted group prox runs until it converges instead of a fixed count.

The tensor versions stay the reference (and the path on CUDA); the tests check
these kernels against them.
"""

from __future__ import annotations

import math

import numpy as np
from numba.typed import List

from skgroupsparse._jit import kernel

__all__ = [
    "mlp_loss_and_grad",
    "workspace_size",
    "optimizer_step",
    "prox_l1_group",
    "contiguous_starts",
    "group_plan",
    "switch_effective",
    "switch_chain",
    "add_l1_subgradient",
    "sign_variance_update",
]

# LLVM may reassociate sums (so that reductions vectorise), contract to fused
# multiply-adds and divide by multiplying with a reciprocal: each changes
# results by round-off only. NaN and infinity semantics are kept (no "nnan",
# "ninf"): a diverging fit must still show as non-finite.
_FAST = {"reassoc", "contract", "arcp", "nsz"}


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def optimizer_step(
    code, theta, grad, first, second, lr, momentum, nesterov, b1, b2, eps, t
):  # pragma: no cover - compiled
    """SGD (code 0), Adamax (2) or RMSprop (3) on flat arrays, in place.

    torch.optim's maths. Adam (code 1) is not here: it runs as torch's own fused
    kernel, which is vectorised.
    """
    n = theta.shape[0]
    if code == 0:
        if momentum == 0.0:
            for i in range(n):
                theta[i] -= lr * grad[i]
        else:
            for i in range(n):
                buf = momentum * first[i] + grad[i]
                first[i] = buf
                direction = grad[i] + momentum * buf if nesterov else buf
                theta[i] -= lr * direction
    elif code == 2:
        bc1 = 1.0 - b1**t
        for i in range(n):
            g = grad[i]
            m = first[i] + (1.0 - b1) * (g - first[i])
            u = max(b2 * second[i], abs(g) + eps)
            first[i] = m
            second[i] = u
            theta[i] -= lr / bc1 * m / u
    else:
        for i in range(n):
            g = grad[i]
            v = b2 * second[i] + (1.0 - b2) * g * g
            second[i] = v
            theta[i] -= lr * g / (math.sqrt(v) + eps)


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def _weighted_group_prox(z, d, n, tau, r_start, tol):  # pragma: no cover - compiled
    """In place: ``argmin_x tau ||x|| + 1/2 sum d_i (x_i - z_i)^2`` on ``z[:n]``.

    Returns ``r = ||x||``. ``r_start > 0`` is a starting guess (the previous
    step's ``r`` of this group): Newton on the concave increasing ``h`` lands
    left of the root after one step from anywhere, then climbs monotonically,
    so any positive start converges; a good one saves iterations. Iterates
    stop when a step changes ``r`` by less than ``tol`` relative (Newton is then
    quadratic: the error left is of order ``tol ** 2``).
    """
    sum_a2 = 0.0
    d_max = 0.0
    weighted = 0.0
    for i in range(n):
        a = d[i] * z[i]
        sum_a2 += a * a
        weighted += a * a * d[i]
        if a != 0.0 and d[i] > d_max:
            d_max = d[i]
    norm_a = math.sqrt(sum_a2)
    if norm_a <= tau:
        for i in range(n):
            z[i] = 0.0
        return 0.0
    excess = norm_a - tau
    lower = excess / d_max
    r = r_start if r_start > 0.0 else excess / (weighted / sum_a2)
    for _ in range(100):
        phi = 0.0
        slope = 0.0
        for i in range(n):
            a = d[i] * z[i]
            inv = 1.0 / (d[i] * r + tau)
            q = a * a * inv * inv
            phi += q
            slope += q * d[i] * inv
        new_r = max(r + phi * (math.sqrt(phi) - 1.0) / slope, lower)
        done = abs(new_r - r) <= tol * new_r
        r = new_r
        if done:
            break
    for i in range(n):
        z[i] = d[i] * z[i] * r / (d[i] * r + tau)
    return r


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def _prox_one_group(
    z, d, n, code, inv_bc2, eps, c1, tau2, c3, r_start, tol
):  # pragma: no cover - compiled
    """The prox of one group, in place on ``z[:n]``; returns the new ``r``.

    ``d[:n]`` holds the optimizer's second-moment state (``code > 0``) and is
    overwritten by the metric ``D``; see :func:`prox_l1_group`.
    """
    if code == 0:
        for j in range(n):
            d[j] = 1.0
    elif code == 1:
        for j in range(n):
            d[j] = math.sqrt(d[j] * inv_bc2) + eps
    elif code == 3:
        for j in range(n):
            d[j] = math.sqrt(d[j]) + eps
    if c3 > 0.0:
        for j in range(n):
            z[j] *= d[j] / (d[j] + c3)
            d[j] += c3
    if c1 > 0.0:
        for j in range(n):
            tau1 = c1 / d[j]
            z[j] -= min(max(z[j], -tau1), tau1)
    if tau2 > 0.0:
        if code > 0 or c3 > 0.0:
            return _weighted_group_prox(z, d, n, tau2, r_start, tol)
        norm = 0.0
        for j in range(n):
            norm += z[j] * z[j]
        norm = math.sqrt(norm)
        scale = max(0.0, 1.0 - tau2 / norm) if norm > 0.0 else 0.0
        for j in range(n):
            z[j] *= scale
    return r_start


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def _metric_entry(v, code, inv_bc2, eps):  # pragma: no cover - compiled
    """One entry of the metric ``D`` from the second-moment state ``v``."""
    if code == 1:
        return math.sqrt(v * inv_bc2) + eps
    if code == 3:
        return math.sqrt(v) + eps
    if code == 2:
        return v
    return 1.0


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def _shrink(z, d, c1, c3):  # pragma: no cover - compiled
    """The ridge part (strength ``c3 = 2 step t3``, folded into the centre and
    the metric) and then the l1 part (``c1 = step t1``, a soft threshold at
    ``c1 / d``) of one coordinate; returns the new centre and metric. A part
    of strength zero leaves them exactly as they are (with ``arcp``,
    ``d / (d + 0)`` may round below 1)."""
    if c3 > 0.0:
        z *= d / (d + c3)
        d += c3
    if c1 > 0.0:
        tau1 = c1 / d
        z -= min(max(z, -tau1), tau1)
    return z, d


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def _reciprocal(x, fast):  # pragma: no cover - compiled
    """``1 / x``; with ``fast``, a float32 reciprocal refined in float64."""
    if fast:
        y = np.float64(np.float32(1.0) / np.float32(x))
        return y * (2.0 - x * y)
    return 1.0 / x


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def _prox_block(
    theta,
    second,
    g0,
    k,
    n,
    p0,
    stride,
    t1,
    t2,
    t3,
    step,
    code,
    inv_bc2,
    eps,
    ab,
    db,
    r_state,
    tol,
    fast,
):  # pragma: no cover - compiled
    """:func:`_prox_one_group` on the ``k`` columns of a row-major block at once.

    Column ``c`` is group ``g0 + c``, at ``theta[p0 + j * stride + c]`` for
    ``j < n``. Every pass runs along the rows, so memory is read contiguously
    and each loop vectorises across the columns. In the identity metric two
    passes do (the column norms, then the scaling); in a metric the first pass
    stores ``a = D z`` and ``D`` in the float64 buffers ``ab`` and ``db`` (at
    least ``n * k`` entries), and the Newton iteration of
    :func:`_weighted_group_prox` runs on all columns together, one pass per
    iteration, each column stopping (its ``r`` frozen) once it has converged.
    With ``fast`` (float32 parameters) the reciprocals of the Newton passes
    and of the result are taken in float32 and refined by one Newton step in
    float64 (relative error about 1e-14, where float32 stores 6e-8): a float64
    division costs several times more, and these passes are bound by them.
    A column without a group term is written back as its elementwise prox
    (exactly ``z`` when it has no penalty at all), never through ``D z / D``:
    ``ab`` holds ``z`` itself for it.
    """
    c1 = np.empty(k)
    tau = np.empty(k)
    c3 = np.empty(k)
    in_metric = code > 0
    elementwise = False  # whether an l1 or a ridge part moves z first
    for c in range(k):
        c1[c] = step * t1[g0 + c]
        tau[c] = step * t2[g0 + c]
        c3[c] = 2.0 * step * t3[g0 + c]
        if c3[c] > 0.0:
            in_metric = True
        if c1[c] > 0.0 or c3[c] > 0.0:
            elementwise = True
    sum_a2 = np.zeros(k)
    if np.all(tau <= 0.0):  # no group term: one elementwise pass, if any
        if not elementwise:
            return
        for j in range(n):
            base = p0 + j * stride
            for c in range(k):
                d = _metric_entry(np.float64(second[base + c]), code, inv_bc2, eps)
                z = _shrink(np.float64(theta[base + c]), d, c1[c], c3[c])[0]
                theta[base + c] = z
        return
    if not in_metric:  # the plain group prox: the norms, then a scale
        for j in range(n):
            base = p0 + j * stride
            for c in range(k):
                z = np.float64(theta[base + c])
                z -= min(max(z, -c1[c]), c1[c])
                sum_a2[c] += z * z
        scale = np.ones(k)
        for c in range(k):
            if tau[c] > 0.0:
                norm = math.sqrt(sum_a2[c])
                scale[c] = max(0.0, 1.0 - tau[c] / norm) if norm > 0.0 else 0.0
        for j in range(n):
            base = p0 + j * stride
            for c in range(k):
                z = np.float64(theta[base + c])
                z -= min(max(z, -c1[c]), c1[c])
                theta[base + c] = z * scale[c]
        return
    weighted = np.zeros(k)
    d_max = np.zeros(k)
    for j in range(n):
        base = p0 + j * stride
        row = j * k
        for c in range(k):
            z = np.float64(theta[base + c])
            d = _metric_entry(np.float64(second[base + c]), code, inv_bc2, eps)
            if elementwise:
                z, d = _shrink(z, d, c1[c], c3[c])
            # a column without a group term keeps z itself: it is the prox
            a = d * z if tau[c] > 0.0 else z
            ab[row + c] = a
            db[row + c] = d
            sum_a2[c] += a * a
            weighted[c] += a * a * d
            if a != 0.0:
                d_max[c] = max(d_max[c], d)
    # per column: zero, no group term, or the Newton set-up
    r = np.zeros(k)
    lower = np.zeros(k)
    active = np.zeros(k, np.bool_)
    n_active = 0
    for c in range(k):
        if tau[c] <= 0.0:
            continue
        norm_a = math.sqrt(sum_a2[c])
        if norm_a <= tau[c]:
            r_state[g0 + c] = 0.0
            continue
        excess = norm_a - tau[c]
        lower[c] = excess / d_max[c]
        start = r_state[g0 + c]
        r[c] = start if start > 0.0 else excess / (weighted[c] / sum_a2[c])
        active[c] = True
        n_active += 1
    phi = np.zeros(k)
    slope = np.zeros(k)
    last = np.zeros(k)  # each column's previous Newton step
    for _ in range(100):
        if n_active == 0:
            break
        phi[:] = 0.0
        slope[:] = 0.0
        for j in range(n):
            row = j * k
            for c in range(k):
                a = ab[row + c]
                d = db[row + c]
                inv = _reciprocal(d * r[c] + tau[c], fast)
                q = a * a * inv * inv
                phi[c] += q
                slope[c] += q * d * inv
        for c in range(k):
            if active[c]:
                new_r = max(
                    r[c] + phi[c] * (math.sqrt(phi[c]) - 1.0) / slope[c], lower[c]
                )
                step_c = abs(new_r - r[c])
                # Newton's error after this step is about M step^2, with M
                # read off the last two steps (step = M last^2): stop when that
                # is below tol too, saving the pass that would only confirm it
                if step_c <= tol * new_r or (
                    last[c] > 0.0
                    and step_c * step_c * step_c <= tol * new_r * last[c] * last[c]
                    and step_c < last[c]
                ):
                    active[c] = False
                    n_active -= 1
                last[c] = step_c
                r[c] = new_r
    # x = D z r / (D r + tau) on a live group, 0 on a dead one, z without tau
    factor = np.zeros(k)
    for c in range(k):
        if tau[c] <= 0.0:
            factor[c] = -1.0
        elif r[c] > 0.0:
            r_state[g0 + c] = r[c]
            factor[c] = r[c]
    for j in range(n):
        base = p0 + j * stride
        row = j * k
        for c in range(k):
            a = ab[row + c]
            d = db[row + c]
            if factor[c] < 0.0:
                x = a
            else:
                x = a * factor[c] * _reciprocal(d * factor[c] + tau[c], fast)
            theta[base + c] = x


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def prox_l1_group(
    theta,
    index,
    sizes,
    first,
    blocks,
    t1,
    t2,
    t3,
    step,
    second,
    code,
    bc2,
    eps,
    z,
    d,
    zt,
    dt,
    r_state,
    tol,
):  # pragma: no cover - compiled
    """Prox of ``step * sum_g (t1_g ||x_g||_1 + t2_g ||x_g||_2 + t3_g ||x_g||^2)``.

    In place on ``theta``.

    Row ``g`` of ``index`` lists group ``g``'s flat positions in its first
    ``sizes[g]`` entries. Where the groups lie is planned once by
    :func:`group_plan`: ``first[g]`` is the group's first position when its
    positions are consecutive (it is then read directly), -1 when they are
    read through ``index``, and -2 when the group is a column of a row-major
    block (a row of ``blocks``: first group, columns ``k``, rows ``n``, first
    position, row stride). A block, e.g. the outgoing groups of one layer, is
    solved by :func:`_prox_block`, all its columns at once in passes along the
    rows, with the float64 buffers ``zt`` and ``dt`` (``n * k`` entries at
    least) holding ``D z`` and ``D`` of its coordinates.
    With ``code > 0`` the prox is taken in the diagonal metric ``D`` of the
    optimizer, computed from its second-moment state ``second``: code 1 (Adam)
    ``sqrt(second / bc2) + eps``, 2 (Adamax) ``second``, 3 (RMSprop)
    ``sqrt(second) + eps``; code 0 is the identity. In the metric the l1 part
    takes per-coordinate steps and the l2 part the weighted group prox.
    The ridge part ``t3`` is folded in first, exactly: it turns the metric into
    ``D + 2 step t3`` and the centre into ``D z / (D + 2 step t3)``.
    ``z`` and ``d`` are float64 work buffers of the row width; ``r_state``
    (one float64 per group) keeps each group's last norm as the next start of
    the weighted prox's Newton iteration, which stops at relative step ``tol``
    (1e-15, float64 round-off, for float64 parameters; 1e-12 for float32 ones,
    which leaves an error of order 1e-24, far below what float32 stores). In a
    block a column also stops once the error that Newton's quadratic
    convergence predicts after its step (``step^3 / last_step^2``, with a
    shrinking step) is below ``tol`` relative: that saves the pass that would
    only confirm convergence.
    """
    inv_bc2 = 1.0 / bc2
    fast = theta.itemsize == 4  # float32 parameters
    for b in range(blocks.shape[0]):
        g0, k, n, p0, stride = (
            blocks[b, 0],
            blocks[b, 1],
            blocks[b, 2],
            blocks[b, 3],
            blocks[b, 4],
        )
        _prox_block(
            theta, second, g0, k, n, p0, stride, t1, t2, t3, step, code, inv_bc2,
            eps, zt, dt, r_state, tol, fast,
        )  # fmt: skip
    for g in range(index.shape[0]):
        n = sizes[g]
        c0 = first[g]
        if c0 == -2:
            continue
        # gather, then compute on the contiguous buffers: each loop vectorises
        # (a group stored contiguously, ``first[g] >= 0``, is read directly)
        if c0 >= 0:
            for j in range(n):
                z[j] = theta[c0 + j]
                d[j] = second[c0 + j]
        else:
            for j in range(n):
                z[j] = theta[index[g, j]]
                d[j] = second[index[g, j]]
        r_state[g] = _prox_one_group(
            z,
            d,
            n,
            code,
            inv_bc2,
            eps,
            step * t1[g],
            step * t2[g],
            2.0 * step * t3[g],
            r_state[g],
            tol,
        )
        if c0 >= 0:
            for j in range(n):
                theta[c0 + j] = z[j]
        else:
            for j in range(n):
                theta[index[g, j]] = z[j]


def contiguous_starts(index: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per group, its first flat position if it is stored contiguously, else -1."""
    starts = np.full(index.shape[0], -1, dtype=np.int64)
    if index.shape[1] == 0:
        return starts
    offsets = np.arange(index.shape[1])
    valid = offsets[None, :] < sizes[:, None]
    contiguous = np.all(~valid | (index == index[:, :1] + offsets[None, :]), axis=1)
    starts[contiguous] = index[contiguous, 0]
    return starts


def group_plan(index: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the groups lie, for :func:`prox_l1_group`.

    Groups of at least two coordinates at one stride ``s > 1`` whose first
    positions follow each other (``p, p + 1, ..., p + k - 1``, all of one size
    ``n``, ``k <= s``) are the ``k`` columns of a row-major ``n x k`` block with
    row stride ``s``: the outgoing groups of a layer are the columns of its
    weight matrix.

    Parameters
    ----------
    index : ndarray of shape (n_groups, max_size)
        The group map's padded index matrix.
    sizes : ndarray of shape (n_groups,)
        True number of coordinates per group.

    Returns
    -------
    first : ndarray of int64, shape (n_groups,)
        The group's first position when its positions are consecutive; -1
        when it is read through ``index``; -2 when it lies in a block.
    blocks : ndarray of int64, shape (n_blocks, 5)
        One row per block: first group, columns ``k``, rows ``n``, first flat
        position, row stride.
    """
    first = contiguous_starts(index, sizes)
    n_groups = index.shape[0]
    blocks = []
    if n_groups and index.shape[1] > 1:
        start = index[:, 0]
        stride = index[:, 1] - start
        offsets = np.arange(index.shape[1])
        valid = offsets[None, :] < sizes[:, None]
        strided = (
            (sizes > 1)
            & (stride > 1)
            & np.all(
                ~valid | (index == start[:, None] + offsets[None, :] * stride[:, None]),
                axis=1,
            )
        )
        g = 0
        while g < n_groups:
            if not strided[g]:
                g += 1
                continue
            k = 1
            while (
                g + k < n_groups
                and k < stride[g]
                and strided[g + k]
                and stride[g + k] == stride[g]
                and sizes[g + k] == sizes[g]
                and start[g + k] == start[g] + k
            ):
                k += 1
            blocks.append((g, k, sizes[g], start[g], stride[g]))
            first[g : g + k] = -2
            g += k
    return first, np.array(blocks, dtype=np.int64).reshape(-1, 5)


# the codes below are those of the registries: ``network.ACTIVATIONS[name].code``
# (0 identity, 1 relu, 2 leaky relu, 3 tanh, 4 logistic), the loss's position
# in ``network.LOSSES`` (0 squared, 1 softmax, 2 logistic) and
# ``training.optimizers.OPTIMIZER_CODES`` (0 sgd, 1 adam, 2 adamax, 3 rmsprop)


@kernel(nogil=True, error_model="numpy")
def _activate(v, act, slope):  # pragma: no cover - compiled
    if act == 1:
        return v if v > 0.0 else 0.0
    if act == 2:
        return v if v > 0.0 else slope * v
    if act == 3:
        return math.tanh(v)
    if act == 4:
        return 1.0 / (1.0 + math.exp(-v))
    return v


@kernel(nogil=True, error_model="numpy")
def _derivative(h, act, slope):  # pragma: no cover - compiled
    """The activation's derivative, written from its output ``h``."""
    if act == 1:
        return 1.0 if h > 0.0 else 0.0
    if act == 2:
        return 1.0 if h > 0.0 else slope
    if act == 3:
        return 1.0 - h * h
    if act == 4:
        return h * (1.0 - h)
    return 1.0


@kernel(nogil=True, error_model="numpy")
def mlp_loss_and_grad(
    theta, grad, X, Y, sizes, act, loss, slope, work
):  # pragma: no cover - compiled
    """Mean loss of the MLP on ``(X, Y)``; its gradient is written into ``grad``.

    The same maths as :meth:`skgroupsparse.network.SparseMLP.loss_and_grad`
    (flat layout of :class:`~skgroupsparse.groups.FlatLayout`; ``Y`` a float
    matrix, one-hot rows for the softmax loss, with one more column of sample
    weights for the weighted mean): matrix products through BLAS, everything
    else in one pass each, and no per-operation overhead.

    ``work`` (of the dtype of ``theta``) holds the activations and the
    back-propagated errors when it has :func:`workspace_size` entries for this
    batch (the numba engine keeps one between steps, so that no step allocates and
    first-touches megabytes of fresh memory); otherwise they are allocated.
    """
    n_layers = sizes.shape[0] - 1
    n = X.shape[0]
    widest = 0
    units = 0
    for l in range(1, n_layers + 1):
        widest = max(widest, sizes[l])
        units += sizes[l]
    if work.shape[0] < n * (units + 2 * widest):
        work = np.empty(n * (units + 2 * widest), theta.dtype)
    offsets = np.empty(n_layers, np.int64)
    hs = List()
    hs.append(np.ascontiguousarray(X))
    off = 0
    pos = 0
    for l in range(n_layers):
        n_out = sizes[l + 1]
        n_in = sizes[l]
        offsets[l] = off
        W = theta[off : off + n_out * n_in].reshape((n_out, n_in))
        b = theta[off + n_out * n_in : off + n_out * n_in + n_out]
        z = work[pos : pos + n * n_out].reshape((n, n_out))
        pos += n * n_out
        np.dot(hs[l], W.T, z)
        _add_bias_activate(z, b, act if l < n_layers - 1 else 0, slope)
        hs.append(z)
        off += n_out * n_in + n_out
    out = hs[n_layers]
    n_outputs = out.shape[1]
    # the errors alternate between two buffers of the widest layer
    spare = (
        work[pos : pos + n * widest],
        work[pos + n * widest : pos + 2 * n * widest],
    )
    delta = spare[0][: n * n_outputs].reshape((n, n_outputs))
    flip = 1
    # a column of Y past the outputs holds each row's sample weight: the
    # loss is then the weighted mean; unweighted, every row weighs 1 (the
    # products by 1.0 are exact: the same numbers as without the weights)
    weighted = Y.shape[1] > n_outputs
    inv_n = 1.0 / n
    if weighted:
        total_weight = 0.0
        for r in range(n):
            total_weight += Y[r, n_outputs]
        inv_n = 1.0 / total_weight if total_weight > 0 else 0.0
    value = 0.0
    for r in range(n):
        w = Y[r, n_outputs] if weighted else 1.0
        scale = w * inv_n
        if loss == 0:
            for c in range(n_outputs):
                diff = out[r, c] - Y[r, c]
                value += w * (0.5 * diff * diff)
                delta[r, c] = diff * scale
        elif loss == 1:
            top = out[r, 0]
            for c in range(1, n_outputs):
                top = max(top, out[r, c])
            total = 0.0
            for c in range(n_outputs):
                total += math.exp(out[r, c] - top)
            value += w * (math.log(total) + top)
            for c in range(n_outputs):
                value -= w * (Y[r, c] * out[r, c])
                delta[r, c] = (math.exp(out[r, c] - top) / total - Y[r, c]) * scale
        else:
            for c in range(n_outputs):
                v = out[r, c]
                value += w * (max(v, 0.0) - v * Y[r, c] + math.log1p(math.exp(-abs(v))))
                delta[r, c] = (1.0 / (1.0 + math.exp(-v)) - Y[r, c]) * scale
    for l in range(n_layers - 1, -1, -1):
        n_out = sizes[l + 1]
        n_in = sizes[l]
        off = offsets[l]
        # the weight gradient straight into its place in ``grad``
        np.dot(delta.T, hs[l], grad[off : off + n_out * n_in].reshape((n_out, n_in)))
        bias = off + n_out * n_in
        _column_sums(delta, grad[bias : bias + n_out])
        if l > 0:
            W = theta[off : off + n_out * n_in].reshape((n_out, n_in))
            previous = spare[flip][: n * n_in].reshape((n, n_in))
            np.dot(delta, W, previous)
            delta = previous
            flip = 1 - flip
            _times_derivative(delta, hs[l], act, slope)
    return value * inv_n


@kernel(nogil=True, error_model="numpy")
def _column_sums(delta, out):  # pragma: no cover - compiled
    """``out[c] = sum_r delta[r, c]``, summed in row order in a local buffer
    (which, unlike ``out``, cannot alias ``delta``: the loop vectorises)."""
    n, m = delta.shape
    acc = np.zeros(m, delta.dtype)
    for r in range(n):
        row = delta[r]
        for c in range(m):
            acc[c] += row[c]
    for c in range(m):
        out[c] = acc[c]


@kernel(nogil=True, error_model="numpy")
def _add_bias_activate(z, b, act, slope):  # pragma: no cover - compiled
    """``z = activation(z + b)`` in place, row by row (``act`` 0: identity).

    One loop per activation, so that each vectorises (a branch on ``act``
    inside the loop would keep it scalar).
    """
    n, m = z.shape
    if act == 1:
        for r in range(n):
            for c in range(m):
                v = z[r, c] + b[c]
                z[r, c] = v if v > 0.0 else 0.0
    elif act == 2:
        for r in range(n):
            for c in range(m):
                v = z[r, c] + b[c]
                z[r, c] = v if v > 0.0 else slope * v
    elif act == 0:
        for r in range(n):
            for c in range(m):
                z[r, c] = z[r, c] + b[c]
    else:
        for r in range(n):
            for c in range(m):
                z[r, c] = _activate(z[r, c] + b[c], act, slope)


@kernel(nogil=True, error_model="numpy")
def _times_derivative(delta, h, act, slope):  # pragma: no cover - compiled
    """``delta *= activation'`` in place, written from the activation's output
    ``h``; one loop per activation (see :func:`_add_bias_activate`)."""
    n, m = delta.shape
    if act == 1:
        for r in range(n):
            for c in range(m):
                delta[r, c] *= 1.0 if h[r, c] > 0.0 else 0.0
    elif act == 2:
        for r in range(n):
            for c in range(m):
                delta[r, c] *= 1.0 if h[r, c] > 0.0 else slope
    elif act != 0:
        for r in range(n):
            for c in range(m):
                delta[r, c] *= _derivative(h[r, c], act, slope)


def workspace_size(layer_sizes, batch_size: int) -> int:
    """Entries of the ``work`` buffer of :func:`mlp_loss_and_grad` for a batch.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_0, ..., n_L)``, as :class:`~skgroupsparse.groups.FlatLayout`.
    batch_size : int
        The largest batch the buffer serves.

    Returns
    -------
    int
        ``batch_size * (n_1 + ... + n_L + 2 max_l n_l)``: the activations of
        every layer and two buffers of back-propagated errors.
    """
    widths = list(layer_sizes)[1:]
    return int(batch_size) * (sum(widths) + 2 * max(widths))


# --------------------------------------------------------------------------
# Switch networks (ShrinkNets): layer l reads beta_{l-1} * h_{l-1}
# --------------------------------------------------------------------------
@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def switch_effective(theta, theta_eff, sizes, n_plain):  # pragma: no cover - compiled
    """Write the plain-layout parameters of the switch network into ``theta_eff``.

    ``W_eff_l[:, i] = W_l[:, i] * beta_{l-1}[i]`` and the biases as they are, so
    that :func:`mlp_loss_and_grad` on ``theta_eff`` is the switch network. The
    switches follow the ``n_plain`` weights and biases in ``theta`` (see
    ``FlatLayout``).
    """
    off = 0
    s_off = n_plain
    for l in range(sizes.shape[0] - 1):
        n_out, n_in = sizes[l + 1], sizes[l]
        for r in range(n_out):
            base = off + r * n_in
            for c in range(n_in):
                theta_eff[base + c] = theta[base + c] * theta[s_off + c]
        bias = off + n_out * n_in
        for r in range(n_out):
            theta_eff[bias + r] = theta[bias + r]
        off = bias + n_out
        s_off += n_in


@kernel(nogil=True, fastmath=_FAST, error_model="numpy")
def switch_chain(theta, grad_eff, grad, sizes, n_plain):  # pragma: no cover - compiled
    """Chain rule from the effective weights back to weights and switches.

    ``grad W_l = grad W_eff_l * beta_{l-1}`` (per column), biases unchanged,
    ``grad beta_{l-1}[i] = sum_r grad W_eff_l[r, i] * W_l[r, i]``.
    """
    off = 0
    s_off = n_plain
    for l in range(sizes.shape[0] - 1):
        n_out, n_in = sizes[l + 1], sizes[l]
        for c in range(n_in):
            grad[s_off + c] = 0.0
        for r in range(n_out):
            base = off + r * n_in
            for c in range(n_in):
                g = grad_eff[base + c]
                grad[s_off + c] += g * theta[base + c]
                grad[base + c] = g * theta[s_off + c]
        bias = off + n_out * n_in
        for r in range(n_out):
            grad[bias + r] = grad_eff[bias + r]
        off = bias + n_out
        s_off += n_in


@kernel(nogil=True, error_model="numpy")
def add_l1_subgradient(beta, grad, strengths):  # pragma: no cover
    """``grad[i] += strengths[i] * sign(beta[i])`` (views of the switches)."""
    for i in range(strengths.shape[0]):
        b = beta[i]
        if b > 0.0:
            grad[i] += strengths[i]
        elif b < 0.0:
            grad[i] -= strengths[i]


@kernel(nogil=True, error_model="numpy")
def sign_variance_update(beta, m, v, alive, gamma, tau):  # pragma: no cover
    """ShrinkNets' sign-variance death detector after one step (ALGORITHMS 3.5c).

    ``d = s - m``, ``v = gamma v + (1 - gamma) d^2``, ``m = gamma m + (1 - gamma)
    s`` with ``s = sign(beta)``; a switch dies for good once ``v > tau``, and
    dead switches are held at zero.
    """
    for i in range(m.shape[0]):
        b = beta[i]
        s = 1.0 if b > 0.0 else (-1.0 if b < 0.0 else 0.0)
        d = s - m[i]
        v[i] = gamma * v[i] + (1.0 - gamma) * d * d
        m[i] = gamma * m[i] + (1.0 - gamma) * s
        if v[i] > tau:
            alive[i] = False
        if not alive[i]:
            beta[i] = 0.0
