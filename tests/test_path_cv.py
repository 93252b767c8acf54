"""RegularizationPathCV and the rule that picks its stage.

Oracles: the rule's definition evaluated by brute force over random score
tables; paths fitted by hand (``set_params`` and ``fit`` per alpha, as a user
would) on every fold and on all the data; ``relaxed_fit`` run by hand.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
    ShrinkNetRegressor,
)
from skgroupsparse.path import select_stage
from skgroupsparse.path_cv import _with_params
from skgroupsparse.regularization import relaxed_fit
from skgroupsparse.training import TrainingDiverged

ALPHAS = [1e-4, 1e-3, 4e-3, 1.5e-2]

#: every stage the whole max_iter of _net, no settling, no refinement, no early
#: stop: the path a user fits by hand with set_params and fit
EXACT = dict(stage_iter=12, stage_patience=None, refine=0, stop_margin=None)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:450] / 16.0, y[:450]


def _net(**kw):
    params = dict(
        hidden_layer_sizes=(24, 12),
        max_iter=12,
        batch_size=64,
        learning_rate_init=1e-2,
        random_state=0,
    )
    params.update(kw)
    return GroupLassoMLPClassifier(**params)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _by_hand(estimator, X, y, alphas, path="warm"):
    """A path fitted the way a user would: set alpha, warm start, fit.

    ``path="cold"``: every alpha fitted from the estimator's initial weights.
    """
    est = copy.deepcopy(estimator)
    for k, alpha in enumerate(alphas):
        if path == "cold":
            est = copy.deepcopy(estimator)
        warm = path == "warm" and k > 0
        _quiet(est.set_params(alpha=alpha, warm_start=warm).fit, X, y)
        yield est


# ----------------------------------------------------------------------
# the rule
# ----------------------------------------------------------------------
def _rule_by_definition(mean, std, n_splits, neurons, rule):
    best = max(range(len(mean)), key=lambda i: (mean[i], -i))
    if rule == "best":
        return best
    tol = std[best] / np.sqrt(n_splits) if rule == "one_se" else rule
    ok = [i for i in range(len(mean)) if mean[i] >= mean[best] - tol]
    return max(ok, key=lambda i: (-neurons[i], i))


def test_select_stage_follows_its_definition_and_looser_is_never_denser():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        mean = np.round(rng.uniform(0.5, 1.0, n), 2)  # ties happen
        std = rng.uniform(0, 0.05, n)
        neurons = rng.integers(0, 6, n).astype(float)
        chosen = {}
        for rule in ("best", "one_se", 0.0, 0.01, 0.03, 0.1, 1.0):
            got = select_stage(mean, std, 5, neurons, rule)
            assert got == _rule_by_definition(mean, std, 5, neurons, rule)
            chosen[rule] = neurons[got]
        assert chosen["one_se"] <= chosen["best"]
        tolerances = [0.0, 0.01, 0.03, 0.1, 1.0]
        sizes = [chosen[t] for t in tolerances]
        assert sizes == sorted(sizes, reverse=True)
        assert chosen[1.0] == neurons.min()


def test_select_stage_rejects_bad_rules_and_skips_failed_stages():
    mean, std, neurons = [0.9, np.nan, 0.8], [0.01, 0.0, 0.01], [10, 1, 5]
    assert select_stage(mean, std, 3, neurons, 0.5) == 2
    with pytest.raises(ValueError, match="selection must be one of"):
        select_stage(mean, std, 3, neurons, "median")
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        select_stage(mean, std, 3, neurons, -0.1)
    with pytest.raises(ValueError, match="every fold failed"):
        select_stage([np.nan], [0.0], 3, [1], "best")


# ----------------------------------------------------------------------
# the search
# ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["warm", "cold"])
@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_cv_results_are_the_paths_fitted_by_hand_on_every_fold(digits, engine, path):
    X, y = digits
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    search = _quiet(
        RegularizationPathCV(
            _net(),
            ALPHAS,
            cv=folds,
            selection="best",
            stage_score="penalized",
            path=path,
            engine=engine,
            **EXACT,
        ).fit,
        X,
        y,
    )
    results = search.cv_results_
    for i, (train, test) in enumerate(folds):
        for k, est in enumerate(_by_hand(_net(), X[train], y[train], ALPHAS, path)):
            expected = est.score(X[test], y[test])
            got = results[f"split{i}_test_score"][k]
            if engine == "sequential":
                assert got == expected
            else:  # the same fits up to float32 rounding: a prediction may flip
                assert abs(got - expected) <= 1.0 / len(test) + 1e-12
    scores = np.array([results[f"split{i}_test_score"] for i in range(3)])
    np.testing.assert_allclose(results["mean_test_score"], scores.mean(axis=0))
    np.testing.assert_allclose(results["std_test_score"], scores.std(axis=0))
    assert results["mean_live_neurons"].shape == (4, 2)
    np.testing.assert_allclose(
        results["mean_n_neurons"], results["mean_live_neurons"].sum(axis=1)
    )
    assert search.best_index_ == int(np.argmax(results["mean_test_score"]))
    assert results["rank_test_score"][search.best_index_] == 1
    assert search.alpha_ == ALPHAS[search.best_index_]
    assert search.n_splits_ == 3 and search.alphas_ == ALPHAS
    # the refit: the path on all the data up to the chosen alpha (the cold
    # grid: that alpha alone), then relaxed
    path = list(_by_hand(_net(), X, y, ALPHAS[: search.best_index_ + 1], path))[-1]
    np.testing.assert_array_equal(
        search.penalized_estimator_.predict_proba(X), path.predict_proba(X)
    )
    relaxed = _quiet(relaxed_fit, path, X, y)
    np.testing.assert_array_equal(search.predict_proba(X), relaxed.predict_proba(X))
    assert search.best_estimator_.active_neurons_ == path.active_neurons_
    assert search.score(X, y) == relaxed.score(X, y)


def test_a_looser_selection_never_keeps_a_denser_net(digits):
    X, y = digits
    kept = []
    for selection in ("best", "one_se", 0.05, 0.5):
        search = _quiet(
            RegularizationPathCV(
                _net(), ALPHAS, cv=3, selection=selection, refit=False
            ).fit,
            X,
            y,
        )
        kept.append(search.cv_results_["mean_n_params"][search.best_index_])
    assert kept == sorted(kept, reverse=True)
    assert kept[0] > kept[-1]  # the rules differ on this path


@pytest.mark.parametrize("stage_iter, epochs", [(12, 12), (None, 3)])
def test_relaxed_stage_scores_are_relaxed_fits_by_hand(digits, stage_iter, epochs):
    from skgroupsparse.regularization import path_stage

    X, y = digits
    folds = list(KFold(2, shuffle=True, random_state=1).split(X))
    alphas = ALPHAS[1:4]
    search = _quiet(
        RegularizationPathCV(
            _net(),
            alphas,
            cv=folds,
            stage_score="relaxed",
            refit="penalized",
            **{**EXACT, "stage_iter": stage_iter, "stage_patience": 2},
        ).fit,
        X,
        y,
    )
    for i, (train, test) in enumerate(folds):
        scored = {}  # a support scored once on a fold keeps its score
        est = _net()
        for k, alpha in enumerate(alphas):
            # by hand: the first stage max_iter (12), then the stage budget
            # (None: a fifth of 12, 3 epochs), settling after 2
            est.set_params(max_iter=12 if k == 0 else epochs)
            settle = None if k == 0 else 2
            _quiet(path_stage, est, X[train], y[train], alpha, k > 0, settle=settle)
            key = tuple(tuple((W != 0).ravel()) for W in est.coefs_)
            if key not in scored:
                # one short fine-tune: the stage budget, 2 epochs of patience
                relaxed = _quiet(
                    relaxed_fit,
                    est,
                    X[train],
                    y[train],
                    max_iter=epochs,
                    patience=2,
                    all_rows=False,
                )
                scored[key] = relaxed.score(X[test], y[test])
            assert search.cv_results_[f"split{i}_test_score"][k] == scored[key]
    assert search.best_estimator_ is search.penalized_estimator_


def test_per_layer_alphas_and_a_regressor_in_a_pipeline(engine):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=150)
    net = ShrinkNetRegressor((8,), max_iter=10, batch_size=32, random_state=0)
    alphas = [[1e-4, 1e-3], [1e-3, 1e-2]]
    pipe = make_pipeline(StandardScaler(), RegularizationPathCV(net, alphas, cv=3))
    scores = _quiet(cross_validate, pipe, X, y, cv=2)
    assert np.all(np.isfinite(scores["test_score"]))
    search = _quiet(pipe.fit, X, y)[-1]
    assert search.alphas_ == alphas and search.alpha_ in alphas
    assert search.best_estimator_.alpha == 0.0


def test_default_path_climbs_from_small_to_alpha_max(digits):
    from skgroupsparse.regularization import alpha_max

    X, y = digits
    net = _net(max_iter=3)
    search = _quiet(
        RegularizationPathCV(net, n_alphas=3, eps=0.1, cv=2, refit=False, refine=0).fit,
        X,
        y,
    )
    top = alpha_max(net, X, y)
    np.testing.assert_allclose(search.alphas_, [0.1 * top, top / np.sqrt(10), top])
    with pytest.raises(AttributeError, match="refit=False"):
        search.predict(X)
    assert not hasattr(search, "best_estimator_")
    np.testing.assert_array_equal(search.classes_, np.arange(10))


@pytest.mark.parametrize("path", ["warm", "cold"])
def test_a_failed_stage_names_its_fold_and_alpha_and_keeps_the_last_fit(digits, path):
    X, y = digits
    search = _quiet(RegularizationPathCV(_net(), ALPHAS[:2], cv=2, path=path).fit, X, y)
    before = {k: v for k, v in vars(search).items() if k.endswith("_")}
    search.set_params(estimator=_net(learning_rate_init=1e6, optimizer="sgd"))
    with pytest.raises(TrainingDiverged, match=r"fold 1 of 2 at alpha=0\.0001"):
        _quiet(search.fit, X, y)
    for name, value in before.items():
        assert vars(search)[name] is value
    bad = np.array(X)
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        search.set_params(estimator=_net()).fit(bad, y)
    assert search.alpha_ == before["alpha_"]


@pytest.mark.parametrize("path", ["warm", "cold"])
def test_verbose_prints_a_line_per_stage_and_the_refit(digits, capsys, path):
    X, y = digits
    search = RegularizationPathCV(_net(), ALPHAS[:3], cv=2, path=path, verbose=True)
    _quiet(search.fit, X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    for k, line in enumerate(lines[:3]):
        assert f"stage {k + 1}/3" in line and "live neurons" in line
        assert "s so far, about" in line and "s left" in line
    assert "refit at alpha=" in lines[-1]


def test_wrapping_something_else_is_refused():
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(TypeError, match="skgroupsparse's estimators"):
        RegularizationPathCV(MLPClassifier()).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="alphas must be finite"):
        RegularizationPathCV(GroupLassoMLPRegressor(), [1e-3, -1.0]).fit(
            [[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]
        )


def test_a_zero_alpha_max_anchors_the_path_at_the_estimators_alpha(digits, monkeypatch):
    import skgroupsparse.path_cv as path_cv

    monkeypatch.setattr(path_cv, "alpha_max", lambda est, X, y: 0.0)
    X, y = digits
    search = RegularizationPathCV(
        _net(alpha=2e-3, max_iter=2), n_alphas=3, eps=0.01, refine=0
    )
    with pytest.warns(UserWarning, match="alpha_max is 0"):
        _quiet(search.set_params(cv=2, refit=False).fit, X, y)
    np.testing.assert_allclose(search.alphas_, [2e-3, 2e-2, 0.2])


def test_per_layer_alphas_on_the_batched_engine_match_one_fit_at_a_time(digits):
    X, y = digits
    alphas = [[1e-3, 1e-3, 1e-2], [4e-3, 2e-2, 2e-2]]
    folds = list(KFold(3, shuffle=True, random_state=2).split(X))
    searches = {
        engine: _quiet(
            RegularizationPathCV(
                _net(),
                alphas,
                cv=folds,
                engine=engine,
                stage_score="penalized",
                refit="penalized",
            ).fit,
            X,
            y,
        )
        for engine in ("batched", "sequential")
    }
    batched, sequential = searches["batched"], searches["sequential"]
    for i, (_, test) in enumerate(folds):
        np.testing.assert_allclose(
            batched.cv_results_[f"split{i}_test_score"],
            sequential.cv_results_[f"split{i}_test_score"],
            atol=1.0 / len(test) + 1e-12,
        )
    np.testing.assert_array_equal(
        batched.cv_results_["mean_live_neurons"],
        sequential.cv_results_["mean_live_neurons"],
    )
    assert batched.alpha_ in alphas


def test_ranks_tie_as_scikit_learns_searches_and_nan_ranks_last():
    from skgroupsparse.path_cv import _rank

    rng = np.random.default_rng(0)
    assert _rank(np.array([0.775, 0.883, 0.883])).tolist() == [3, 1, 1]
    for _ in range(200):
        mean = rng.integers(0, 4, size=7) / 4.0
        mean[rng.random(7) < 0.2] = np.nan
        finite = np.isfinite(mean)
        # by definition: one more than the finite scores strictly above
        expected = [
            1 + int(np.sum(mean[finite] > m)) if np.isfinite(m) else 1 + finite.sum()
            for m in mean
        ]
        assert _rank(mean).tolist() == expected


@pytest.mark.parametrize("n_classes", [2, 3])
def test_class_weighted_folds_batch_as_they_fit_one_at_a_time(digits, n_classes):
    X, y = digits
    keep = y < n_classes
    X, y = X[keep], y[keep]
    folds = list(KFold(2, shuffle=True, random_state=0).split(X))
    net = _net(class_weight="balanced", max_iter=4)
    searches = {
        engine: _quiet(
            RegularizationPathCV(
                net,
                [1e-3, 1e-2],
                cv=folds,
                engine=engine,
                stage_score="penalized",
                refit=False,
            ).fit,
            X,
            y,
        )
        for engine in ("batched", "sequential")
    }
    for i, (_, test) in enumerate(folds):
        np.testing.assert_allclose(
            searches["batched"].cv_results_[f"split{i}_test_score"],
            searches["sequential"].cv_results_[f"split{i}_test_score"],
            atol=1.0 / len(test) + 1e-12,
        )


def test_alpha_max_of_a_dataframe_warns_nothing(digits):
    import pandas as pd

    from skgroupsparse.regularization import alpha_max

    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert alpha_max(_net(), frame, y) == pytest.approx(alpha_max(_net(), X, y))


@pytest.mark.parametrize(
    "params",
    [
        dict(penalty="l0"),
        dict(penalty="l_half"),
        dict(penalty="group_l0"),
        dict(solver="rvsm", penalty="sparse_group_tl1"),
    ],
)
def test_no_alpha_max_asks_for_alphas_by_name(digits, params):
    X, y = digits
    with pytest.raises(ValueError, match="Pass alphas"):
        RegularizationPathCV(_net(**params), cv=2).fit(X, y)
    # and the path the message asks for runs
    search = RegularizationPathCV(_net(max_iter=2, **params), [1e-4, 1e-3], cv=2)
    assert len(_quiet(search.set_params(refit=False).fit, X, y).alphas_) == 2


# ----------------------------------------------------------------------
# the budgeted, refined, early-stopped path and its size
# ----------------------------------------------------------------------
def test_a_stage_budget_is_respected_and_is_the_path_by_hand(digits):
    X, y = digits
    folds = list(KFold(2, shuffle=True, random_state=0).split(X))
    budget = dict(EXACT, stage_iter=3)
    search = _quiet(
        RegularizationPathCV(
            _net(),
            ALPHAS,
            cv=folds,
            stage_score="penalized",
            engine="sequential",
            refit="penalized",
            **budget,
        ).fit,
        X,
        y,
    )
    epochs = search.cv_results_["mean_stage_epochs"]
    assert epochs[0] <= 12 and np.all(epochs[1:] <= 3) and np.all(epochs[1:] >= 1)
    for i, (train, test) in enumerate(folds):
        est = _net()
        for k, alpha in enumerate(ALPHAS):  # by hand: max_iter 12, then 3
            est.set_params(alpha=alpha, warm_start=k > 0, max_iter=12 if k == 0 else 3)
            _quiet(est.fit, X[train], y[train])
            got = search.cv_results_[f"split{i}_test_score"][k]
            assert got == est.score(X[test], y[test])
    # the refit takes the same budget on all the rows, and gives max_iter back
    assert search.best_estimator_.max_iter == 12


def test_a_settled_stage_ends_where_its_rule_first_holds(digits):
    from skgroupsparse.regularization import path_stage

    X, y = digits
    first = _net(max_iter=5)
    _quiet(first.fit, X, y)
    long, short = copy.deepcopy(first), copy.deepcopy(first)
    for est in (long, short):
        est.set_params(max_iter=40, n_iter_no_change=1000, tol=1e-3)
    _quiet(path_stage, long, X, y, 3e-3, True)
    _quiet(path_stage, short, X, y, 3e-3, True, settle=2)
    # the rule by hand on the long stage's epochs: 2 epochs without an
    # improvement of tol, and the support of the 3 last rows the same
    best, count, stop = np.inf, 0, None
    for e, loss in enumerate(long.loss_curve_[5:]):
        count = count + 1 if loss > best - 1e-3 else 0
        best = min(best, loss)
        window = long.history_[5 + e - 2 : 5 + e + 1]
        supports = {(r["live_features"], tuple(r["live_neurons"])) for r in window}
        if count >= 2 and len(supports) == 1:
            stop = e + 1
            break
    assert stop is not None and stop < 40  # the rule fires on this stage
    assert short.n_iter_ == 5 + stop
    np.testing.assert_array_equal(short.loss_curve_, long.loss_curve_[: 5 + stop])


def test_a_stopped_path_is_the_same_path_with_fewer_alphas(digits):
    X, y = digits
    alphas = list(np.geomspace(1e-4, 0.3, 8))
    kw = dict(cv=2, stage_score="penalized", refit=False, engine="sequential")
    stopped = _quiet(
        RegularizationPathCV(_net(), alphas, **{**EXACT, "stop_margin": 0.0}, **kw).fit,
        X,
        y,
    )
    results = stopped.cv_results_
    fitted = results["stage_fitted"]
    n = int(fitted.sum())
    assert 0 < n < len(alphas) and np.all(fitted[:n]) and not np.any(fitted[n:])
    assert stopped.alphas_ == alphas
    assert np.all(np.isnan(results["mean_test_score"][n:]))
    assert np.all(results["rank_test_score"][n:] == n + 1)  # NaN ranks last
    assert stopped.best_index_ < n
    shorter = _quiet(RegularizationPathCV(_net(), alphas[:n], **EXACT, **kw).fit, X, y)
    for i in range(2):
        np.testing.assert_array_equal(
            results[f"split{i}_test_score"][:n],
            shorter.cv_results_[f"split{i}_test_score"],
        )


@pytest.mark.parametrize("size", ["params", "neurons", "features"])
def test_inserted_alphas_lie_between_and_are_the_path_through_them(digits, size):
    X, y = digits
    alphas = [1e-4, 0.1]  # the network collapses between these two
    kw = dict(cv=2, stage_score="penalized", refit=False, engine="sequential")
    refined = _quiet(
        RegularizationPathCV(
            _net(), alphas, size=size, **{**EXACT, "refine": 3}, **kw
        ).fit,
        X,
        y,
    )
    taken = refined.alphas_
    inserted = refined.cv_results_["stage_inserted"]
    assert 0 < inserted.sum() <= 3 and len(taken) == 2 + inserted.sum()
    assert [a for a, new in zip(taken, inserted) if not new] == alphas
    assert all(a < b for a, b in zip(taken, taken[1:]))  # each between its neighbours
    # the refined path is the path through the alphas it took
    given = _quiet(RegularizationPathCV(_net(), taken, **EXACT, **kw).fit, X, y)
    for i in range(2):
        np.testing.assert_array_equal(
            refined.cv_results_[f"split{i}_test_score"],
            given.cv_results_[f"split{i}_test_score"],
        )


def test_size_counts_the_compacted_networks_parameters(digits):
    X, y = digits
    search = _quiet(
        RegularizationPathCV(
            _net(), ALPHAS, cv=2, refit="penalized", selection=0.02, **EXACT
        ).fit,
        X,
        y,
    )
    model = search.penalized_estimator_
    # the compacted network of a model: its torch parameters, counted
    counted = sum(p.numel() for p in model.network_.parameters())
    record = dict(
        live_features=int(model.support_.sum()),
        live_neurons=list(model.active_neurons_),
    )
    assert _with_params(model, record)["n_params"] == counted
    results = search.cv_results_
    assert search.best_index_ == select_stage(
        results["mean_test_score"],
        results["std_test_score"],
        2,
        results["mean_n_params"],
        0.02,
    )
