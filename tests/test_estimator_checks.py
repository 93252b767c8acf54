"""scikit-learn's common estimator checks, run over both estimators.

The test instances use small, fast settings; every check must pass (no
expected failures are declared).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skgroupsparse import GroupLassoMLPClassifier, GroupLassoMLPRegressor

FAST = dict(
    hidden_layer_sizes=(16,), max_iter=40, batch_size=32, random_state=0, alpha=1e-4
)


@parametrize_with_checks(
    [GroupLassoMLPClassifier(**FAST), GroupLassoMLPRegressor(**FAST)]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
