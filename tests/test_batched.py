"""The batched engine: K networks trained as one equal K single fits.

Oracle: each network's own single fit (``ProximalTrainer.fit``, on the same
step engine; each test runs on both CPU engines), from the same initial
weights, with the same alpha and the same mini-batch order of its own rows.
In float64 they agree to 1e-10, in float32 to 1e-4 relative after 50 steps,
for every optimizer and penalty.
"""

import copy
import warnings

import numpy as np
import pytest
import torch

from skgroupsparse.groups import build_group_map
from skgroupsparse.network import SparseMLP, live_units
from skgroupsparse.penalties import PENALTIES
from skgroupsparse.training import (
    BatchedTrainer,
    ProximalTrainer,
    TrainConfig,
    TrainingDiverged,
    batch_refusal,
)

SIZES = (7, 12, 6, 3)
ROWS = (100, 101, 97)  # every network its own rows: 7 batches of 16 each
BATCH = 16


def _data(dtype, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.normal(size=(160, SIZES[0])), dtype=dtype)
    if loss == "softmax":
        labels = torch.as_tensor(rng.integers(0, SIZES[-1], 160))
        Y = torch.nn.functional.one_hot(labels, SIZES[-1]).to(dtype)
    elif loss == "logistic":
        Y = torch.as_tensor(rng.integers(0, 2, (160, SIZES[-1])), dtype=dtype)
    else:
        Y = torch.as_tensor(rng.normal(size=(160, SIZES[-1])), dtype=dtype)
    subsets = [torch.as_tensor(rng.permutation(160)[:n]) for n in ROWS]
    return [(X[s], Y[s]) for s in subsets]


def _penalty(name, strength, n_groups, dtype):
    alpha = torch.full((n_groups,), strength, dtype=dtype)
    kwargs = {"l1_ratio": 0.4} if name == "sparse_group_lasso" else {}
    return PENALTIES[name](alpha, **kwargs)


def _trainers(penalty, optimizer, dtype, loss="softmax", **config):
    trainers = []
    for k, strength in enumerate((2e-3, 2e-2, 6e-2)):
        net = SparseMLP(SIZES, "relu", dtype=dtype)
        net.reset_parameters(torch.Generator().manual_seed(10 + k))
        group_map = build_group_map(net.layout)
        settings = dict(
            loss=loss,
            optimizer=optimizer,
            learning_rate_init=0.05 if optimizer == "sgd" else 0.01,
            batch_size=BATCH,
            tol=0.0,
            n_iter_no_change=1000,
        )
        settings.update(config)
        trainers.append(
            ProximalTrainer(
                net,
                group_map,
                _penalty(penalty, strength, group_map.n_groups, dtype),
                TrainConfig(**settings),
            )
        )
    return trainers


def _generators():
    return [torch.Generator().manual_seed(100 + k) for k in range(len(ROWS))]


def _run_both(trainers, data, epochs):
    singles = [copy.deepcopy(tr) for tr in trainers]
    stopped_single = [
        tr.fit(X, y, g, epochs) for tr, (X, y), g in zip(singles, data, _generators())
    ]
    stopped = BatchedTrainer(trainers).fit(data, _generators(), epochs)
    assert stopped == stopped_single
    return singles


def _assert_same(batched, singles, rtol, atol):
    for tr, single in zip(batched, singles):
        for a, b in zip(tr.full_parameters()[0], single.full_parameters()[0]):
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
        assert tr.n_iter == single.n_iter and tr.t == single.t
        np.testing.assert_allclose(
            tr.loss_curve, single.loss_curve, rtol=max(rtol, 1e-9)
        )
        assert tr.live_neurons() == single.live_neurons()
        assert tr.optimizer.n_steps == single.optimizer.n_steps
        assert len(tr.history) == len(single.history)
        for row, row_single in zip(tr.history, single.history):
            for key in ("epoch", "live_features", "live_neurons", "layer_sizes"):
                assert row[key] == row_single[key], key
            np.testing.assert_allclose(row["objective"], row_single["objective"])
            np.testing.assert_allclose(
                row["input_neurons"], row_single["input_neurons"]
            )


