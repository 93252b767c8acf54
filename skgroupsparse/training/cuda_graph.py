"""A prox step captured as one CUDA graph (the torch engine on a GPU)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["CapturedProx"]


class CapturedProx:
    """A prox step captured as one CUDA graph, replayed at every step.

    On a GPU the exact prox in Adam's metric is about a hundred small kernels
    (the Newton iteration of
    :func:`~skgroupsparse.penalties.weighted_block_soft_threshold` runs a fixed
    number of times over all groups at once); launched one by one from Python
    they cost more than the network's own step. Captured once,
    they run as one launch, with no host synchronisation.

    Parameters
    ----------
    body : callable
        ``body(step, bc2)`` applies the prox in place, reading the prox step
        and Adam's bias correction from the two 0-d device tensors it is
        given; it must not synchronise with the host.
    theta : Tensor
        The flat parameters that ``body`` changes: kept through the warm-up
        run that precedes the capture.
    """

    def __init__(self, body: Callable[[Tensor, Tensor], None], theta: Tensor):
        device = theta.device
        self.step = torch.zeros((), dtype=theta.dtype, device=device)
        self.bc2 = torch.ones((), dtype=theta.dtype, device=device)
        saved = theta.clone()
        # a warm-up run on a side stream (lazy initialisation, allocator
        # pools) before capture, as torch.cuda.graphs asks; its change to
        # theta is undone
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            body(self.step, self.bc2)
        torch.cuda.current_stream(device).wait_stream(stream)
        theta.copy_(saved)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            body(self.step, self.bc2)

    def replay(self, step: float, bc2: float) -> None:
        """Run the captured prox with this step and bias correction.

        Parameters
        ----------
        step : float
            The prox step (see
            :meth:`~skgroupsparse.training.optimizers.FlatOptimizer.prox_step_size`).
        bc2 : float
            Adam's bias correction ``1 - beta_2**t`` (unused by the others).
        """
        self.step.fill_(step)  # fills take the value as a kernel argument
        self.bc2.fill_(bc2)
        self.graph.replay()
