"""The learned network handed on: serving without torch.

:func:`to_sklearn` writes the compacted network of a fitted estimator into a
fitted scikit-learn ``MLPClassifier`` / ``MLPRegressor``; scikit-learn's
forward pass is NumPy, so the exported model pickles and predicts where torch
is not installed. :func:`to_onnx` writes it as an ONNX graph, for
``onnxruntime`` and the other ONNX runtimes.
"""

from __future__ import annotations

import copy
import json

import numpy as np
from sklearn.base import is_classifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.validation import check_is_fitted

__all__ = ["SKLEARN_ACTIVATIONS", "to_onnx", "to_sklearn"]

#: our hidden activations that scikit-learn's MLPs compute, by our name
SKLEARN_ACTIVATIONS = {
    "relu": "relu",
    "tanh": "tanh",
    "logistic": "logistic",
    "identity": "identity",
}


def to_sklearn(estimator):
    """A fitted scikit-learn MLP that predicts as ``estimator`` does.

    Parameters
    ----------
    estimator : fitted estimator
        One of this package's classifiers or regressors (ShrinkNets included:
        their switches are folded into the weights).

    Returns
    -------
    MLPClassifier or MLPRegressor
        Fitted, with the compacted network's widths as ``hidden_layer_sizes``
        and its weights in float64; it reads every input feature (a feature
        the network dropped has zero weights). Its ``predict`` and
        ``predict_proba`` equal ``estimator``'s up to floating-point
        rounding. It is not meant to be trained further: ``fit`` would start
        over with scikit-learn's defaults.

    Raises
    ------
    ValueError
        If scikit-learn has no such hidden activation (``leaky_relu``).
    """
    check_is_fitted(estimator)
    activation = SKLEARN_ACTIVATIONS.get(estimator.activation)
    if activation is None:
        raise ValueError(
            f"scikit-learn's MLPs have no activation {estimator.activation!r} "
            f"(they have {sorted(set(SKLEARN_ACTIVATIONS.values()))}): this model "
            "cannot be exported to scikit-learn; export it to ONNX or use it "
            "with torch"
        )
    weights, biases, columns = _compact_layers(estimator)
    # the first layer reads every feature: zero weights on the dropped ones
    first = np.zeros((weights[0].shape[0], estimator.n_features_in_))
    first[:, columns] = weights[0]
    weights[0] = first
    hidden = tuple(int(W.shape[0]) for W in weights[:-1])
    if is_classifier(estimator):
        model = MLPClassifier(hidden_layer_sizes=hidden, activation=activation)
        lb = copy.deepcopy(estimator._label_binarizer)  # its own, not ours
        model._label_binarizer = lb
        model.classes_ = estimator.classes_
        model.out_activation_ = "softmax" if lb.y_type_ == "multiclass" else "logistic"
    else:
        model = MLPRegressor(hidden_layer_sizes=hidden, activation=activation)
        model.out_activation_ = "identity"
    model.coefs_ = [W.T.copy() for W in weights]
    model.intercepts_ = [b.copy() for b in biases]
    model.n_layers_ = len(weights) + 1
    model.n_outputs_ = int(weights[-1].shape[0])
    model.n_features_in_ = estimator.n_features_in_
    if hasattr(estimator, "feature_names_in_"):
        model.feature_names_in_ = estimator.feature_names_in_
    model.n_iter_ = estimator.n_iter_
    model.t_ = estimator.t_
    model.loss_curve_ = list(estimator.loss_curve_)
    model.loss_ = estimator.loss_
    model.best_loss_ = estimator.best_loss_
    return model


def _compact_layers(estimator) -> tuple[list, list, np.ndarray]:
    """The compacted network: weights ``(n_out, n_in)``, biases (float64 NumPy)
    and the positions of the input columns it reads."""
    network = estimator.network_
    linears = [m for m in network.layers if hasattr(m, "weight")]
    weights = [m.weight.detach().cpu().double().numpy() for m in linears]
    biases = [m.bias.detach().cpu().double().numpy() for m in linears]
    return weights, biases, network.feature_index.cpu().numpy().astype(np.int64)


#: the ONNX operator of each hidden activation (None: no operator)
_ONNX_ACTIVATIONS = {
    "relu": "Relu",
    "tanh": "Tanh",
    "logistic": "Sigmoid",
    "identity": None,
}


