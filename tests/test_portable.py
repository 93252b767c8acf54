"""A fitted model leaves the device it was fitted on.

A GPU cannot be had here, so a GPU-fitted model is simulated where its pickle
shows it: torch records each storage's device when it pickles it
(``torch.serialization.location_tag``), and loading a storage recorded as
``cuda:0`` needs CUDA. The fitted model's own tensors are recorded as
``cuda:0``; a pickle of its state made the way torch pickles it fails to load
here (the control: the simulation is faithful), and the estimator's pickle
loads and predicts on the CPU.
"""

import copyreg
import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
    ShrinkNetClassifier,
    TargetSparsityCV,
)
from skgroupsparse._base import BaseGroupSparseMLP
from skgroupsparse.training import to_device

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _fitted(kind, X, y):
    common = dict(max_iter=4, batch_size=64, random_state=0)
    if kind == "group_lasso":
        est = GroupLassoMLPClassifier((16, 8), alpha=1e-3, **common)
    elif kind == "removed_units":
        est = GroupLassoMLPClassifier((16, 8), alpha=3e-2, remove_dead=True, **common)
    elif kind == "rvsm":
        est = GroupLassoMLPClassifier((16,), alpha=1e-3, solver="rvsm", **common)
    elif kind == "shrinknet":
        est = ShrinkNetClassifier((16,), alpha=1e-3, **common)
    elif kind == "regressor":
        est = GroupLassoMLPRegressor((16,), alpha=1e-3, **common)
        return _quiet(est.fit, X, np.c_[X[:, 20], X[:, 30]])
    elif kind == "target_sparsity":
        est = TargetSparsityCV(
            GroupLassoMLPClassifier((16,), **common), target_neurons=(8,), cv=2
        )
    elif kind == "path_cv":
        est = RegularizationPathCV(
            GroupLassoMLPClassifier((16,), **common), [1e-3, 1e-2], cv=2
        )
    return _quiet(est.fit, X, y)


class _RawPickler(pickle.Pickler):
    """Pickles as before this fix: our estimators' attributes as they are.

    Records every tensor it pickles in ``found``.
    """

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.found = []

    def reducer_override(self, o):
        if isinstance(o, torch.Tensor):
            self.found.append(o)
        elif isinstance(o, BaseGroupSparseMLP):
            # its attributes themselves, not the CPU copy its pickle makes
            return (copyreg.__newobj__, (type(o),), dict(vars(o)))
        return NotImplemented


def _raw_pickle(obj) -> tuple[bytes, list[torch.Tensor]]:
    """``obj`` pickled as before this fix, and the tensors in it."""
    buffer = io.BytesIO()
    pickler = _RawPickler(buffer)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.found


def _own_tensors(obj) -> list[torch.Tensor]:
    """Every tensor an object holds, our estimators' own (not their pickles')."""
    return _raw_pickle(obj)[1]


@pytest.fixture
def on_gpu(monkeypatch):
    """``on_gpu(obj)``: from now on, ``obj``'s tensors pickle as on ``cuda:0``."""
    pointers = set()
    real = torch.serialization.location_tag

    def tag(storage):
        return "cuda:0" if storage.data_ptr() in pointers else real(storage)

    monkeypatch.setattr(torch.serialization, "location_tag", tag)

    def mark(obj):
        for t in _own_tensors(obj):
            if t.numel():
                pointers.add(t.untyped_storage().data_ptr())

    return mark


KINDS = [
    "group_lasso",
    "removed_units",
    "rvsm",
    "shrinknet",
    "regressor",
    "target_sparsity",
    "path_cv",
]


@pytest.mark.skipif(not NO_CUDA, reason="the control needs a machine without CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_a_model_fitted_on_a_gpu_loads_and_predicts_where_there_is_none(
    digits, on_gpu, kind
):
    X, y = digits
    est = _fitted(kind, X, y)
    expected = est.predict(X)
    on_gpu(est)
    # the control: pickled as before, the model needs CUDA to load
    with pytest.raises(RuntimeError, match="CUDA"):
        pickle.loads(_raw_pickle(est)[0])
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), expected)
    for t in _own_tensors(loaded):
        assert t.device.type == "cpu"


def test_a_loaded_model_trains_on_as_the_original_does(digits):
    X, y = digits
    est = _fitted("group_lasso", X, y)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.fit_device_ == "cpu"
    for model in (est, loaded):
        model.partial_fit(X, y)
        _quiet(model.set_params(warm_start=True, max_iter=2).fit, X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.loss_curve_ == est.loss_curve_
    # the optimizer state came along: one more step from each is the same
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    for a, b in zip(est.coefs_, loaded.coefs_):
        np.testing.assert_array_equal(a, b)


def test_loading_where_the_fit_device_is_missing_warns_and_predicts_on_the_cpu(
    digits,
):
    X, y = digits
    est = _fitted("group_lasso", X, y)
    expected = est.predict_proba(X)
    # what a CUDA fit leaves, as far as the CPU can say it
    est.fit_device_ = "cuda:0"
    est.device = "cuda"
    blob = pickle.dumps(est)
    if NO_CUDA:
        with pytest.warns(UserWarning, match="fitted on cuda:0 .* predicts on the CPU"):
            loaded = pickle.loads(blob)
        np.testing.assert_array_equal(loaded.predict_proba(X), expected)
        with pytest.raises(ValueError, match="CUDA"):
            _quiet(loaded.set_params(warm_start=True).fit, X, y)
        _quiet(loaded.set_params(device="cpu").fit, X, y)
        assert loaded.fit_device_ == "cpu"


def test_to_device_copies_every_tensor_and_keeps_what_is_shared():
    shared = torch.arange(6.0)
    param = torch.nn.Parameter(torch.ones(3))
    obj = {"a": shared, "b": [shared, param], "n": np.ones(2), "s": "text"}
    for device in ("cpu", "meta"):
        out = to_device(obj, device)
        assert out["a"] is out["b"][0]  # one tensor twice stays one tensor
        assert out["a"].device.type == device and out["b"][1].device.type == device
        assert isinstance(out["b"][1], torch.nn.Parameter)
        assert out["b"][1].requires_grad
        np.testing.assert_array_equal(out["n"], obj["n"])
        assert out["s"] == "text"
    out = to_device(obj, "cpu")
    out["a"][0] = 100.0
    assert shared[0] == 0.0  # a copy, not the same storage
    np.testing.assert_array_equal(out["b"][1].detach(), param.detach())


def test_a_trainer_moved_to_another_device_holds_nothing_on_the_first(digits):
    X, y = digits
    for kind in ("group_lasso", "rvsm", "shrinknet", "removed_units"):
        trainer = _fitted(kind, X, y)._trainer
        moved = to_device(trainer, "meta")
        tensors = _own_tensors(moved)
        assert tensors and all(t.device.type == "meta" for t in tensors)


def test_a_copy_in_memory_stays_where_the_model_is(digits, monkeypatch):
    import copy

    X, y = digits
    est = _fitted("group_lasso", X, y)

    def no_pickle(self):
        raise AssertionError("deepcopy went through the pickle's CPU copy")

    monkeypatch.setattr(type(est), "__getstate__", no_pickle)
    twin = copy.deepcopy(est)
    np.testing.assert_array_equal(twin.predict_proba(X), est.predict_proba(X))
    assert twin._trainer is not est._trainer
    assert twin._trainer.net.theta.data_ptr() != est._trainer.net.theta.data_ptr()
