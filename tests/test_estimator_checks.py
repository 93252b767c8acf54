"""scikit-learn's common estimator checks, run over every estimator.

The test instances use small, fast settings; every check must pass but the
one expected failure declared below, which no mini-batch training of shuffled
rows can pass: ``check_sample_weight_equivalence_on_*_data`` asks a fit with
integer weights to equal the fit on the rows repeated, but repeating rows
changes the mini-batches. ``tests/test_sample_weight.py`` checks that
equivalence where it holds: in full-batch training.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
    ShrinkNetClassifier,
    ShrinkNetRegressor,
    TargetSparsityCV,
)

FAST = dict(
    hidden_layer_sizes=(16,), max_iter=40, batch_size=32, random_state=0, alpha=1e-4
)
PATH_FAST = dict(FAST, max_iter=10)
MINI_BATCHES = (
    "mini-batches of shuffled rows: repeating a row changes the batches (the "
    "full-batch equivalence is tests/test_sample_weight.py's)"
)


def _expected_failures(estimator) -> dict:
    """Checks that stochastic mini-batch training cannot pass, with the reason."""
    return {
        f"check_sample_weight_equivalence_on_{kind}_data": MINI_BATCHES
        for kind in ("dense", "sparse")
    }


# every nonconvex penalty selectable (the two without a prox in Adam's metric
# take the Euclidean prox after the Adam step)
NONCONVEX = [
    dict(penalty="tl1", tl1_a=0.5),
    dict(penalty="l0"),
    dict(penalty="l_half"),
    dict(penalty="group_l0"),
    dict(penalty="l1_l2", l1_l2_weight=0.5, prox="decoupled"),
    dict(penalty="group_tl1", prox="decoupled"),
    # RVSM, and the nonconvex sparse group lasso it enables
    dict(penalty="l1_l2", solver="rvsm"),
    dict(penalty="sparse_group_tl1", solver="rvsm", rvsm_beta_every=5),
    dict(penalty="sparse_group_l0", solver="rvsm"),
    dict(penalty="sparse_group_l1_l2", solver="rvsm"),
]


@parametrize_with_checks(
    [
        GroupLassoMLPClassifier(**FAST),
        GroupLassoMLPRegressor(**FAST),
        ShrinkNetClassifier(**FAST),
        ShrinkNetRegressor(**FAST),
        # removal while training, and the paper's death detector
        GroupLassoMLPClassifier(**FAST, remove_dead=True, remove_every=2),
        ShrinkNetRegressor(**FAST, switch_death="sign_variance", p=1),
        # the target search wrapping each classifier and regressor
        TargetSparsityCV(
            GroupLassoMLPClassifier(**FAST), target_sparsity=0.3, max_trainings=2
        ),
        TargetSparsityCV(
            GroupLassoMLPRegressor(**FAST), target_sparsity=0.3, max_trainings=2
        ),
        TargetSparsityCV(
            ShrinkNetClassifier(**FAST), target_sparsity=0.3, max_trainings=2
        ),
        TargetSparsityCV(
            ShrinkNetRegressor(**FAST), target_neurons=(8,), max_trainings=2
        ),
        # the cross-validated path wrapping each family (a short path: the
        # checks fit it many times)
        *(
            RegularizationPathCV(est, alphas=[1e-4, 1e-2], cv=2)
            for est in (
                GroupLassoMLPClassifier(**PATH_FAST),
                GroupLassoMLPRegressor(**PATH_FAST),
                GroupLassoMLPClassifier(**PATH_FAST, penalty="sparse_group_lasso"),
                GroupLassoMLPRegressor(
                    **PATH_FAST, penalty="group_tl1", prox="decoupled"
                ),
                GroupLassoMLPClassifier(**PATH_FAST, penalty="l1_l2", solver="rvsm"),
                ShrinkNetClassifier(**PATH_FAST),
                ShrinkNetRegressor(**PATH_FAST, switch_penalty="tl1"),
            )
        ),
        *(
            cls(**FAST, **params)
            for params in NONCONVEX
            for cls in (GroupLassoMLPClassifier, GroupLassoMLPRegressor)
        ),
        # nonconvex network slimming: the penalties on ShrinkNet switches
        *(
            cls(**FAST, switch_penalty=name)
            for name in ("tl1", "l_half", "l0")
            for cls in (ShrinkNetClassifier, ShrinkNetRegressor)
        ),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
