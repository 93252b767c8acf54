"""Where a fit runs: the device, and who owns the CPU cores during a fit."""

from __future__ import annotations

import contextlib
import io
import pickle
import threading

import numpy as np
import torch
from threadpoolctl import threadpool_limits

__all__ = [
    "BLAS_THREADS_FROM",
    "cpu_threads_for",
    "resolve_device",
    "subnormals_flushed",
    "to_device",
    "training_dtype",
    "use_dtype",
]

#: the floating-point type of a new fit's parameters (innermost :func:`use_dtype`)
_dtypes: list[torch.dtype] = [torch.float32]


#: below this many multiply-adds in a batch's matrix products, BLAS runs on one
#: thread while the kernels drive a fit: such products are too small for a
#: thread pool to pay for its synchronisation, and on a machine in use they
#: wait for a second core (a digits fit, hidden (64, 32), batch 200: 2%
#: faster with all BLAS threads on a quiet 2-core machine, 3.1x slower
#: with another process busy on one core); above it BLAS keeps all of its
#: threads (letter, hidden (512, 256, 128), batch 1024: one thread is 1.4x
#: slower). Figures: ``benchmarks/results/cpu_engine.md``.
BLAS_THREADS_FROM = 2**23


@contextlib.contextmanager
def cpu_threads_for(kernels: bool, work: int | None = None):
    """Give the cores to one thread pool for a CPU fit; restore after.

    Two pools can drive a CPU step: torch's OpenMP pool (the tensor engine) and
    the BLAS pool that the numba kernels' matrix products call (through SciPy).
    When the kernels drive the step, torch runs only light work (fused Adam,
    the shuffling, the set-up), yet its OpenMP threads spin-wait after every
    parallel call and fight the BLAS threads for the cores: on 2 cores, 3
    epochs of ``letter`` with hidden (256, 128) at batch 256 took 1.85 s with
    both pools as the process had them and 0.26 s with this rule
    (``benchmarks/cpu_engine.py``).
    So with the kernels torch always runs on one thread, and the cores belong
    to BLAS: all of its threads when a batch's products need at least
    :data:`BLAS_THREADS_FROM` multiply-adds (``work``), one below, where a
    thread pool costs more than it gives. With the tensor engine torch keeps
    its threads and BLAS is not called.

    The thread settings are process-wide: only the main thread changes them, so
    that fits running in parallel threads never race to restore them.

    The main thread also flushes subnormal floats to zero for the fit
    (``torch.set_flush_denormal``): Adam's first moment decays geometrically
    on coordinates whose gradient vanishes, and float32 subnormals made the
    element-wise work several times slower (1.7x on a whole fit); it is put
    back as it was after the fit.

    Parameters
    ----------
    kernels : bool
        Whether the numba kernels drive the step (the ``numba`` engine,
        :class:`~skgroupsparse.training.engines.NumbaEngine`; nothing changes
        when they do not, e.g. on CUDA).
    work : int or None, default=None
        Multiply-adds of one batch's matrix products (batch size times the
        number of weights); None leaves BLAS as it is (the set-up of a fit).

    Yields
    ------
    None
        The fit runs inside the ``with`` block.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    if not kernels or not in_main_thread:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    blas = contextlib.nullcontext()
    if work is not None and work < BLAS_THREADS_FROM:
        blas = threadpool_limits(limits=1, user_api="blas")
    try:
        with blas, subnormals_flushed():
            yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def subnormals_flushed():
    """Flush subnormal floats to zero inside the block (main thread only).

    Put back as it was after the block; see :func:`cpu_threads_for` for why.

    Yields
    ------
    None
        The work runs inside the ``with`` block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    flushed = _subnormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(flushed)


def _subnormals_flushed() -> bool:
    """Whether this thread flushes subnormal floats to zero (FTZ or DAZ)."""
    subnormal = np.array([1e-39], dtype=np.float32)
    return bool((subnormal * np.float32(1.0))[0] == 0.0)


@contextlib.contextmanager
def use_dtype(dtype: torch.dtype):
    """Train every new fit inside the block in ``dtype`` (float32 outside).

    Fits are trained in float32, which is what users want of speed. A record
    of fixed-seed fits kept as a guard is trained in float64 instead: float32
    training is chaotic enough that the summation order of another CPU's BLAS
    kernels moves the fifth digit of its outputs, while float64 keeps the
    difference near 1e-12 (``tests/test_fixed_seed.py``). A warm start or
    ``partial_fit`` goes on in the dtype of the model it continues.

    Parameters
    ----------
    dtype : {torch.float32, torch.float64}
        The parameters' floating-point type.

    Yields
    ------
    None
        The fits run inside the ``with`` block.
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    _dtypes.append(dtype)
    try:
        yield
    finally:
        _dtypes.pop()


def training_dtype() -> torch.dtype:
    """The floating-point type of a new fit's parameters (see :func:`use_dtype`).

    Returns
    -------
    torch.dtype
        ``torch.float32`` unless inside :func:`use_dtype`.
    """
    return _dtypes[-1]


def resolve_device(device: str) -> torch.device:
    """The one place where a device name becomes a ``torch.device``.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when
        available, else the CPU).

    Returns
    -------
    torch.device
        The device; a CUDA device without an index gets the current one.

    Raises
    ------
    ValueError
        For a name torch does not read as a device, or a CUDA device asked for
        on a machine without CUDA.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


class _MovingPickler(pickle.Pickler):
    """Pickles every tensor as a copy of it on one device."""

    def __init__(self, file, device: torch.device):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.device = device

    def reducer_override(self, obj):
        if not isinstance(obj, torch.Tensor):
            return NotImplemented
        moved = obj.detach().to(self.device, copy=True)
        if isinstance(obj, torch.nn.Parameter):
            moved = torch.nn.Parameter(moved, requires_grad=obj.requires_grad)
        else:
            moved.requires_grad_(obj.requires_grad)
        return moved.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


def to_device(obj, device: torch.device | str):
    """A copy of ``obj`` with every tensor in it copied to ``device``.

    The copy is what pickling ``obj`` and loading it back gives (so each
    object's own pickling rules apply, e.g. a trainer drops its step engine),
    except that every tensor is a new one on ``device``: a copy made on a GPU
    machine holds no storage that needs CUDA to be loaded, and a model loaded
    on the CPU can be moved back to a GPU.

    Parameters
    ----------
    obj : object
        Anything picklable: an estimator's state, a trainer, a module.
    device : torch.device or str
        Where the tensors of the copy live.

    Returns
    -------
    object
        The copy. Tensors that were views of one another are separate tensors
        in it, as after any pickling.
    """
    buffer = io.BytesIO()
    _MovingPickler(buffer, torch.device(device)).dump(obj)
    buffer.seek(0)
    return pickle.load(buffer)
