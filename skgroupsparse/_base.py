"""The scikit-learn layer shared by the estimators.

It takes scikit-learn's private helpers (``_fit_context``, the
parameter-constraint classes) from ``_sklearn``, their one import. It validates
parameters and data, turns them into tensors on the chosen device, runs
:class:`~skgroupsparse.training.ProximalTrainer` and sets the fitted
attributes. Predictions run the compacted network and come back as NumPy.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import log_expit, log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import (
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skgroupsparse import export
from skgroupsparse._sklearn import (
    Interval,
    StrOptions,
    _check_partial_fit_first_call,
    _fit_context,
)
from skgroupsparse.groups import GroupMap
from skgroupsparse.network import (
    ACTIVATIONS,
    CompactMLP,
    SparseMLP,
    compact,
    live_units,
)
from skgroupsparse.penalties import Penalty
from skgroupsparse.training import (
    OPTIMIZERS,
    PROX_MODES,
    SCHEDULES,
    LoopComponent,
    ProximalTrainer,
    SignVarianceDetector,
    SparseRows,
    SplitVariable,
    ThresholdReading,
    TrainConfig,
    choose,
    cpu_threads_for,
    dense_rows,
    optimality_residual,
    read_thresholds,
    resolve_device,
    to_device,
    training_dtype,
)

__all__ = [
    "CLASS_WEIGHT_PARAMETER",
    "FITTED_ATTRIBUTES",
    "TRAINING_NOTES",
    "TRAINING_PARAMETERS",
    "BaseGroupSparseMLP",
    "GroupSparseClassifierMixin",
    "GroupSparseRegressorMixin",
    "with_class_weight",
]

#: numpydoc of the parameters every estimator shares (after its own ones)
TRAINING_PARAMETERS = """
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
    remove_every : "epoch" or int, default="epoch"
        With ``remove_dead``: remove dead units after every epoch, or after
        every ``k`` mini-batches (and after every epoch).
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where the network trains; ``"auto"`` picks CUDA when available.
"""

#: numpydoc Notes every estimator shares (after See Also, before References)
TRAINING_NOTES = """
    Notes
    -----
    On the CPU the training step runs as fused numba kernels, compiled once and
    cached in a user cache folder (``$SKGROUPSPARSE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/skgroupsparse``, else ``~/.cache/skgroupsparse``; the
    first fit on a new installation takes a few
    seconds more). While they drive a fit, torch runs on one thread, so that
    its pool does not fight BLAS's over the cores; BLAS keeps its threads when
    a batch's matrix products need ``2**23`` multiply-adds or more and runs on
    one below that; subnormal floats are flushed to zero. The previous settings
    are restored afterwards (only when fitting from the main thread: the
    settings are process-wide).
