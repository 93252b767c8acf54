"""Searches spread over a real Dask cluster give the serial results.

A ``dask.distributed.LocalCluster`` with two worker processes is started in
the test (no external service); joblib's ``dask`` backend sends the fits of a
``GridSearchCV`` over ``alpha``, the fold searches of a ``TargetSparsityCV``
and the folds of every stage of a ``RegularizationPathCV`` to it.
"""

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skgroupsparse import (
    GroupLassoMLPClassifier,
    RegularizationPathCV,
    TargetSparsityCV,
)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def _net(**kw):
    return GroupLassoMLPClassifier(
        (16,), penalty="l1", alpha=1e-4, max_iter=15, tol=0, random_state=0, **kw
    )


def test_grid_search_over_alpha_on_dask_equals_serial(client, digits):
    X, y = digits
    grid = {"alpha": [1e-4, 1e-3, 1e-2]}
    serial = GridSearchCV(_net(), grid, cv=3, n_jobs=1).fit(X, y)
    with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
        spread = GridSearchCV(_net(), grid, cv=3, n_jobs=-1).fit(X, y)
    np.testing.assert_array_equal(
        serial.cv_results_["mean_test_score"], spread.cv_results_["mean_test_score"]
    )
    assert serial.best_params_ == spread.best_params_
    # the fits ran as tasks on the cluster's workers
    assert len(tasks.data) > 0
    assert {t["worker"] for t in tasks.data} <= set(client.scheduler_info()["workers"])


def test_target_sparsity_cv_on_dask_equals_serial(client, digits):
    X, y = digits
    kw = dict(target_sparsity=0.6, cv=3)
    serial = TargetSparsityCV(_net(), n_jobs=1, **kw).fit(X, y)
    with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
        spread = TargetSparsityCV(_net(), n_jobs=-1, **kw).fit(X, y)
    assert len(tasks.data) > 0
    assert serial.cv_results_ == spread.cv_results_
    assert serial.alpha_ == spread.alpha_
    np.testing.assert_array_equal(serial.predict(X), spread.predict(X))
    assert abs(spread.best_estimator_.sparsity_ - 0.6) <= 0.01


def test_regularization_path_cv_on_dask_equals_serial(client, digits):
    X, y = digits
    kw = dict(alphas=[1e-4, 1e-3, 1e-2], cv=3, engine="sequential")
    serial = RegularizationPathCV(_net(), n_jobs=1, **kw).fit(X, y)
    with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
        spread = RegularizationPathCV(_net(), n_jobs=-1, **kw).fit(X, y)
    # every stage's folds ran as tasks on the cluster's workers
    assert len(tasks.data) >= 3 * 3
    assert {t["worker"] for t in tasks.data} <= set(client.scheduler_info()["workers"])
    for key in ("split0_test_score", "split2_test_score", "mean_live_neurons"):
        np.testing.assert_array_equal(serial.cv_results_[key], spread.cv_results_[key])
    assert serial.alpha_ == spread.alpha_
    np.testing.assert_array_equal(serial.predict(X), spread.predict(X))
