"""Fits stay the same: fixed-seed CPU fits against the recorded ones.

The record (``tests/data/fixed_seed_predictions.npz``) is written by
``python tests/fixed_seed_cases.py``: every case fitted in float64 on both CPU
engines. A change that alters a fit by more than round-off fails here, on any
x86-64 machine.

Why float64, and the tolerances: float32 training is chaotic enough that
the summation order of another CPU's kernels moves the fifth digit (a record
written in float32 on an Intel Xeon failed 8 of 64 cases on an AMD EPYC, by
up to 9e-6). ``benchmarks/fixed_seed_spread.py`` forces other kernels (torch
without vector instructions or at AVX2, OpenBLAS's Haswell, Sandybridge and
Prescott kernels, MKL at AVX2 or SSE, one thread) and measures the spread
(``benchmarks/results/fixed_seed_spread.md``): at most 3.0e-14 in float64,
2.9e-4 in float32, and no ``active_neurons_`` changed. So float64 fits are
compared at 1e-9 (more than 10,000 times the float64 spread, and a thousand
times tighter than the old float32 guard), and the float32 fits users train
are compared to the float64 record at 1e-3 (3 times the float32 spread), with
``active_neurons_`` exact in both.
"""

import numpy as np
import pytest
from fixed_seed_cases import ENGINES, RECORD, cases, key, predictions

CASES = cases()
TOLERANCE = {"float64": 1e-9, "float32": 1e-3}


@pytest.mark.parametrize("dtype", sorted(TOLERANCE))
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_the_record(name, engine, dtype):
    record = np.load(RECORD)
    estimator, task = CASES[name]
    got = predictions(estimator, task, engine=engine, dtype=dtype)
    assert estimator.coefs_[0].dtype == np.dtype(dtype)  # trained in that dtype
    np.testing.assert_allclose(
        got["outputs"],
        record[key(name, engine)],
        rtol=TOLERANCE[dtype],
        atol=TOLERANCE[dtype],
    )
    np.testing.assert_array_equal(got["active"], record[key(name, engine, "active")])


def test_use_dtype_trains_new_fits_and_warm_starts_keep_theirs():
    import torch
    from sklearn.datasets import load_iris

    from skgroupsparse import GroupLassoMLPClassifier
    from skgroupsparse.training import training_dtype, use_dtype

    X, y = load_iris(return_X_y=True)
    est = GroupLassoMLPClassifier((4,), max_iter=2, warm_start=True, random_state=0)
    with use_dtype(torch.float64):
        assert training_dtype() == torch.float64
        est.fit(X, y)
    assert training_dtype() == torch.float32
    assert est.coefs_[0].dtype == np.float64
    est.fit(X, y)  # the warm start goes on in the model's dtype
    assert est.coefs_[0].dtype == np.float64
    est.set_params(warm_start=False).fit(X, y)
    assert est.coefs_[0].dtype == np.float32
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        with use_dtype(torch.float16):
            pass