"""


FITTED_ATTRIBUTES = """
    Attributes
    ----------
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape ``(n_units_i, n_units_{i+1})`` (MLPClassifier's
        layout), full width: removed neurons show as zero rows/columns.
    intercepts_ : list of ndarray
        Bias vectors.
    network_ : torch.nn.Module
        The compacted network (dead neurons and features physically removed,
        constant neurons folded into biases, float64) that ``predict`` runs,
        on the device the ``device`` parameter names when predicting (the CPU
        where that device is not available).
    fit_device_ : str
        The device the last fit trained on (e.g. ``"cuda:0"``). A pickled
        model holds CPU tensors whatever it was fitted on, so it loads on a
        machine without that device; a further ``fit`` with ``warm_start`` or
        ``partial_fit`` trains on the device the ``device`` parameter names
        then (``set_params(device="cpu")`` moves a GPU-fitted model).
    sparsity_ : float
        Fraction of weight entries (biases excluded) that are exactly zero.
    active_neurons_ : list of int
        Live neurons per hidden layer.
    support_ : ndarray of shape ``(n_features_in_,)``, dtype=bool
        Input features the network still reads.
    feature_importances_ : ndarray of shape ``(n_features_in_,)``
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
    history_ : list of dict
        One row per epoch: ``epoch``, ``objective``, ``live_features``,
        ``live_neurons`` (per hidden layer), ``layer_sizes`` (of the network
        being trained, which shrinks when dead units are removed),
        ``input_neurons`` (the sum over layers of their input width, averaged
        over the epoch's samples) and ``seconds`` (wall time of the epoch).
    training_cost_ : float
        The ShrinkNets paper's hardware-independent training cost: the sum over
        epochs of ``input_neurons``. Removing dead units early lowers it.
    t_ : int
        Number of training samples seen.
    n_layers_ : int
        Number of layers of units, inputs and outputs included.
    n_outputs_ : int
        Number of outputs.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
        Names of the input features, when ``X`` has string column names.
"""


_PREDICT_CHUNK = 65536


class _FitPlan(NamedTuple):
    """A training run prepared by ``_plan_fit``: what ``trainer.fit`` takes."""

    trainer: ProximalTrainer
    X: torch.Tensor
    y: torch.Tensor
    generator: torch.Generator
    max_iter: int
    validation_score: Callable[[], float] | None
    epochs_before: int


def draw_seed(rng: np.random.RandomState) -> int:
    """The seed of a fit's initialisation: the first draw of its ``rng``."""
    return int(rng.randint(np.iinfo(np.int32).max))


def _rvsm_unsupported(what: str):
    raise NotImplementedError(
        f"{what} is not available with solver='rvsm': the penalty acts on the "
        "split variable u, and the optimality conditions of the splitting "
        "objective are not implemented; use solver='prox' (or choose alpha on a "
        "grid)"
    )


def _weighted(targets: torch.Tensor, sample_weight) -> torch.Tensor:
    """``targets`` with the rows' weights as one more column (None: as is).

    The loss of every engine reads a column past the outputs as the rows'
    weights (:meth:`~skgroupsparse.network.SparseMLP.loss_and_grad`), and it
    is shuffled with the targets.
    """
    if sample_weight is None:
        return targets
    w = torch.as_tensor(sample_weight, dtype=targets.dtype, device=targets.device)
    return torch.cat([targets, w.unsqueeze(1)], dim=1)


def _to_tensor(X, dtype: torch.dtype, device: torch.device):
    """A NumPy array as a tensor; read-only arrays are copied, never aliased.

    A sparse matrix becomes :class:`~skgroupsparse.training.SparseRows`, made
    dense one mini-batch at a time.
    """
    if sp.issparse(X):
        return SparseRows(X, dtype, device)
    X = np.asarray(X)
    if not X.flags.writeable:
        X = X.copy()
    return torch.as_tensor(X, dtype=dtype, device=device)


class BaseGroupSparseMLP(BaseEstimator):
    """Common base of the group-sparse MLP estimators (not for direct use)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left"), "array-like"],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "prox": [StrOptions(set(PROX_MODES))],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "remove_dead": ["boolean"],
        "remove_every": [
            StrOptions({"epoch"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "device": [StrOptions({"cpu", "cuda", "auto"}), str],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        alpha=1e-3,
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
        remove_dead=False,
        remove_every="epoch",
        device="cpu",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.optimizer = optimizer
        self.prox = prox
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.remove_dead = remove_dead
        self.remove_every = remove_every
        self.device = device

    # ------------------------------------------------------------------
    # hooks the classifier / regressor mixins provide
    # ------------------------------------------------------------------
    def _encode_targets(self, y, incremental: bool, reuse: bool):
        """Return (targets as numpy, number of outputs, loss name)."""
        raise NotImplementedError

    def _validation_score(
        self, outputs: torch.Tensor, y_val, sample_weight=None
    ) -> float:
        raise NotImplementedError

    def _row_weights(self, y, sample_weight, incremental: bool):
        """The rows' weights of a fit: ``sample_weight`` (classifiers: times
        their classes' weights)."""
        return sample_weight

    def _checked_row_weights(self, X, y, sample_weight, incremental: bool = False):
        """:meth:`_row_weights` of validated ``(X, y)``, ``sample_weight``
        checked first (one per row, finite, non-negative); None unweighted."""
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        return self._row_weights(y, sample_weight, incremental)

    # ------------------------------------------------------------------
    # hooks the model families provide (group lasso, ShrinkNet)
    # ------------------------------------------------------------------
    def _build_network(self, layer_sizes, generator, dtype, device) -> SparseMLP:
        """A freshly initialised network for ``layer_sizes``."""
        raise NotImplementedError

    def _build_group_map(self, layout) -> GroupMap:
        raise NotImplementedError

    def _build_penalty(self, group_map: GroupMap, dtype, device) -> Penalty | None:
        """The penalty of the prox steps (None: no prox steps, RVSM only)."""
        raise NotImplementedError

    def _threshold_penalty(self, group_map: GroupMap, dtype, device) -> Penalty:
        """The penalty whose zero thresholds choose alpha (``alpha_max``)."""
        if self._split_config():
            _rvsm_unsupported("alpha_max and the target-sparsity search")
        return self._build_penalty(group_map, dtype, device)

    def _split_config(self) -> dict:
        """RVSM's settings (``SplitVariable``'s ``beta``, ...), if any."""
        return {}

    def _build_components(
        self, net: SparseMLP, group_map: GroupMap, dtype, device
    ) -> list[LoopComponent]:
        """What the family hooks into the loop (RVSM, a death detector)."""
        return []

    def _relaxed_params(self) -> dict:
        """Family parameters of a model trained on without penalty or components."""
        return {}

    def _structure_changes(self, trainer: ProximalTrainer) -> list[str]:
        """Family parameters that a warm start cannot change, if changed."""
        return []

    # ------------------------------------------------------------------
    # parameter helpers
    # ------------------------------------------------------------------
    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        for s in sizes:
            if not isinstance(s, Integral) or isinstance(s, bool) or s < 1:
                raise ValueError(
                    f"hidden_layer_sizes must contain positive integers, got {sizes!r}"
                )
        return tuple(int(s) for s in sizes)

    def _alpha_per_unit_layer(self, n_hidden: int) -> np.ndarray:
        alpha = np.asarray(self.alpha, dtype=float)
        n = n_hidden + 1
        if alpha.ndim == 0:
            alpha = np.full(n, float(alpha))
        elif alpha.ndim != 1 or alpha.shape[0] != n:
            raise ValueError(
                f"alpha must be a float or a sequence of {n} values (one for the "
                f"input features, then one per hidden layer), got {self.alpha!r}"
            )
        if not np.all(np.isfinite(alpha)) or np.any(alpha < 0):
            raise ValueError(
                f"alpha must be finite and non-negative, got {self.alpha!r}"
            )
        return alpha

    def _alpha_of_weight_layer(self, n_hidden: int) -> list:
        """Per weight matrix, the entry of the per-layer ``alpha`` that penalises it.

        ``None`` for a matrix no ``alpha`` reaches. Here: ``W_l`` reads layer
        of units ``l`` and is penalised by its ``alpha`` (outgoing groups,
        switches).
        """
        return list(range(n_hidden + 1))

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"Got `batch_size` less than 1 or larger than sample size. It is going "
                f"to be clipped to {n_samples}",
                UserWarning,
                stacklevel=3,
            )
        return min(int(self.batch_size), n_samples)

    def _remove_every(self) -> int | str:
        every = self.remove_every
        if every == "epoch":
            return every
        if isinstance(every, (bool, np.bool_)):
            raise ValueError(
                f"remove_every must be 'epoch' or a number of batches, got {every!r}"
            )
        return int(every)

    def _config(self, n_samples: int, loss: str) -> TrainConfig:
        return TrainConfig(
            loss=loss,
            optimizer=self.optimizer,
            learning_rate_init=float(self.learning_rate_init),
            learning_rate=self.learning_rate,
            power_t=float(self.power_t),
            momentum=float(self.momentum),
            nesterovs_momentum=bool(self.nesterovs_momentum),
            beta_1=float(self.beta_1),
            beta_2=float(self.beta_2),
            epsilon=float(self.epsilon),
            batch_size=self._batch_size(n_samples),
            tol=float(self.tol),
            n_iter_no_change=int(self.n_iter_no_change),
            shuffle=bool(self.shuffle),
            prox=self.prox,
            verbose=bool(self.verbose),
            remove_every=self._remove_every() if self.remove_dead else None,
        )

    # ------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------
    def _validate_X_y(self, X, y, reset: bool):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=not isinstance(self, ClassifierMixin),
            dtype=(np.float64, np.float32),
            accept_sparse="csr",
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets: class labels (classifier) or real values (regressor).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows: every mini-batch's loss is the weighted mean
            over its rows (scikit-learn's MLP's rule); the penalty is not
            weighted, so ``alpha`` keeps its scale. None: every row weighs 1.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with self._restore_state_on_failure():
            return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @contextlib.contextmanager
    def _restore_state_on_failure(self):
        """A fit that raises leaves the previously fitted state as it was."""
        snapshot = dict(vars(self))
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(snapshot)
            raise

    def _fit(
        self,
        X,
        y,
        incremental: bool,
        *,
        stop_rule: Callable[[ProximalTrainer], bool] | None = None,
        keep_optimizer: bool = False,
        freeze_support: bool = False,
        validate_on: str = "score",
        sample_weight=None,
        settle: int | None = None,
    ):
        """The fit behind ``fit`` and ``partial_fit``.

        A meta-estimator's training passes ``stop_rule``, called after every
        mini-batch, which ends the training once it returns True (the target
        search's check), and ``keep_optimizer``, with which a warm-started
        fit goes on with the optimizer state of the last one instead of a new
        one. Neither is part of the fitted model. ``freeze_support`` (a
        warm-started fit of :func:`~skgroupsparse.regularization.relaxed_fit`)
        trains the fitted network on without penalty or components, every
        zero weight and switch held at zero
        (:meth:`~skgroupsparse.training.ProximalTrainer.freeze_support`).
        ``validate_on="loss"`` makes early stopping watch the mean loss on the
        held-out rows instead of the score (smoother than an accuracy on a
        few rows). ``settle`` ends a warm stage of a path once its support and
        objective have settled for that many epochs
        (:meth:`~skgroupsparse.training.ProximalTrainer.settled`).
        """
        # the whole fit, set-up and compaction included, under one owner of the
        # cores
        with self._cpu_threads():
            return self._fit_body(
                X,
                y,
                incremental,
                stop_rule,
                keep_optimizer,
                freeze_support,
                validate_on,
                sample_weight,
                settle,
            )

    def _cpu_threads(self):
        """The thread rule of this estimator's fits (``cpu_threads_for``).

        A device that cannot be had is reported by the fit itself.
        """
        try:
            kernels = choose("auto", resolve_device(self.device)).drives_cpu_kernels
        except ValueError:
            kernels = False
        return cpu_threads_for(kernels)

    def _fit_body(
        self,
        X,
        y,
        incremental: bool,
        stop_rule,
        keep_optimizer: bool,
        freeze_support: bool,
        validate_on: str,
        sample_weight=None,
        settle: int | None = None,
    ):
        plan = self._plan_fit(
            X,
            y,
            incremental,
            keep_optimizer,
            freeze_support,
            validate_on,
            sample_weight=sample_weight,
            settle=settle,
        )
        stopped = self._run_plan(plan, incremental, stop_rule, freeze_support)
        return self._end_fit(plan, stopped, incremental)

    def _run_plan(
        self,
        plan: _FitPlan,
        incremental: bool = False,
        stop_rule=None,
        freeze_support: bool = False,
    ) -> bool:
        """Train a plan of :meth:`_plan_fit`; whether it stopped early."""
        trainer = plan.trainer
        trainer.stop_rule = stop_rule
        try:
            return trainer.fit(
                plan.X,
                plan.y,
                plan.generator,
                plan.max_iter,
                plan.validation_score,
                incremental,
            )
        finally:
            trainer.stop_rule = None
            if freeze_support:
                # the support was held for this fit only; the fitted model is
                # an ordinary one of the relaxed parameters
                trainer.components = []

    def _plan_fit(
        self,
        X,
        y,
        incremental: bool,
        keep_optimizer: bool = False,
        freeze_support: bool = False,
        validate_on: str = "score",
        full_width: bool = False,
        sample_weight=None,
        settle: int | None = None,
    ) -> _FitPlan:
        """Everything a training run needs, before it runs: the plan of a fit.

        The data are validated and encoded, the trainer built (or copied from
        the last fit for a warm start or ``partial_fit``) with its penalty and
        components, the early-stopping split made. The trainer is a copy, so
        the fitted model is not trained on, but the data's attributes
        (``n_features_in_``, ``classes_``) and a new fit's seed are set: callers
        restore the estimator if the run fails (``_restore_state_on_failure``);
        :meth:`_end_fit` commits. With
        ``full_width`` a warm start puts removed units back at zero first
        (:meth:`~skgroupsparse.training.ProximalTrainer.expand`): the batched
        engine trains networks of one architecture.
        """
        hidden = self._hidden_sizes()
        n_hidden = len(hidden)
        self._alpha_per_unit_layer(n_hidden)  # fail early on a bad alpha
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        reuse = hasattr(self, "_trainer") and (self.warm_start or incremental)
        X, y = self._validate_X_y(X, y, reset=not reuse)
        sample_weight = self._checked_row_weights(X, y, sample_weight, incremental)
        targets, n_outputs, loss = self._encode_targets(y, incremental, reuse)
        device = resolve_device(self.device)
        # a warm start or partial_fit goes on in its model's dtype
        dtype = self._trainer.net.theta.dtype if reuse else training_dtype()
        rng = check_random_state(self.random_state)
        layer_sizes = (X.shape[1], *hidden, n_outputs)

        if reuse:
            previous = self._trainer.original_sizes
            if previous != layer_sizes:
                raise ValueError(
                    "warm_start and partial_fit need the same architecture as the "
                    f"previous fit: layer sizes were {previous}, now {layer_sizes}"
                )
            if self._trainer.net.theta.device == device:
                trainer = self._trainer.copy()
            else:  # the model goes on where the device parameter says now
                trainer = to_device(self._trainer, device)
            trainer.config = self._config(X.shape[0], loss)
            if full_width:
                trainer.expand()
            if freeze_support:
                trainer.freeze_support()
            else:
                self._check_reusable(incremental)
                trainer.penalty = self._build_penalty(trainer.group_map, dtype, device)
                trainer.renew_components(
                    self._build_components(
                        trainer.net, trainer.group_map, dtype, device
                    )
                )
            if not incremental:
                # a warm-started fit: new optimizer state and stopping counters;
                # loss_curve_ and n_iter_ go on, as in MLPClassifier. A target
                # search continues one optimisation over its alphas and keeps
                # the optimizer state: a fresh Adam's first step, with its tiny
                # metric, would zero many weights at once.
                if not keep_optimizer:
                    trainer.reset_optimizer()
                trainer.lr = float(self.learning_rate_init)
                trainer.no_improvement_count = 0
                trainer.best_loss = float("inf")
                trainer.best_validation_score = -float("inf")
                trainer._best = None
            seed = self._seed + trainer.n_iter + trainer.t
        else:
            self._seed = draw_seed(rng)
            seed = self._seed
            generator = torch.Generator().manual_seed(seed)
            net = self._build_network(layer_sizes, generator, dtype, device)
            group_map = self._build_group_map(net.layout).to(device)
            trainer = ProximalTrainer(
                net,
                group_map,
                self._build_penalty(group_map, dtype, device),
                self._config(X.shape[0], loss),
                components=self._build_components(net, group_map, dtype, device),
            )
        generator = torch.Generator().manual_seed(seed + 1)
        # the stage rule of a path, for this fit only (a copy carries it)
        trainer.settle_epochs = settle

        validation_score = None
        X_train, y_train, w_train = X, targets, sample_weight
        if self.early_stopping:
            stratify = (
                targets
                if loss == "softmax" or n_outputs == 1 and loss == "logistic"
                else None
            )
            weights = [] if sample_weight is None else [sample_weight]
            X_train, X_val, y_train, y_val, *w_split = train_test_split(
                X,
                targets,
                *weights,
                random_state=rng,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            w_train, w_val = w_split if w_split else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            # the held-out part is made dense (a sparse one too: a fraction)
            X_val_t = dense_rows(_to_tensor(X_val, dtype, device))
            if validate_on == "loss":
                Y_val_t = _weighted(
                    self._targets_tensor(y_val, loss, n_outputs, dtype, device), w_val
                )

                def validation_score():
                    net = trainer.net
                    grad = torch.zeros_like(net.theta.detach())
                    X_cols = trainer.input_columns(X_val_t)
                    return -float(net.loss_and_grad(X_cols, Y_val_t, loss, grad))

            else:

                def validation_score():
                    with torch.no_grad():
                        return self._validation_score(
                            trainer.outputs(X_val_t), y_val, w_val
                        )

        X_t = _to_tensor(X_train, dtype, device)
        # weighted: the rows' weights ride along as one more target column
        y_t = _weighted(
            self._targets_tensor(y_train, loss, n_outputs, dtype, device), w_train
        )
        max_iter = 1 if incremental else int(self.max_iter)
        return _FitPlan(
            trainer, X_t, y_t, generator, max_iter, validation_score, trainer.n_iter
        )

    def _end_fit(self, plan: _FitPlan, stopped: bool, incremental: bool):
        """Commit a training run of :meth:`_plan_fit` to the fitted model."""
        trainer = plan.trainer
        ran_out = trainer.n_iter - plan.epochs_before >= self.max_iter
        if not incremental and not stopped and ran_out:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._set_fitted(trainer)
        return self

    def _check_reusable(self, incremental: bool) -> None:
        """warm_start / partial_fit continue a model: what defines it must stay.

        A warm-started ``fit`` builds a new optimizer, so it may change
        ``optimizer``; ``partial_fit`` continues the optimizer's state too.
        """
        trainer = self._trainer
        changed = []
        if trainer.net.activation != self.activation:
            changed.append(f"activation (was {trainer.net.activation!r})")
        changed += self._structure_changes(trainer)
        if incremental and trainer.optimizer.name != self.optimizer:
            changed.append(f"optimizer (was {trainer.optimizer.name!r})")
        if changed:
            raise ValueError(
                "warm_start and partial_fit continue the previous model, but these "
                f"parameters changed: {', '.join(changed)}. Fit a new model "
                "(warm_start=False) instead."
            )

    @staticmethod
    def _targets_tensor(y, loss, n_outputs, dtype, device):
        """Targets as a float matrix (one-hot rows for the softmax loss)."""
        y = np.asarray(y)
        if loss == "softmax":
            y = torch.as_tensor(y, dtype=torch.long)
            return torch.nn.functional.one_hot(y, n_outputs).to(dtype).to(device)
        if y.ndim == 1:
            y = y[:, None]
        return torch.as_tensor(y.astype(np.float64), dtype=dtype, device=device)

    def _set_fitted(self, trainer: ProximalTrainer) -> None:
        """Commit a finished training run to the fitted attributes.

        Everything is read from the network at its original widths with the
        switches folded into the weights (removed units are zeros there).
        """
        weights, biases, switches = trainer.full_parameters()
        activation = trainer.net.activation
        masks = live_units(weights)
        small_w, small_b, _ = compact(
            [W.double() for W in weights], [b.double() for b in biases], activation
        )
        self._trainer = trainer
        self.fit_device_ = str(trainer.net.theta.device)
        self.coefs_ = [W.t().cpu().numpy().copy() for W in weights]
        self.intercepts_ = [b.cpu().numpy().copy() for b in biases]
        if switches:
            self.switches_ = [beta.cpu().numpy().copy() for beta in switches]
        self.network_ = CompactMLP.from_weights(small_w, small_b, activation, masks[0])
        self.n_iter_ = trainer.n_iter
        self.t_ = trainer.t
        self.n_layers_ = len(weights) + 1
        self.n_outputs_ = weights[-1].shape[0]
        self.loss_curve_ = list(trainer.loss_curve)
        self.loss_ = self.loss_curve_[-1]
        self.history_ = [dict(row) for row in trainer.history]
        self.training_cost_ = float(
            sum(row["input_neurons"] for row in trainer.history)
        )
        if self.early_stopping:
            self.validation_scores_ = list(trainer.validation_scores)
            self.best_validation_score_ = trainer.best_validation_score
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = trainer.best_loss
        n_weights = sum(W.numel() for W in weights)
        self.sparsity_ = float(sum(int((W == 0).sum()) for W in weights)) / max(
            n_weights, 1
        )
        self.active_neurons_ = [int(m.sum()) for m in masks[1:-1]]
        self.support_ = masks[0].cpu().numpy()
        live_rows = masks[1]
        W1 = weights[0] * live_rows.unsqueeze(1).to(weights[0].dtype)
        self.feature_importances_ = (
            torch.linalg.vector_norm(W1, dim=0).cpu().numpy().astype(np.float64)
        )

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------
    def _raw_outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(
            self, X, dtype=(np.float64, np.float32), accept_sparse="csr", reset=False
        )
        param = next(self.network_.parameters())
        device = self._prediction_device()
        if param.device != device:  # the network goes where `device` says now
            self.network_ = self.network_.to(device)
            param = next(self.network_.parameters())
        out = []
        chunk = _PREDICT_CHUNK
        if sp.issparse(X):  # each chunk is made dense: at most 2**22 entries
            chunk = max(1, min(chunk, 2**22 // max(1, X.shape[1])))
        with torch.no_grad():
            for start in range(0, X.shape[0], chunk):
                Xc = dense_rows(
                    _to_tensor(X[start : start + chunk], param.dtype, param.device)
                )
                out.append(self.network_(Xc).cpu().numpy())
        return np.concatenate(out, axis=0)

    def to_sklearn(self):
        """The learned network as a fitted scikit-learn MLP.

        See :func:`skgroupsparse.export.to_sklearn`: an ``MLPClassifier`` or
        ``MLPRegressor`` whose predictions equal this model's; it pickles and
        predicts where torch is not installed.

        Returns
        -------
        MLPClassifier or MLPRegressor
            The compacted network in scikit-learn's MLP.
        """
        return export.to_sklearn(self)

    def to_onnx(self, path=None, *, dtype: str = "float32"):
        """The compacted network as an ONNX model (saved to ``path`` if given).

        See :func:`skgroupsparse.export.to_onnx` (needs ``onnx``: ``pip
        install "skgroupsparse[onnx]"``).

        Parameters
        ----------
        path : str or path-like, default=None
            Where to save it; None: only returned.
        dtype : {"float32", "float64"}, default="float32"
            The type of the input, the weights and the outputs.

        Returns
        -------
        onnx.ModelProto
            The model.
        """
        return export.to_onnx(self, path, dtype=dtype)

    def _prediction_device(self) -> torch.device:
        """The ``device`` parameter's device, or the CPU where it cannot be had.

        A model fitted on a GPU and loaded on a machine without one predicts
        on the CPU (its pickle holds CPU tensors; ``__setstate__`` warns).
        """
        try:
            return resolve_device(self.device)
        except ValueError:
            return torch.device("cpu")

    def __deepcopy__(self, memo):
        # a copy in memory stays where the model is: only pickles go to the CPU
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        state = dict(vars(self))
        history = state.pop("history_", None)
        vars(new).update(copy.deepcopy(state, memo))
        if history is not None:
            # rows of numbers and lists of numbers: copied as such, which is
            # much faster than deepcopy's generic walk over hundreds of rows
            new.history_ = [
                {k: list(v) if isinstance(v, list) else v for k, v in row.items()}
                for row in history
            ]
        return new

    def __getstate__(self):
        state = super().__getstate__()
        if "_trainer" in state:
            # every tensor copied to the CPU: loading never needs the fit's
            # device (fit_device_ records it)
            state = to_device(state, "cpu")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "fit_device_" not in state:
            return
        try:
            resolve_device(self.device)
        except ValueError:
            warnings.warn(
                f"This model was fitted on {self.fit_device_} with "
                f"device={self.device!r}, which is not available here: it "
                "predicts on the CPU. set_params(device='cpu') to train it "
                "further here.",
                UserWarning,
                stacklevel=2,
            )

    def optimality_residual(self, X, y, sample_weight=None) -> float:
        """Distance of 0 to the subdifferential of the training objective at the fit.

        Computed on ``(X, y)`` in full batch: the largest, over groups, of the
        distance between minus the loss gradient and ``alpha`` times the
        penalty's subdifferential, and over unpenalised coordinates, of the
        absolute gradient. Zero exactly at a stationary point.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, usually the training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            The rows' weights, as ``fit`` took them: the objective is the
            weighted mean loss (a classifier's ``class_weight`` multiplies
            them, as in ``fit``).

        Returns
        -------
        residual : float
            The optimality residual; small values mean the fit converged.
        """
        tr, X_t, y_t, loss = self._full_batch(X, y, sample_weight)
        if tr.component(SplitVariable) is not None:
            _rvsm_unsupported("optimality_residual")
        return optimality_residual(
            tr.net,
            tr.group_map,
            tr.penalty,
            X_t,
            y_t,
            loss,
            sizes=tr.group_sizes,
            detector=tr.component(SignVarianceDetector),
        )

    def _full_batch(self, X, y, sample_weight=None) -> tuple:
        """``(trainer, X, targets, loss)`` as the fitted network reads them.

        The targets carry the rows' weights as ``fit`` weighs them
        (``sample_weight`` times a classifier's ``class_weight``), so the
        readings measure the objective the fit minimised.
        """
        check_is_fitted(self)
        X, y = self._validate_X_y(X, y, reset=False)
        sample_weight = self._checked_row_weights(X, y, sample_weight)
        targets, n_outputs, loss = self._encode_targets(y, True, True)
        tr = self._trainer
        dev = tr.net.theta.device
        # in full batch: a sparse X is made dense whole
        X_t = dense_rows(tr.input_columns(_to_tensor(X, tr.net.theta.dtype, dev)))
        y_t = self._targets_tensor(targets, loss, n_outputs, tr.net.theta.dtype, dev)
        return tr, X_t, _weighted(y_t, sample_weight), loss

    def _training_loss(self, X, y) -> float:
        """Mean loss (no penalty) of the fit on ``(X, y)``, in full batch."""
        tr, X_t, y_t, loss = self._full_batch(X, y)
        grad = torch.zeros_like(tr.net.theta.detach())
        return float(tr.net.loss_and_grad(X_t, y_t, loss, grad))

    def _read_thresholds(self, X, y) -> ThresholdReading:
        """Zero thresholds of the fit on ``(X, y)`` (see ``read_thresholds``)."""
        tr, X_t, y_t, loss = self._full_batch(X, y)
        if tr.component(SplitVariable) is not None:
            _rvsm_unsupported("the zero-threshold reading (TargetSparsityCV)")
        return read_thresholds(
            tr.net, tr.group_map, tr.penalty, X_t, y_t, loss, sizes=tr.group_sizes
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.device != "cpu"
        tags.input_tags.sparse = True
        return tags


#: the ``class_weight`` parameter's entry of a classifier's docstring
CLASS_WEIGHT_PARAMETER = """    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as scikit-learn's classifiers take them: each
        row's weight is its class's, times its ``sample_weight``. A dict maps a
        class label to its weight (1 for a class it omits); ``"balanced"``
        gives class ``c`` the weight ``n_samples / (n_classes * n_c)`` (not
        with ``partial_fit``, whose calls see part of the data: pass the dict
        ``compute_class_weight`` gives on all of it). Single-label targets only.
"""


def with_class_weight(cls):
    """Give a classifier the ``class_weight`` parameter, after its family's.

    The family's ``__init__`` (shared with the regressor) is wrapped and the
    signature that scikit-learn reads (``get_params``, ``clone``) is the
    family's with ``class_weight=None`` added as a keyword.
    """
    family_init = cls.__init__
    signature = inspect.signature(family_init)

    def __init__(self, *args, class_weight=None, **kwargs):
        family_init(self, *args, **kwargs)
        self.class_weight = class_weight

    extra = inspect.Parameter(
        "class_weight", inspect.Parameter.KEYWORD_ONLY, default=None
    )
    __init__.__signature__ = signature.replace(
        parameters=[*signature.parameters.values(), extra]
    )
    __init__.__doc__ = family_init.__doc__
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__
    cls._parameter_constraints = {
        **cls._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }
    return cls


class GroupSparseClassifierMixin(ClassifierMixin):
    """Classification targets: binary (one logistic output), multiclass
    (softmax), multilabel (one logistic output per label)."""

    def _row_weights(self, y, sample_weight, incremental: bool):
        class_weight = getattr(self, "class_weight", None)
        if class_weight is None:
            return sample_weight
        if np.ndim(y) > 1:
            raise ValueError(
                "class_weight is for single-label targets; weight the rows of "
                "multilabel targets with sample_weight"
            )
        if incremental and class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not available with partial_fit: each "
                "call sees part of the data. Pass the dict that "
                "sklearn.utils.class_weight.compute_class_weight gives on all of it."
            )
        weights = compute_sample_weight(class_weight, y)
        return weights if sample_weight is None else weights * sample_weight

    def _encode_targets(self, y, incremental, reuse):
        check_classification_targets(y)
        if not reuse and not incremental:
            self._label_binarizer = LabelBinarizer().fit(y)
            if len(self._label_binarizer.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in "
                    "the data, but the data contains only one class: "
                    f"{self._label_binarizer.classes_[0]!r}"
                )
            self.classes_ = self._label_binarizer.classes_
        else:
            seen = unique_labels(y)
            if self.warm_start and not incremental and set(seen) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in "
                    f"the previous call to fit. Previously got {self.classes_}, `y` "
                    f"has {seen}"
                )
            if len(np.setdiff1d(seen, self.classes_)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {seen}."
                )
        lb = self._label_binarizer
        if lb.y_type_ == "multiclass":
            indices = np.searchsorted(lb.classes_, y)
            return indices, len(lb.classes_), "softmax"
        encoded = lb.transform(y).astype(np.float64)
        return encoded, encoded.shape[1], "logistic"

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with one epoch over ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data of this call.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels (a label indicator matrix for multilabel targets).
        classes : array of shape (n_classes,), default=None
            All classes that can appear; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows (see ``fit``).

        Returns
        -------
        self : object
            The updated estimator.
        """
        with self._restore_state_on_failure():
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
                self.classes_ = self._label_binarizer.classes_
            return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _validation_score(self, outputs, y_val, sample_weight=None) -> float:
        if outputs.shape[1] == 1:
            pred = (outputs[:, 0] > 0).long().cpu().numpy()
            truth = np.asarray(y_val).reshape(-1)
        elif self._label_binarizer.y_type_ == "multiclass":
            pred = outputs.argmax(dim=1).cpu().numpy()
            truth = np.asarray(y_val)
        else:
            pred = (outputs > 0).long().cpu().numpy()
            truth = np.asarray(y_val)
        return float(accuracy_score(truth, pred, sample_weight=sample_weight))

    def predict_proba(self, X) -> np.ndarray:
        """Probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities (for multilabel targets, one probability per
            label).
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of the probability estimates, computed without overflow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Natural logarithm of ``predict_proba(X)``, evaluated as a
            log-softmax or log-sigmoid of the network's outputs.
        """
        out = self._raw_outputs(X)
        if self._label_binarizer.y_type_ == "multiclass":
            return log_softmax(out, axis=1)
        if out.shape[1] == 1:
            return np.hstack([log_expit(-out), log_expit(out)])
        return log_expit(out)

    def predict(self, X) -> np.ndarray:
        """Predict with the compacted network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Predicted classes (a label indicator matrix for multilabel targets).
        """
        out = self._raw_outputs(X)
        lb = self._label_binarizer
        if lb.y_type_ == "multiclass":
            return self.classes_[out.argmax(axis=1)]
        if out.shape[1] == 1:
            return self.classes_[(out[:, 0] > 0).astype(int)]
        return lb.inverse_transform((out > 0).astype(int))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class GroupSparseRegressorMixin(RegressorMixin):
    """Regression targets: one output per target column, squared loss."""

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data of this call.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Real-valued targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows (see ``fit``).

        Returns
        -------
        self : object
            The updated estimator.
        """
        with self._restore_state_on_failure():
            return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _encode_targets(self, y, incremental, reuse):
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        return y, n_outputs, "squared"

    def _validation_score(self, outputs, y_val, sample_weight=None) -> float:
        pred = outputs.double().cpu().numpy()
        y_val = np.asarray(y_val)
        if y_val.ndim == 1:
            pred = pred[:, 0]
        return float(r2_score(y_val, pred, sample_weight=sample_weight))

    def predict(self, X) -> np.ndarray:
        """Predict with the compacted network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted targets.
        """
        out = self._raw_outputs(X)
        return out[:, 0] if out.shape[1] == 1 else out