CASES = [
    ("group_lasso", "adam", "preconditioned"),
    ("group_lasso", "sgd", "preconditioned"),
    ("group_lasso", "adamax", "preconditioned"),
    ("group_lasso", "rmsprop", "preconditioned"),
    ("sparse_group_lasso", "adam", "preconditioned"),
    ("l1", "adam", "preconditioned"),
    ("l1", "sgd", "preconditioned"),
    ("tl1", "adam", "preconditioned"),
    ("group_tl1", "adam", "decoupled"),
    ("l0", "sgd", "preconditioned"),
    ("group_l0", "adam", "decoupled"),
]


@pytest.mark.parametrize("penalty, optimizer, prox", CASES)
def test_each_network_of_a_batch_is_its_single_fit_float64(
    engine, penalty, optimizer, prox
):
    data = _data(torch.float64, "softmax")
    trainers = _trainers(penalty, optimizer, torch.float64, prox=prox)
    singles = _run_both(trainers, data, epochs=8)  # 56 steps
    _assert_same(trainers, singles, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("activation", ["tanh", "leaky_relu", "logistic"])
def test_losses_and_activations_float64(engine, loss, activation):
    data = _data(torch.float64, loss)
    trainers = _trainers("group_lasso", "adam", torch.float64, loss=loss)
    for tr in trainers:
        tr.net.activation = activation
    singles = _run_both(trainers, data, epochs=3)
    _assert_same(trainers, singles, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("penalty, optimizer, prox", CASES[:6])
def test_float32_agrees_to_1e_4_after_50_steps(engine, penalty, optimizer, prox):
    data = _data(torch.float32, "softmax")
    trainers = _trainers(penalty, optimizer, torch.float32, prox=prox)
    singles = _run_both(trainers, data, epochs=8)
    for tr, single in zip(trainers, singles):
        a = torch.cat([W.flatten() for W in tr.full_parameters()[0]])
        b = torch.cat([W.flatten() for W in single.full_parameters()[0]])
        assert float((a - b).norm()) <= 1e-4 * float(b.norm())  # 0 for a dead net


@pytest.mark.parametrize("loss", ["softmax", "squared", "logistic"])
def test_weighted_rows_each_network_is_its_single_fit_float64(engine, loss):
    # sample weights ride as a column past the targets; some rows weigh 0,
    # and one network's first batch weighs nothing at all
    data = []
    rng = np.random.default_rng(3)
    for X, Y in _data(torch.float64, loss):
        w = torch.as_tensor(rng.uniform(0.0, 3.0, len(X)), dtype=torch.float64)
        w[rng.random(len(X)) < 0.2] = 0.0
        data.append((X, torch.cat([Y, w.unsqueeze(1)], dim=1)))
    trainers = _trainers("group_lasso", "adam", torch.float64, loss=loss, shuffle=False)
    data[1][1][:BATCH, -1] = 0.0
    singles = _run_both(trainers, data, epochs=4)
    _assert_same(trainers, singles, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fit_together_class_weight_equals_each_fit(n_classes):
    from skgroupsparse import GroupLassoMLPClassifier
    from skgroupsparse.regularization import fit_together

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] > 0.8).astype(int) + (n_classes == 3) * (X[:, 1] > 1.0)
    data = [(X[:120], y[:120]), (X[80:], y[80:])]

    def nets():
        return [
            GroupLassoMLPClassifier(
                (8,), alpha=1e-3, max_iter=4, class_weight="balanced", random_state=k
            )
            for k in range(2)
        ]

    together, alone = nets(), nets()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fit_together(together, data) is None  # batched, not refused
        for est, (X_k, y_k) in zip(alone, data):
            est.fit(X_k, y_k)
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-5)
        for W, W0 in zip(a.coefs_, b.coefs_):
            assert np.linalg.norm(W - W0) <= 1e-4 * np.linalg.norm(W0)


