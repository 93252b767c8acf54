"""Shared test set-up.

One torch thread: the test networks are tiny, and on a small or busy machine
torch's intra-op thread pool makes each small matmul orders of magnitude
slower than a single thread does. No test result depends on the thread count.
"""

import torch

torch.set_num_threads(1)
