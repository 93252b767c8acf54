"""ShrinkNet estimators: a switch on every neuron and feature, dead ones removed."""

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
from skgroupsparse._sklearn import Interval, Options, StrOptions
from skgroupsparse.groups import build_switch_group_map
from skgroupsparse.network import SWITCH_INITS, SparseMLP
from skgroupsparse.penalties import (
    L0,
    ElasticNet,
    LHalf,
    RowwiseComposite,
    TransformedL1,
)
from skgroupsparse.training import SignVarianceDetector

__all__ = [
    "ShrinkNetClassifier",
    "ShrinkNetRegressor",
    "SWITCH_DEATHS",
    "SWITCH_PENALTIES",
]

#: how a switch dies: exact zeros of the l1 prox, or ShrinkNets' detector
SWITCH_DEATHS = ("prox", "sign_variance")
#: penalties on the switches (the nonconvex ones: network slimming, Bui et al.)
SWITCH_PENALTIES = ("l1", "tl1", "l_half", "l0")

_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_hidden_layers,), default=(100,)
        Starting width of each hidden layer; ``()`` gives the linear (or
        logistic) model ``A diag(beta) x`` of the ShrinkNets paper.
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers.
    alpha : float or array-like of shape (n_hidden_layers + 1,), default=1e-3
        Strength ``lambda`` of ``lambda * ||beta||_1`` on the switches, per
        sample (the loss is a mean). A sequence gives ``alpha[0]`` to the
        input-feature switches and ``alpha[k]`` to those of hidden layer ``k``.
    alpha2 : float, default=1e-4
        Strength ``lambda_2`` of ``lambda_2 * ||W||_p^p`` on the weights (biases
        and switches excluded). With ``alpha2 = 0`` the objective has no
        minimum: ``beta / c`` and ``c W`` give the same function with a smaller
        penalty (Proposition A.3 of the paper), so switches shrink while the
        weights grow; keep it positive.
    p : {1, 2}, default=2
        Exponent of the weight penalty (``p=1`` also sparsifies single
        weights).
    switch_penalty : {"l1", "tl1", "l_half", "l0"}, default="l1"
        Penalty on the switches, times ``alpha``: ``l1`` (ShrinkNets),
        or the nonconvex ``tl1`` (``(a + 1)|beta| / (a + |beta|)`` with ``a =
        tl1_a``), ``l_half`` (``|beta|^(1/2)``) or ``l0`` (the number of live
        switches), the penalties of nonconvex network slimming (Bui et al.
        2021), each applied by its exact prox (in Adam's metric too). The
        nonconvex ones need ``switch_death="prox"``.
    tl1_a : float > 0, default=1.0
        Shape of ``switch_penalty="tl1"``.
    switch_death : {"prox", "sign_variance"}, default="prox"
        ``prox``: the switches' l1 penalty is applied by its proximal map, so
        switches reach exactly zero. ``sign_variance``: as in the paper's
        experiments, the l1 penalty is a subgradient and a switch dies (for
        good) when the variance of its sign exceeds ``threshold``.
    inertia : float in [0, 1), default=0.99
        Decay ``gamma`` of the sign statistics (``sign_variance``); ``0`` kills
        a switch at its first sign change. Lower is more aggressive.
    threshold : float, default=0.5
        Sign-variance threshold ``tau`` (``sign_variance``). Lower is more
        aggressive.
    switch_init : {"ones", "uniform", "normal"}, default="ones"
        Initial switches: ones (the network starts as the Glorot-initialised
        plain MLP), ``U(-1, 1)`` (the paper's experiments) or ``N(0, 1)`` (the
        paper's text). Under the l1 prox a switch that starts near zero can die
        before the data has had a say, which is why ones is the default.
    remove_dead : bool, default=True
        Physically remove dead neurons and features while training (see
        ``remove_every``): their weights, switches, and the optimizer state on
        them are sliced away, so later epochs run a smaller network. Training
        goes on exactly as on the full network with those units held at zero.
        Both penalties are elementwise, so removal never changes the kept
        coordinates' steps; it does drop the ``alpha2`` penalty of the weights
        behind a dead switch from the objective.
"""

_NOTES = """
    Layer ``l`` computes ``act(W_l (beta_{l-1} * h_{l-1}) + b_l)``: the switch
    scales the layer's input, as in the paper's theory (the authors' code puts
    it before the activation of the previous layer instead; the two agree for
    positive switches and ReLU). A zero switch silences its unit for any
    activation, and the switches fold exactly into the weights
    (``W_l diag(beta_{l-1})``): ``coefs_`` and ``network_`` hold the folded
    weights, no switch layer is left.

    The objective is ``mean loss + alpha ||beta||_1 + alpha2 ||W||_p^p``. In
    the linear case with unit-norm columns it equals the group-lasso objective
    with group weights 1 (Proposition A.1; the paper's proof defines ``beta_j``
    as the squared column norm, which breaks it: the norm itself is right).
    With ``p = 2``, minimising over the free scale of each switch and the
    weights it scales gives, per unit, ``1.5 * (2 alpha^2 alpha2)^(1/3) *
    ||w_j||^(2/3)`` on the folded column ``w_j``: a concave group penalty,
    which shrinks large groups less than the group lasso does. At every
    stationary point with a live switch, ``alpha |beta_j| = p * alpha2 *
    ||W[:, j]||_p^p`` (the balance of the two penalties).
"""


_SWITCH_ATTRIBUTES = """    switches_ : list of ndarray
        ``switches_[0]`` over the input features, ``switches_[k]`` over hidden
        layer ``k``, at the original widths (removed units are zero). They are
        already folded into ``coefs_``.
"""


class _ShrinkNetMLP(BaseGroupSparseMLP):
    """The ShrinkNet family: switches with an l1 penalty, weights with l_p^p."""

    _parameter_constraints: dict = {
        **BaseGroupSparseMLP._parameter_constraints,
        "alpha2": [Interval(Real, 0, None, closed="left")],
        "p": [Options(Integral, {1, 2})],
        "switch_death": [StrOptions(set(SWITCH_DEATHS))],
        "switch_penalty": [StrOptions(set(SWITCH_PENALTIES))],
        "tl1_a": [Interval(Real, 0, None, closed="neither")],
        "inertia": [Interval(Real, 0, 1, closed="left")],
        "threshold": [Interval(Real, 0, None, closed="neither")],
        "switch_init": [StrOptions(set(SWITCH_INITS))],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        alpha=1e-3,
        alpha2=1e-4,
        p=2,
        switch_penalty="l1",
        tl1_a=1.0,
        switch_death="prox",
        inertia=0.99,
        threshold=0.5,
        switch_init="ones",
        remove_dead=True,
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
        self.alpha2 = alpha2
        self.p = p
        self.switch_penalty = switch_penalty
        self.tl1_a = tl1_a
        self.switch_death = switch_death
        self.inertia = inertia
        self.threshold = threshold
        self.switch_init = switch_init

    def _build_network(self, layer_sizes, generator, dtype, device):
        net = SparseMLP(
            layer_sizes, self.activation, dtype=dtype, device=device, switches=True
        )
        net.reset_parameters(generator, switch_init=self.switch_init)
        return net

    def _build_group_map(self, layout):
        return build_switch_group_map(layout)

    def _switch_alpha(self, dtype, device) -> torch.Tensor:
        alpha = self._alpha_per_unit_layer(len(self._hidden_sizes()))
        return torch.as_tensor(alpha, dtype=dtype, device=device)

    def _build_penalty(self, group_map, dtype, device):
        # switch chunks: alpha ||beta||_1 by prox (or by the detector's
        # subgradient); weight rows: alpha2 ||W||_p^p
        alpha = self._switch_alpha(dtype, device)[
            group_map.unit_layer.clamp(max=len(self._hidden_sizes()))
        ]
        switch = group_map.switch.to(device)
        zero = torch.zeros_like(alpha)
        alpha2 = torch.full_like(alpha, float(self.alpha2))
        p = int(self.p)
        if self.switch_penalty != "l1":
            if self.switch_death != "prox":
                raise ValueError(
                    f"switch_penalty={self.switch_penalty!r} needs "
                    "switch_death='prox' (the sign-variance detector runs the l1 "
                    "subgradient)"
                )
            weights = ElasticNet(
                alpha2[~switch] if p == 1 else zero[~switch],
                alpha2[~switch] if p == 2 else zero[~switch],
            )
            if self.switch_penalty == "tl1":
                on_switches = TransformedL1(alpha[switch], a=float(self.tl1_a))
            else:
                on_switches = {"l_half": LHalf, "l0": L0}[self.switch_penalty](
                    alpha[switch]
                )
            return RowwiseComposite(on_switches, weights, switch)
        switch_l1 = alpha if self.switch_death == "prox" else zero
        l1 = torch.where(switch, switch_l1, alpha2 if p == 1 else zero)
        l2 = torch.where(switch, zero, alpha2 if p == 2 else zero)
        return ElasticNet(l1, l2)

    def _detector_strengths(self, net) -> torch.Tensor:
        theta = net.theta.detach()
        alpha = self._switch_alpha(theta.dtype, theta.device)
        return torch.cat(
            [alpha[l].expand(size) for l, size in enumerate(net.layout.switch_sizes)]
        )

    def _build_components(self, net, group_map, dtype, device):
        if self.switch_death != "sign_variance":
            return []
        strengths = self._detector_strengths(net)
        return [SignVarianceDetector(strengths, self.inertia, self.threshold)]

    def _relaxed_params(self):
        return {"switch_death": "prox"}

    def _structure_changes(self, trainer):
        detector = trainer.component(SignVarianceDetector)
        had = "sign_variance" if detector is not None else "prox"
        if had != self.switch_death:
            return [f"switch_death (was {had!r})"]
        return []


@with_class_weight
class ShrinkNetClassifier(GroupSparseClassifierMixin, _ShrinkNetMLP):
    __doc__ = (
        """MLP classifier with a switch on every neuron and input feature (ShrinkNets).

    Every hidden neuron and every input feature has a switch ``beta``; the
    objective is cross-entropy plus ``alpha ||beta||_1 + alpha2 ||W||_p^p``.
    Switches reach zero (by the prox, or the paper's sign-variance detector)
    and the dead neurons are physically removed while training, so the
    network, and each epoch, gets smaller as it trains.
    """
        + _PARAMETERS
        + TRAINING_PARAMETERS
        + CLASS_WEIGHT_PARAMETER
        + FITTED_ATTRIBUTES
        + _SWITCH_ATTRIBUTES
        + """    classes_ : ndarray
        Class labels.

    See Also
    --------
    ShrinkNetRegressor : The regressor.
    GroupLassoMLPClassifier : The group-lasso peer.
"""
        + TRAINING_NOTES
        + _NOTES
        + """
    References
    ----------
    G. Leclerc, M. Vartak, R. Castro Fernandez, T. Kraska, S. Madden.
    Smallify: learning network size while training. arXiv 1806.03723, 2018
    (ShrinkNets).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgroupsparse import ShrinkNetClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = ShrinkNetClassifier((64,), alpha=2e-3, max_iter=30,
    ...                           random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.9
    True
    >>> clf.history_[-1]["layer_sizes"][1] < 64
    True
    """
    )


class ShrinkNetRegressor(GroupSparseRegressorMixin, _ShrinkNetMLP):
    __doc__ = (
        """MLP regressor with a switch on every neuron and input feature (ShrinkNets).

    The loss is ``1/2 * sum over outputs of the squared error``, averaged over
    samples (several targets are fitted by one network). With
    ``hidden_layer_sizes=()`` the model is the paper's multi-target linear
    regression ``A diag(beta) x``, a non-convex relative of the group lasso
    over input features.
    """
        + _PARAMETERS
        + TRAINING_PARAMETERS
        + FITTED_ATTRIBUTES
        + _SWITCH_ATTRIBUTES
        + """
    See Also
    --------
    ShrinkNetClassifier : The classifier.
    GroupLassoMLPRegressor : The group-lasso peer.
"""
        + TRAINING_NOTES
        + _NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from skgroupsparse import ShrinkNetRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 6))
    >>> Y = np.c_[X[:, 0] - 2 * X[:, 1], X[:, 1] + X[:, 0]]
    >>> reg = ShrinkNetRegressor((), alpha=0.05, alpha2=0.01,
    ...                          learning_rate_init=0.01, max_iter=200,
    ...                          random_state=0).fit(X, Y)
    >>> reg.support_
    array([ True,  True, False, False, False, False])
    """
    )