def to_onnx(estimator, path=None, *, dtype: str = "float32"):
    """The compacted network of ``estimator`` as an ONNX model.

    The graph reads the input ``X`` of shape ``(n_samples, n_features_in_)``
    (the columns the network dropped are not read) and gives, for a
    classifier, ``probabilities`` (as ``predict_proba``) and ``class_index``
    (the position in ``classes_`` of the predicted class; multiclass and
    binary targets), for a regressor ``predictions`` of shape ``(n_samples,
    n_outputs)``. The model's metadata records ``n_features_in``,
    ``feature_names`` (JSON, when the model was fitted with column names) and,
    for a classifier, ``classes`` (JSON). Needs the ``onnx`` package
    (``pip install "skgroupsparse[onnx]"``); run it with ``onnxruntime``.

    Parameters
    ----------
    estimator : fitted estimator
        One of this package's classifiers or regressors.
    path : str or path-like, default=None
        Where to save the model; None: only returned.
    dtype : {"float32", "float64"}, default="float32"
        The type of the input, the weights and the outputs.

    Returns
    -------
    onnx.ModelProto
        The model (checked with ``onnx.checker``).

    Raises
    ------
    ImportError
        If ``onnx`` is not installed.
    ValueError
        For a hidden activation ONNX export does not cover (``leaky_relu``)
        or another ``dtype``.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as error:  # pragma: no cover - the test extra has it
        raise ImportError(
            "to_onnx needs the onnx package: pip install 'skgroupsparse[onnx]'"
        ) from error
    check_is_fitted(estimator)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if estimator.activation not in _ONNX_ACTIVATIONS:
        raise ValueError(
            f"to_onnx has no ONNX operator for the activation "
            f"{estimator.activation!r} (it has {sorted(_ONNX_ACTIVATIONS)})"
        )
    elem = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    weights, biases, columns = _compact_layers(estimator)
    initializers = [numpy_helper.from_array(columns, "feature_index")]
    nodes = [helper.make_node("Gather", ["X", "feature_index"], ["h0"], axis=1)]
    h = "h0"
    for l, (W, b) in enumerate(zip(weights, biases)):
        initializers += [
            numpy_helper.from_array(W.T.astype(dtype), f"W{l}"),
            numpy_helper.from_array(b.astype(dtype), f"b{l}"),
        ]
        nodes += [
            helper.make_node("MatMul", [h, f"W{l}"], [f"z{l}"]),
            helper.make_node("Add", [f"z{l}", f"b{l}"], [f"a{l}"]),
        ]
        h = f"a{l}"
        op = _ONNX_ACTIVATIONS[estimator.activation]
        if l < len(weights) - 1 and op is not None:
            nodes.append(helper.make_node(op, [h], [f"h{l + 1}"]))
            h = f"h{l + 1}"
    n_outputs = int(weights[-1].shape[0])
    metadata = {"n_features_in": str(estimator.n_features_in_)}
    if hasattr(estimator, "feature_names_in_"):
        metadata["feature_names"] = json.dumps(
            [str(name) for name in estimator.feature_names_in_]
        )
    if is_classifier(estimator):
        outputs = _onnx_classifier_head(
            estimator, h, n_outputs, elem, dtype, nodes, initializers
        )
        metadata["classes"] = json.dumps(np.asarray(estimator.classes_).tolist())
    else:
        nodes.append(helper.make_node("Identity", [h], ["predictions"]))
        outputs = [("predictions", elem, [None, n_outputs])]
    graph = helper.make_graph(
        nodes,
        "skgroupsparse",
        [helper.make_tensor_value_info("X", elem, [None, estimator.n_features_in_])],
        [
            helper.make_tensor_value_info(name, kind, shape)
            for name, kind, shape in outputs
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="skgroupsparse",
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, str(path))
    return model


def _onnx_classifier_head(estimator, h, n_outputs, elem, dtype, nodes, inits):
    """Probabilities (and the predicted class's index) from the raw outputs.

    Appends to ``nodes`` and ``inits``; returns the outputs as ``(name, element
    type, shape)``.
    """
    from onnx import TensorProto, helper, numpy_helper

    if estimator._label_binarizer.y_type_ == "multiclass":
        nodes.append(helper.make_node("Softmax", [h], ["probabilities"], axis=1))
    elif n_outputs == 1:  # binary: one logistic output, as predict_proba reads it
        inits.append(numpy_helper.from_array(np.ones(1, dtype=dtype), "one"))
        nodes += [
            helper.make_node("Sigmoid", [h], ["p1"]),
            helper.make_node("Sub", ["one", "p1"], ["p0"]),
            helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
        ]
    else:  # multilabel: one probability per label
        nodes.append(helper.make_node("Sigmoid", [h], ["probabilities"]))
        return [("probabilities", elem, [None, n_outputs])]
    argmax = helper.make_node(
        "ArgMax", ["probabilities"], ["class_index"], axis=1, keepdims=0
    )
    nodes.append(argmax)
    return [
        ("probabilities", elem, [None, len(estimator.classes_)]),
        ("class_index", TensorProto.INT64, [None]),
    ]