@pytest.mark.parametrize("every", ["epoch", 3])
def test_removal_while_training_is_masked_then_compacted(engine, every):
    data = _data(torch.float64, "softmax")
    trainers = _trainers("group_lasso", "adam", torch.float64, remove_every=every)
    for tr in trainers:  # strong enough that units die and are removed
        tr.penalty = _penalty("group_lasso", 0.15, tr.group_map.n_groups, torch.float64)
    singles = [copy.deepcopy(tr) for tr in trainers]
    for tr, (X, y), g in zip(singles, data, _generators()):
        tr.fit(X, y, g, 8)
    batched = BatchedTrainer(trainers)
    batched.fit(data, _generators(), 8)
    _assert_same(trainers, singles, rtol=1e-10, atol=1e-10)
    # the stack narrowed as the networks lost units
    assert batched.stacked_sizes[0] == SIZES
    assert min(sum(sizes) for sizes in batched.stacked_sizes) < sum(SIZES)
    for tr, single in zip(trainers, singles):
        assert tr.net.layout.layer_sizes == single.net.layout.layer_sizes
        # the same units kept; a layer left with no live unit keeps one zero
        # unit as a placeholder, whichever its history left
        live = live_units(tr.full_parameters()[0])
        for k, k_single, mask in zip(tr.kept, single.kept, live):
            if mask.any():
                assert k.tolist() == k_single.tolist()
    assert any(tr.net.layout.layer_sizes != SIZES for tr in trainers)


def test_networks_that_stop_leave_the_batch_and_the_others_go_on(engine):
    data = _data(torch.float64, "softmax")
    trainers = _trainers(
        "group_lasso", "adam", torch.float64, tol=2e-3, n_iter_no_change=2
    )
    singles = _run_both(trainers, data, epochs=40)
    _assert_same(trainers, singles, rtol=1e-10, atol=1e-10)
    epochs = [tr.n_iter for tr in trainers]
    assert len(set(epochs)) > 1 and min(epochs) < 40


def test_what_cannot_be_batched_is_refused_with_the_reason():
    trainers = _trainers("group_lasso", "adam", torch.float64)
    assert batch_refusal(trainers, ROWS) is None
    assert "numbers of batches" in batch_refusal(trainers, (100, 113, 97))
    assert "batch sizes" in batch_refusal(trainers, (10, 12, 11))
    trainers[1].config = TrainConfig(loss="softmax", learning_rate="invscaling")
    with pytest.raises(ValueError, match="cannot be batched: the trainers differ"):
        BatchedTrainer(trainers).fit(_data(torch.float64, "softmax"), _generators(), 1)
    trainers = _trainers("group_lasso", "adam", torch.float64)
    trainers[2].optimizer.n_steps = 7  # a kept state, after another fit's steps
    assert "different numbers of steps" in batch_refusal(trainers, ROWS)


