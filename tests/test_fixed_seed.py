"""Fits stay the same: fixed-seed CPU fits against the recorded ones.

The record (``tests/data/fixed_seed_predictions.npz``) is written by
``python tests/fixed_seed_cases.py``. Its first 16 cases were recorded before
the thread-pool and prox work of issue 14; the rest, with the tensor engine's
fits and every case's ``active_neurons_``, before the engine split of issue
15. A change that alters a fit by more than round-off fails here.
"""

import numpy as np
import pytest
from fixed_seed_cases import ENGINES, RECORD, cases, key, predictions

CASES = cases()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_matches_the_record(name, engine):
    record = np.load(RECORD)
    got = predictions(*CASES[name], engine=engine)
    np.testing.assert_allclose(
        got["outputs"], record[key(name, engine)], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_array_equal(got["active"], record[key(name, engine, "active")])
