"""Fits stay the same: fixed-seed CPU predictions against the recorded ones.

The record (``tests/data/fixed_seed_predictions.npz``) was made by
``python tests/fixed_seed_cases.py`` before the thread-pool and prox work of
issue 14; a change that alters a fit by more than round-off fails here.
"""

import numpy as np
import pytest
from fixed_seed_cases import RECORD, cases, predictions

CASES = cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_predictions_match_the_record(name):
    recorded = np.load(RECORD)[name]
    got = predictions(*CASES[name])
    np.testing.assert_allclose(got, recorded, rtol=1e-6, atol=1e-6)
