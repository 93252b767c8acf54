"""Group-lasso MLP estimators: networks that learn their own width."""

from __future__ import annotations

from numbers import Integral, Real

import torch

from skgroupsparse._base import (
    CLASS_WEIGHT_PARAMETER,
    FITTED_ATTRIBUTES,
    TRAINING_NOTES,
    TRAINING_PARAMETERS,
    BaseGroupSparseMLP,
    GroupSparseClassifierMixin,
    GroupSparseRegressorMixin,
    with_class_weight,
)
from skgroupsparse._sklearn import Interval, StrOptions
from skgroupsparse.groups import GROUP_FAMILIES, build_group_map
from skgroupsparse.network import SparseMLP
from skgroupsparse.penalties import (
    PENALTIES,
    GroupLasso,
    make_penalty,
)
from skgroupsparse.training import SplitVariable

__all__ = ["GroupLassoMLPClassifier", "GroupLassoMLPRegressor"]

# the nonconvex sparse group lasso: name -> its nonconvex elementwise part
_SPLIT_ONLY = {
    "sparse_group_tl1": "tl1",
    "sparse_group_l0": "l0",
    "sparse_group_l1_l2": "l1_l2",
}

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
    penalty : {"group_lasso", "sparse_group_lasso", "l1", "tl1", "l0", "l_half", \
"l1_l2", "group_l0", "group_tl1"}, default="group_lasso"
        ``group_lasso``: ``alpha * sum_g sqrt(|g|) ||w_g||_2``;
        ``sparse_group_lasso``: ``alpha * (l1_ratio ||w||_1 + (1 - l1_ratio)
        sum_g sqrt(|g|) ||w_g||_2)``; ``l1``: ``alpha * ||w||_1`` on the grouped
        weights. Nonconvex (Dinh and Xin; Bui et al.): ``tl1``: ``alpha * sum_i
        (a + 1)|w_i| / (a + |w_i|)`` with ``a = tl1_a``; ``l0``: ``alpha *
        ||w||_0``; ``l_half``: ``alpha * sum_i |w_i|^(1/2)`` (all three on the
        grouped weights, elementwise); ``l1_l2``: ``alpha * sum_g (||w_g||_1 -
        l1_l2_weight ||w_g||_2)``; ``group_l0``: ``alpha`` times the number of
        live groups; ``group_tl1``: ``alpha * sum_g sqrt(|g|) rho_a(||w_g||_2)``.
        Every prox is closed form; ``l1_l2`` and ``group_tl1`` have none in
        Adam's metric and need ``optimizer="sgd"``, ``prox="decoupled"`` or
        ``solver="rvsm"``. The nonconvex sparse group lasso (Bui et al. 2021),
        ``alpha * ((1 - l1_ratio) sum_g sqrt(|g|) ||w_g||_2 + l1_ratio P(w))``
        with ``P`` TL1, l0 or l1 - l2: ``sparse_group_tl1``,
        ``sparse_group_l0``, ``sparse_group_l1_l2`` (``solver="rvsm"`` only: the
        group term takes the prox steps, ``P`` the split variable; l1 - l2 acts
        per group here, where Bui et al. apply it to a whole layer).
    l1_ratio : float in [0, 1], default=0.5
        Mix of the sparse group lasso.
    tl1_a : float > 0, default=1.0
        Shape of the transformed l1 penalties (``tl1``, ``group_tl1``): small
        ``a`` is close to l0, large ``a`` to l1.
    l1_l2_weight : float in (0, 1], default=1.0
        Weight of the subtracted l2 norm of ``l1_l2``.
    solver : {"prox", "rvsm"}, default="prox"
        ``prox``: a proximal step on the penalty after every optimizer step.
        ``rvsm``: the relaxed variable splitting method (Dinh and Xin 2020):
        the optimizer minimises ``loss(w) + rvsm_beta / 2 ||w - u||^2`` and
        ``u = prox_{penalty / rvsm_beta}(w)`` after every step, in the identity
        metric whatever the optimizer; ``u`` is the fitted model. Not with
        ``remove_dead=True``.
    rvsm_beta : float > 0, default=1.0
        Initial coupling ``beta`` of RVSM (per sample, as ``alpha``).
    rvsm_beta_growth : float >= 1, default=1.25
        ``beta`` is multiplied by this every ``rvsm_beta_every`` epochs (Bui et
        al.'s schedule); a warm start continues from the last ``beta``.
    rvsm_beta_every : int >= 1, default=20
        Epochs between growths of ``beta``.
    groups : {"outgoing", "incoming"}, default="outgoing"
        ``outgoing``: a neuron's group is its outgoing weights and every input
        feature has a group (Scardapane et al. 2017); ``incoming``: a neuron's
        incoming weights and bias, no feature groups, output layer unpenalised.
        Biases are never penalised with ``outgoing``.
    remove_dead : bool, default=False
        Physically remove dead neurons and features while training (see
        ``remove_every``): their weights, and the optimizer state on them, are
        sliced away, so later epochs run a smaller network. A removed unit
        stays removed (without removal a zero group can revive), and the
        weights that can no longer reach the output (e.g. the incoming row of
        a unit whose outgoing group is zero) are dropped at once instead of
        shrinking slowly, so the fit differs from one without removal.
"""


class _GroupLassoMLP(BaseGroupSparseMLP):
    """The group-lasso family: penalties on neuron and feature groups."""

    _parameter_constraints: dict = {
        **BaseGroupSparseMLP._parameter_constraints,
        "penalty": [StrOptions(set(PENALTIES) | set(_SPLIT_ONLY))],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "tl1_a": [Interval(Real, 0, None, closed="neither")],
        "l1_l2_weight": [Interval(Real, 0, 1, closed="right")],
        "solver": [StrOptions({"prox", "rvsm"})],
        "rvsm_beta": [Interval(Real, 0, None, closed="neither")],
        "rvsm_beta_growth": [Interval(Real, 1, None, closed="left")],
        "rvsm_beta_every": [Interval(Integral, 1, None, closed="left")],
        "groups": [StrOptions(set(GROUP_FAMILIES))],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        alpha=1e-3,
        penalty="group_lasso",
        l1_ratio=0.5,
        tl1_a=1.0,
        l1_l2_weight=1.0,
        solver="prox",
        rvsm_beta=1.0,
        rvsm_beta_growth=1.25,
        rvsm_beta_every=20,
        groups="outgoing",
        remove_dead=False,
        optimizer="adam",
        prox="preconditioned",
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        remove_every="epoch",
        device="cpu",
    ):
        super().__init__(
            hidden_layer_sizes,
            activation,
            alpha=alpha,
            optimizer=optimizer,
            prox=prox,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            remove_dead=remove_dead,
            remove_every=remove_every,
            device=device,
        )
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.tl1_a = tl1_a
        self.l1_l2_weight = l1_l2_weight
        self.solver = solver
        self.rvsm_beta = rvsm_beta
        self.rvsm_beta_growth = rvsm_beta_growth
        self.rvsm_beta_every = rvsm_beta_every
        self.groups = groups

    def _build_network(self, layer_sizes, generator, dtype, device):
        net = SparseMLP(layer_sizes, self.activation, dtype=dtype, device=device)
        net.reset_parameters(generator)
        return net

    def _build_group_map(self, layout):
        return build_group_map(layout, self.groups)

    def _alpha_per_group(self, group_map, dtype, device):
        alpha = self._alpha_per_unit_layer(len(self._hidden_sizes()))
        return torch.as_tensor(alpha, dtype=dtype, device=device)[group_map.unit_layer]

    def _penalty_named(self, name, alpha):
        return make_penalty(
            name,
            alpha,
            float(self.l1_ratio),
            tl1_a=float(self.tl1_a),
            l1_l2_weight=float(self.l1_l2_weight),
        )

    def _build_penalty(self, group_map, dtype, device):
        per_group = self._alpha_per_group(group_map, dtype, device)
        if self.solver == "rvsm":
            # the prox steps take only the convex group term (nonconvex sparse
            # group lasso) or nothing; the penalty itself acts on u
            if self.penalty in _SPLIT_ONLY:
                return GroupLasso((1.0 - float(self.l1_ratio)) * per_group)
            return None
        if self.penalty in _SPLIT_ONLY:
            raise ValueError(
                f"penalty={self.penalty!r} (the nonconvex sparse group lasso) needs "
                "solver='rvsm'"
            )
        if (
            not PENALTIES[self.penalty].metric_prox
            and self.optimizer != "sgd"
            and self.prox == "preconditioned"
        ):
            raise ValueError(
                f"penalty={self.penalty!r} has no closed-form prox in the metric "
                f"of optimizer={self.optimizer!r} (prox='preconditioned'); use "
                "optimizer='sgd', or prox='decoupled' for the Euclidean prox after "
                "the adaptive step, or solver='rvsm'"
            )
        return self._penalty_named(self.penalty, per_group)

    def _build_components(self, net, group_map, dtype, device):
        split = self._build_split_penalty(group_map, dtype, device)
        return [] if split is None else [SplitVariable(split, **self._split_config())]

    def _build_split_penalty(self, group_map, dtype, device):
        """The penalty of RVSM's split variable, or None for plain prox steps."""
        if self.solver != "rvsm":
            return None
        if self.remove_dead:
            raise ValueError(
                "solver='rvsm' does not support remove_dead=True (the relaxed "
                "weights of a unit dead in the model are not zero)"
            )
        per_group = self._alpha_per_group(group_map, dtype, device)
        if self.penalty in _SPLIT_ONLY:
            return self._penalty_named(
                _SPLIT_ONLY[self.penalty], float(self.l1_ratio) * per_group
            )
        return self._penalty_named(self.penalty, per_group)

    def _split_config(self):
        if self.solver != "rvsm":
            return {}
        return dict(
            beta=float(self.rvsm_beta),
            growth=float(self.rvsm_beta_growth),
            every=int(self.rvsm_beta_every),
        )

    def _alpha_of_weight_layer(self, n_hidden):
        if self.groups == "incoming":
            # a neuron's incoming row of W_l belongs to layer of units l + 1;
            # the output layer has no groups
            return [*range(1, n_hidden + 1), None]
        return super()._alpha_of_weight_layer(n_hidden)

    def _relaxed_params(self):
        if self.solver != "rvsm":
            return {}
        # the split's penalties have no prox step of their own (or none in
        # Adam's metric); at alpha=0 no penalty acts, so the plain group lasso
        # names the model that trains on
        return {"solver": "prox", "penalty": "group_lasso"}

    def _structure_changes(self, trainer):
        changed = []
        if trainer.group_map.family != self.groups:
            changed.append(f"groups (was {trainer.group_map.family!r})")
        split = trainer.component(SplitVariable) is not None
        if split != (self.solver == "rvsm"):
            was = "rvsm" if split else "prox"
            changed.append(f"solver (was {was!r})")
        return changed


@with_class_weight
class GroupLassoMLPClassifier(GroupSparseClassifierMixin, _GroupLassoMLP):
    __doc__ = (
        """MLP classifier trained with a group-sparse penalty on neurons and features.

    An over-sized MLP is trained by proximal mini-batch steps on cross-entropy
    plus a (sparse) group lasso. Whole neurons and input features reach exactly
    zero and are removed from the network that ``predict`` runs.
    """
        + _PARAMETERS
        + TRAINING_PARAMETERS
        + CLASS_WEIGHT_PARAMETER
        + FITTED_ATTRIBUTES
        + """
    classes_ : ndarray
        Class labels.

    See Also
    --------
    GroupLassoMLPRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : The dense peer.
"""
        + TRAINING_NOTES
        + """
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


class GroupLassoMLPRegressor(GroupSparseRegressorMixin, _GroupLassoMLP):
    __doc__ = (
        """MLP regressor trained with a group-sparse penalty on neurons and features.

    The loss is ``1/2 * sum over outputs of the squared error``, averaged over
    samples; with ``hidden_layer_sizes=()`` and ``penalty="group_lasso"`` the
    model is scikit-learn's ``MultiTaskLasso`` with
    ``alpha_mtl = alpha * sqrt(n_outputs)``.
    """
        + _PARAMETERS
        + TRAINING_PARAMETERS
        + FITTED_ATTRIBUTES
        + """
    See Also
    --------
    GroupLassoMLPClassifier : The classifier.
    sklearn.neural_network.MLPRegressor : The dense peer.
"""
        + TRAINING_NOTES
        + """
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
