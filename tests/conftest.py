"""Shared test set-up.

One torch thread: the test networks are tiny, and on a small or busy machine
torch's intra-op thread pool makes each small matmul orders of magnitude
slower than a single thread does. No test result depends on the thread count.
"""

import pytest
import torch

from skgroupsparse.training import use_engine

torch.set_num_threads(1)


@pytest.fixture
def data_dir():
    """The shared offline datasets folder (``../shared/datasets``, as CI lays
    it beside the clone); a test that reads it is skipped where it is absent."""
    from skgroupsparse.datasets import shared_datasets_dir

    path = shared_datasets_dir()
    if not path.is_dir():
        pytest.skip(f"offline datasets folder not found: {path}")
    return path


@pytest.fixture(params=["numba", "torch"])
def engine(request):
    """Run a test on both step engines of the CPU: the numba kernels (the
    default) and the tensor operations (the CUDA path); the engine's name."""
    with use_engine(request.param):
        yield request.param
