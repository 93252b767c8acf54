"""Shared test set-up.

One torch thread: the test networks are tiny, and on a small or busy machine
torch's intra-op thread pool makes each small matmul orders of magnitude
slower than a single thread does. No test result depends on the thread count.
"""

import pytest
import torch

from skgroupsparse.training import FlatOptimizer

torch.set_num_threads(1)


@pytest.fixture(params=[True, False], ids=["kernels", "tensor_ops"])
def engine(request, monkeypatch):
    """Run a test on both engines of the CPU step: the fused kernels (used when
    numba is installed) and the tensor operations (the CUDA path)."""
    monkeypatch.setattr(FlatOptimizer, "use_kernels", request.param)
    return request.param
