"""to_sklearn: the learned network in scikit-learn's MLP, served without torch.

Oracle: our own ``predict`` / ``predict_proba`` (the compacted torch network)
against scikit-learn's NumPy forward pass over the exported weights; and a
process in which torch cannot be imported.
"""

import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from skgroupsparse import (
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    ShrinkNetClassifier,
    ShrinkNetRegressor,
)

ACTIVATIONS = ["relu", "tanh", "logistic", "identity"]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _targets(task, X, y):
    if task == "multiclass":
        return y
    if task == "binary":
        return np.where(y < 5, "low", "high")
    if task == "multilabel":
        return np.c_[y % 2, y < 3, y > 6].astype(int)
    if task == "regression":
        return X[:, 20] - 0.5 * X[:, 42]
    return np.c_[X[:, 20], X[:, 42] * 2.0, X[:, 27] - X[:, 36]]  # multi-output


def _sparse_model(cls, activation):
    # alpha large enough that features (and with relu neurons) die and are
    # compacted away, small enough that a network is left; logistic hidden
    # units die sooner
    alpha = 1e-3 if cls is GroupLassoMLPClassifier else 3e-4
    return cls(
        (24, 12),
        activation=activation,
        alpha=alpha / 10 if activation == "logistic" else alpha,
        max_iter=15,
        batch_size=64,
        learning_rate_init=1e-2,
        remove_dead=True,
        random_state=0,
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(
    "task", ["multiclass", "binary", "multilabel", "regression", "multi-output"]
)
def test_the_exported_model_predicts_as_ours(digits, activation, task):
    X, y = digits
    target = _targets(task, X, y)
    classifier = task in ("multiclass", "binary", "multilabel")
    cls = GroupLassoMLPClassifier if classifier else GroupLassoMLPRegressor
    ours = _fit(_sparse_model(cls, activation), X, target)
    assert min(ours.active_neurons_) > 0  # a network, not a constant
    exported = ours.to_sklearn()
    assert isinstance(exported, MLPClassifier if classifier else MLPRegressor)
    assert exported.activation == activation
    assert (
        list(exported.hidden_layer_sizes)
        == [m.weight.shape[0] for m in ours.network_.layers if hasattr(m, "weight")][
            :-1
        ]
    )
    if classifier:
        np.testing.assert_array_equal(exported.predict(X), ours.predict(X))
        np.testing.assert_allclose(
            exported.predict_proba(X), ours.predict_proba(X), rtol=0, atol=1e-6
        )
        np.testing.assert_array_equal(exported.classes_, ours.classes_)
    else:
        np.testing.assert_allclose(
            exported.predict(X), ours.predict(X), rtol=1e-6, atol=1e-6
        )
    assert exported.n_features_in_ == X.shape[1]


def test_a_sparse_fit_exports_its_dropped_features_as_zero_weights(digits):
    X, y = digits
    ours = _fit(_sparse_model(GroupLassoMLPClassifier, "relu"), X, y)
    assert not ours.support_.all()  # the test needs dropped features
    first = ours.to_sklearn().coefs_[0]
    np.testing.assert_array_equal(first[~ours.support_], 0.0)
    assert np.abs(first[ours.support_]).sum(axis=1).min() > 0


@pytest.mark.parametrize("cls", [ShrinkNetClassifier, ShrinkNetRegressor])
def test_shrinknets_export_with_their_switches_folded_in(digits, cls):
    X, y = digits
    target = y if cls is ShrinkNetClassifier else X[:, 20]
    ours = _fit(cls((16,), alpha=1e-3, max_iter=5, random_state=0), X, target)
    exported = ours.to_sklearn()
    if cls is ShrinkNetClassifier:
        np.testing.assert_allclose(
            exported.predict_proba(X), ours.predict_proba(X), rtol=0, atol=1e-6
        )
    else:
        np.testing.assert_allclose(exported.predict(X), ours.predict(X), atol=1e-6)


def test_feature_names_go_along(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    ours = _fit(_sparse_model(GroupLassoMLPClassifier, "relu"), frame, y)
    exported = ours.to_sklearn()
    np.testing.assert_array_equal(exported.feature_names_in_, ours.feature_names_in_)
    np.testing.assert_array_equal(exported.predict(frame), ours.predict(frame))


def test_an_activation_scikit_learn_lacks_is_refused_by_name(digits):
    X, y = digits
    ours = _fit(_sparse_model(GroupLassoMLPClassifier, "leaky_relu"), X, y)
    with pytest.raises(ValueError, match="no activation 'leaky_relu'"):
        ours.to_sklearn()


def test_the_exported_model_is_served_where_torch_cannot_be_imported(digits, tmp_path):
    X, y = digits
    ours = _fit(_sparse_model(GroupLassoMLPClassifier, "relu"), X, y)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(ours.to_sklearn()))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", ours.predict_proba(X))
    script = textwrap.dedent(
        f"""
        import importlib.abc, pickle, sys

        class NotInstalled(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, NotInstalled())  # as if torch were not installed
        import numpy as np
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("torch could be imported")
        folder = {str(tmp_path)!r}
        model = pickle.loads(open(folder + "/model.pkl", "rb").read())
        X = np.load(folder + "/X.npy")
        got = model.predict_proba(X)
        np.testing.assert_allclose(got, np.load(folder + "/expected.npy"), atol=1e-6)
        assert "torch" not in sys.modules
        assert not any(name.startswith("skgroupsparse") for name in sys.modules)
        print("served", len(X))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"served {len(X)}"


# ----------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(
    "task", ["multiclass", "binary", "multilabel", "regression", "multi-output"]
)
def test_onnx_runtime_predicts_as_ours(digits, tmp_path, task, activation, dtype):
    ort = pytest.importorskip("onnxruntime")
    X, y = digits
    target = _targets(task, X, y)
    classifier = task in ("multiclass", "binary", "multilabel")
    cls = GroupLassoMLPClassifier if classifier else GroupLassoMLPRegressor
    ours = _fit(_sparse_model(cls, activation), X, target)
    path = tmp_path / "model.onnx"
    ours.to_onnx(path, dtype=dtype)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(
        zip(
            [o.name for o in session.get_outputs()],
            session.run(None, {"X": X.astype(dtype)}),
        )
    )
    if classifier:
        np.testing.assert_allclose(
            got["probabilities"], ours.predict_proba(X), rtol=0, atol=1e-5
        )
        if task != "multilabel":
            np.testing.assert_array_equal(
                ours.classes_[got["class_index"]], ours.predict(X)
            )
    else:
        expected = ours.predict(X).reshape(len(X), -1)
        np.testing.assert_allclose(got["predictions"], expected, rtol=1e-5, atol=1e-5)


def test_onnx_records_the_features_and_classes(digits):
    pytest.importorskip("onnx")
    pd = pytest.importorskip("pandas")
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    ours = _fit(_sparse_model(GroupLassoMLPClassifier, "relu"), frame, y)
    model = ours.to_onnx()
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["feature_names"]) == list(frame.columns)
    assert int(meta["n_features_in"]) == X.shape[1]
    assert json.loads(meta["classes"]) == ours.classes_.tolist()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == X.shape[1]
    with pytest.raises(ValueError, match="dtype must be"):
        ours.to_onnx(dtype="float16")


def test_onnx_refuses_an_activation_it_has_no_operator_for(digits):
    pytest.importorskip("onnx")
    X, y = digits
    ours = _fit(_sparse_model(GroupLassoMLPClassifier, "leaky_relu"), X, y)
    with pytest.raises(ValueError, match="no ONNX operator for the activation"):
        ours.to_onnx()


def test_the_compacted_network_serves_through_torch_export_and_torchscript(
    digits, tmp_path
):
    import torch

    X, y = digits
    ours = _fit(_sparse_model(GroupLassoMLPClassifier, "relu"), X, y)
    X_t = torch.as_tensor(X)  # network_ is float64 and reads every feature
    expected = ours.network_(X_t).detach()
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        ours.network_, (X_t[:4],), dynamic_shapes={"X": {0: batch}}
    )
    torch.export.save(program, tmp_path / "net.pt2")
    loaded = torch.export.load(tmp_path / "net.pt2").module()
    torch.testing.assert_close(loaded(X_t), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates TorchScript
        scripted = torch.jit.script(ours.network_)
        torch.jit.save(scripted, str(tmp_path / "net.ts"))
        reloaded = torch.jit.load(str(tmp_path / "net.ts"))
    torch.testing.assert_close(reloaded(X_t), expected)