def test_fit_together_keeps_the_optimizer_state_as_each_fit_does():
    from sklearn.datasets import load_digits

    from skgroupsparse import GroupLassoMLPClassifier
    from skgroupsparse.regularization import fit_together, path_stage

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    data = [(X[rows], y[rows]) for rows in _folds()]
    nets = [
        GroupLassoMLPClassifier((12,), max_iter=3, batch_size=32, random_state=k)
        for k in range(len(data))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fit_together(nets, data) is None
        alone = copy.deepcopy(nets)
        for est in nets:
            est.set_params(alpha=1e-2, warm_start=True)
        assert fit_together(nets, data, keep_optimizer=True) is None
        for est, (X_k, y_k) in zip(alone, data):
            path_stage(est, X_k, y_k, 1e-2, True, keep_optimizer=True)
    for a, b in zip(nets, alone):
        assert a._trainer.optimizer.n_steps == b._trainer.optimizer.n_steps
        for W, W0 in zip(a.coefs_, b.coefs_):
            assert np.linalg.norm(W - W0) <= 1e-4 * np.linalg.norm(W0)
    # folds whose last fits took different numbers of steps go one by one
    nets[0]._trainer.optimizer.n_steps += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        why = fit_together(nets, data, keep_optimizer=True)
    assert "different numbers of steps" in why


def test_a_diverging_network_is_named():
    data = _data(torch.float64, "squared")
    trainers = _trainers("group_lasso", "sgd", torch.float64, loss="squared")
    for tr in trainers:
        tr.config.learning_rate_init = 1e3
        tr.lr = 1e3
    with pytest.raises(TrainingDiverged, match=r"network \d: Training diverged"):
        BatchedTrainer(trainers).fit(data, _generators(), 5)


# ----------------------------------------------------------------------
# through the estimators
# ----------------------------------------------------------------------
def _folds(n=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    return [np.setdiff1d(order, part) for part in np.array_split(order, k)]


@pytest.mark.parametrize("remove_dead", [False, True])
def test_fit_together_equals_each_fit_along_a_warm_path(remove_dead):
    from sklearn.datasets import load_digits

    from skgroupsparse import GroupLassoMLPClassifier
    from skgroupsparse.regularization import fit_together

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    data = [(X[rows], y[rows]) for rows in _folds()]

    def nets():
        return [
            GroupLassoMLPClassifier(
                (20, 10),
                max_iter=6,
                batch_size=32,
                learning_rate_init=1e-2,
                remove_dead=remove_dead,
                random_state=k,
            )
            for k in range(len(data))
        ]

    together, alone = nets(), nets()
    for stage, alpha in enumerate([1e-3, 2e-2, 5e-2]):
        for est in together + alone:
            est.set_params(alpha=alpha, warm_start=stage > 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert fit_together(together, data) is None  # batched, not refused
        for est, (X_k, y_k) in zip(alone, data):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X_k, y_k)
        for a, b in zip(together, alone):
            assert a.active_neurons_ == b.active_neurons_
            assert a.n_iter_ == b.n_iter_ and a._trainer.t == b._trainer.t
            for W, W0 in zip(a.coefs_, b.coefs_):
                assert np.linalg.norm(W - W0) <= 1e-4 * np.linalg.norm(W0)
    if remove_dead:  # units were removed, and the next stage expanded them
        assert any(e.active_neurons_ != [20, 10] for e in together)


def test_fit_together_falls_back_and_says_why():
    from skgroupsparse import GroupLassoMLPRegressor, ShrinkNetRegressor
    from skgroupsparse.regularization import fit_together

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    nets = [ShrinkNetRegressor((6,), max_iter=2, random_state=0) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "ShrinkNets" in fit_together(nets, [(X, y), (X[:50], y[:50])])
    assert all(hasattr(n, "coefs_") for n in nets)
    nets = [
        GroupLassoMLPRegressor((6,), max_iter=2, early_stopping=True) for _ in range(2)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "early stopping" in fit_together(nets, [(X, y), (X, y)])


def test_fit_together_falls_back_when_the_folds_differ_in_classes():
    from skgroupsparse import GroupLassoMLPClassifier
    from skgroupsparse.regularization import fit_together

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    y = np.repeat([0, 1, 2], 30)
    data = [(X, y), (X[:60], y[:60])]  # the second fold has no class 2
    nets = [GroupLassoMLPClassifier((6,), max_iter=2) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "layer sizes" in fit_together(nets, data)
    assert [len(n.classes_) for n in nets] == [3, 2]


def test_a_failed_batched_fit_leaves_every_estimator_as_it_was():
    from skgroupsparse import GroupLassoMLPRegressor
    from skgroupsparse.regularization import fit_together

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.normal(size=64)
    nets = [GroupLassoMLPRegressor((6,), max_iter=2, random_state=k) for k in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_together(nets, [(X, y), (X, y)])
    before = [copy.deepcopy(vars(n)) for n in nets]
    for n in nets:
        n.set_params(optimizer="sgd", learning_rate_init=1e4, warm_start=True)
    bad = [(X[:, :3], y), (X, y)]  # the first has a feature too few
    with pytest.raises(ValueError, match="network 0: X has 3 features"):
        fit_together(nets, bad)
    with pytest.raises(TrainingDiverged, match=r"^network [01]: Training diverged"):
        fit_together(nets, [(X * 1e3, y * 1e3), (X * 1e3, y * 1e3)])
    for n, old in zip(nets, before):
        assert vars(n).keys() == old.keys()
        for W, W0 in zip(n.coefs_, old["coefs_"]):
            np.testing.assert_array_equal(W, W0)
        assert n.n_iter_ == old["n_iter_"] and n.t_ == old["t_"]
