"""The proximal training loop, as a package whose files show its design.

============  ===============================================================
module        what it holds
============  ===============================================================
loop          the story of a fit: epochs, mini-batch steps, stopping,
              snapshots, removal of dead units (:class:`ProximalTrainer`)
optimizers    SGD, Adam, Adamax, RMSprop on the flat parameter vector
engines       how a step is computed, chosen once per fit: torch (CPU and
              CUDA), numba kernels (CPU)
batched       K networks of one architecture trained as one (the folds or
              alphas of a search)
cuda_graph    the prox step captured as one CUDA graph (torch engine on CUDA)
components    what hooks into the loop: RVSM's split variable, ShrinkNets'
              death detector, the relaxed fit's fixed support
readout       the trained network at its original widths: counts, outputs
diagnostics   optimality residuals, zero-threshold readings
device        the device of a fit, and who owns the CPU cores during it
sparse_rows   sparse training data, made dense one mini-batch at a time
============  ===============================================================

The names below are the package's public interface; the modules are internal
(import from ``skgroupsparse.training``).
"""

from skgroupsparse.training.batched import BatchedTrainer, batch_refusal, rows_refusal
from skgroupsparse.training.components import (
    FixedSupport,
    LoopComponent,
    SignVarianceDetector,
    SplitVariable,
    StepContext,
)
from skgroupsparse.training.cuda_graph import CapturedProx
from skgroupsparse.training.device import (
    BLAS_THREADS_FROM,
    cpu_threads_for,
    resolve_device,
    subnormals_flushed,
    to_device,
    training_dtype,
    use_dtype,
)
from skgroupsparse.training.diagnostics import (
    ThresholdReading,
    optimality_residual,
    read_thresholds,
)
from skgroupsparse.training.engines import (
    ENGINES,
    NumbaEngine,
    StepEngine,
    TorchEngine,
    choose,
    prox_groups,
    use_engine,
)
from skgroupsparse.training.loop import ProximalTrainer, TrainConfig, TrainingDiverged
from skgroupsparse.training.optimizers import (
    OPTIMIZER_CODES,
    OPTIMIZERS,
    PROX_MODES,
    SCHEDULES,
    FlatOptimizer,
)
from skgroupsparse.training.sparse_rows import SparseRows, dense_rows

__all__ = [
    "BLAS_THREADS_FROM",
    "BatchedTrainer",
    "ENGINES",
    "OPTIMIZERS",
    "OPTIMIZER_CODES",
    "PROX_MODES",
    "SCHEDULES",
    "CapturedProx",
    "FixedSupport",
    "FlatOptimizer",
    "LoopComponent",
    "NumbaEngine",
    "ProximalTrainer",
    "SignVarianceDetector",
    "SplitVariable",
    "StepContext",
    "StepEngine",
    "ThresholdReading",
    "TorchEngine",
    "TrainConfig",
    "TrainingDiverged",
    "batch_refusal",
    "choose",
    "cpu_threads_for",
    "optimality_residual",
    "prox_groups",
    "read_thresholds",
    "resolve_device",
    "to_device",
    "training_dtype",
    "use_dtype",
    "SparseRows",
    "dense_rows",
    "rows_refusal",
    "subnormals_flushed",
    "use_engine",
]
