"""Group-lasso MLP estimators: networks that learn their own width."""

from __future__ import annotations

from skgroupsparse._base import (
    BaseGroupSparseMLP,
    GroupSparseClassifierMixin,
    GroupSparseRegressorMixin,
)

__all__ = ["GroupLassoMLPClassifier", "GroupLassoMLPRegressor"]

_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_hidden_layers,), default=(100,)
        Starting width of each hidden layer; ``()`` gives a linear model. The
        penalty removes the neurons the data does not need.
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers.
    alpha : float or array-like of shape (n_hidden_layers + 1,), default=1e-3
        Penalty strength ``lambda``, per sample (the loss is a mean). A sequence
        gives ``alpha[0]`` to the input-feature groups and ``alpha[k]`` to the
        neurons of hidden layer ``k`` (with ``groups="incoming"`` there are no
        feature groups and ``alpha[0]`` is unused).
    penalty : {"group_lasso", "sparse_group_lasso", "l1"}, default="group_lasso"
        ``group_lasso``: ``alpha * sum_g sqrt(|g|) ||w_g||_2``;
        ``sparse_group_lasso``: ``alpha * (l1_ratio ||w||_1 + (1 - l1_ratio)
        sum_g sqrt(|g|) ||w_g||_2)``; ``l1``: ``alpha * ||w||_1`` on the grouped
        weights.
    l1_ratio : float in [0, 1], default=0.5
        Mix of the sparse group lasso.
    groups : {"outgoing", "incoming"}, default="outgoing"
        ``outgoing``: a neuron's group is its outgoing weights and every input
        feature has a group (Scardapane et al. 2017); ``incoming``: a neuron's
        incoming weights and bias, no feature groups, output layer unpenalised.
        Biases are never penalised with ``outgoing``.
    optimizer : {"adam", "sgd", "adamax", "rmsprop"}, default="adam"
        Each step is an optimizer step on the loss, then the prox of the
        penalty on every group.
    prox : {"preconditioned", "decoupled"}, default="preconditioned"
        For adaptive optimizers: ``preconditioned`` is the exact prox in the
        optimizer's diagonal metric (Adam's ``sqrt(v_hat) + eps``), so that
        ``alpha`` keeps its meaning; ``decoupled`` is the Euclidean prox after
        the adaptive step, a heuristic whose ``alpha`` is on another scale. For
        ``sgd`` both are the proximal-gradient step: exact stochastic proximal
        gradient with ``momentum=0``; with momentum ``mu`` the prox takes the
        step ``learning_rate / (1 - mu)`` so that fixed points are stationary
        points of the objective with this ``alpha``.
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Step schedule, as in ``MLPClassifier`` (applies to every optimizer).
    learning_rate_init : float, default=1e-3
        Initial step size.
    power_t : float, default=0.5
        Exponent of ``invscaling``.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and the validation split. The same seed
        gives the same model bit for bit on the CPU.
    tol : float, default=1e-4
        Improvement of the objective (or validation score) below which an
        epoch counts as no improvement.
    verbose : bool, default=False
        Print one line per epoch: objective, validation score, live neurons.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (new optimizer state).
    momentum : float, default=0.9
        Momentum of ``sgd``.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for ``sgd``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its score
        stops improving; the best weights are restored.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Moment decay rates of ``adam`` / ``adamax``; ``beta_2`` is also the
        smoothing constant of ``rmsprop``.
    epsilon : float, default=1e-8
        Numerical stability term of the adaptive optimizers.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where the network trains; ``"auto"`` picks CUDA when available.

    Notes
    -----
    On the CPU the training step runs as fused numba kernels, compiled once and
    cached on disk (the first fit on a new installation takes a few seconds
    more). Fits whose batch needs fewer than ``2**23`` multiply-adds run with
    one torch thread and one BLAS thread, the fastest setting for such small
    operations; the previous settings are restored afterwards (only when
    fitting from the main thread: the settings are process-wide).
"""

_ATTRIBUTES = """
    Attributes
    ----------
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape ``(n_units_i, n_units_{i+1})`` (MLPClassifier's
        layout), full width: removed neurons show as zero rows/columns.
    intercepts_ : list of ndarray
        Bias vectors.
    network_ : torch.nn.Module
        The compacted network (dead neurons and features physically removed,
        constant neurons folded into biases, float64) that ``predict`` runs.
    sparsity_ : float
        Fraction of weight entries (biases excluded) that are exactly zero.
    active_neurons_ : list of int
        Live neurons per hidden layer.
    support_ : ndarray of shape (n_features_in_,), dtype=bool
        Input features the network still reads.
    feature_importances_ : ndarray of shape (n_features_in_,)
        Norm of each input feature's outgoing weights into live neurons (zero
        for removed features), so ``SelectFromModel`` works.
    loss_curve_ : list of float
        Objective (mean loss + penalty) after every epoch.
    loss_ : float
        Last value of ``loss_curve_``.
    best_loss_ : float or None
        Best objective seen (None with early stopping).
    validation_scores_ : list of float or None
        Validation score per epoch (early stopping only).
    best_validation_score_ : float or None
        Best validation score (early stopping only).
    n_iter_ : int
        Number of epochs run.
    t_ : int
        Number of training samples seen.
    n_layers_ : int
        Number of layers of units, inputs and outputs included.
    n_outputs_ : int
        Number of outputs.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the input features, when ``X`` has string column names.
"""


class GroupLassoMLPClassifier(GroupSparseClassifierMixin, BaseGroupSparseMLP):
    __doc__ = (
        """MLP classifier trained with a group-sparse penalty on neurons and features.

    An over-sized MLP is trained by proximal mini-batch steps on cross-entropy
    plus a (sparse) group lasso. Whole neurons and input features reach exactly
    zero and are removed from the network that ``predict`` runs.
    """
        + _PARAMETERS
        + _ATTRIBUTES
        + """
    classes_ : ndarray
        Class labels.

    See Also
    --------
    GroupLassoMLPRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : The dense peer.

    References
    ----------
    S. Scardapane, D. Comminiello, A. Hussain, A. Uncini. Group sparse
    regularization for deep neural networks. Neurocomputing 241, 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgroupsparse import GroupLassoMLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GroupLassoMLPClassifier((32,), alpha=1e-3, max_iter=30,
    ...                               random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.9
    True
    >>> clf.active_neurons_[0] <= 32
    True
    """
    )


class GroupLassoMLPRegressor(GroupSparseRegressorMixin, BaseGroupSparseMLP):
    __doc__ = (
        """MLP regressor trained with a group-sparse penalty on neurons and features.

    The loss is ``1/2 * sum over outputs of the squared error``, averaged over
    samples; with ``hidden_layer_sizes=()`` and ``penalty="group_lasso"`` the
    model is scikit-learn's ``MultiTaskLasso`` with
    ``alpha_mtl = alpha * sqrt(n_outputs)``.
    """
        + _PARAMETERS
        + _ATTRIBUTES
        + """
    See Also
    --------
    GroupLassoMLPClassifier : The classifier.
    sklearn.neural_network.MLPRegressor : The dense peer.

    Examples
    --------
    >>> import numpy as np
    >>> from skgroupsparse import GroupLassoMLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5))
    >>> y = X[:, 0] - 2 * X[:, 1]
    >>> reg = GroupLassoMLPRegressor((), alpha=0.05, optimizer="sgd",
    ...                              learning_rate_init=0.1, momentum=0.0,
    ...                              batch_size=200, max_iter=300,
    ...                              random_state=0).fit(X, y)
    >>> reg.support_
    array([ True,  True, False, False, False])
    """
    )
