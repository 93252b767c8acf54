"""The ``skgroupsparse`` command line: learn a network's size next to a dense one.

``skgroupsparse`` with no arguments lets :class:`RegularizationPathCV` choose
the size of a :class:`GroupLassoMLPClassifier` on scikit-learn's bundled
digits (a warm-started path of 16 alphas cross-validated on 5 folds, the
smallest network within one standard error of the best, refitted on all the
training rows and relaxed), next to a dense
:class:`sklearn.neural_network.MLPClassifier` of the same starting size and
training budget, and prints a short table: the architecture it learned (live
neurons per hidden layer, kept input features), the sparsity, the parameter
count of the compacted network against the dense one, the test scores and the
fit times. ``--alpha`` fits one alpha instead of searching. ``--data FILE
--target COLUMN`` does the same on a CSV, TSV or ARFF file (read by
:func:`skgroupsparse.datasets.load_table`).

Before the timed fits, each model is fitted once, untimed, for one epoch on a
few rows (:func:`warm_up`), so the fit times leave out one-time costs: above
all the compilation of the numba CPU kernels in the first run after an
install, which the report then states in one line (later runs load the
kernels from the cache folder of :mod:`skgroupsparse._jit`).

Also runnable as ``python -m skgroupsparse``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skgroupsparse import __version__, _jit, _kernels
from skgroupsparse.datasets import load_table
from skgroupsparse.group_lasso import GroupLassoMLPClassifier, GroupLassoMLPRegressor
from skgroupsparse.path import SELECTION_RULES, standard_error
from skgroupsparse.path_cv import RegularizationPathCV

__all__ = ["build_parser", "main"]

PROG = "skgroupsparse"

#: Defaults of the command line.
DEFAULT_HIDDEN = (64, 32)
DEFAULT_ALPHA = None  # None: RegularizationPathCV chooses it
DEFAULT_MAX_ITER = 200
DEFAULT_CV = 5
DEFAULT_N_ALPHAS = 16
DEFAULT_SELECTION = "one_se"
DEFAULT_SEED = 0
LEARNING_RATE_INIT = 1e-3
TEST_SIZE = 0.25

#: A numeric target with at most this many distinct integer values is taken
#: as class labels.
MAX_INTEGER_CLASSES = 20

#: How many names of dropped input features the report lists.
MAX_NAMES_SHOWN = 8

#: Rows of the untimed warm-up fit (plus one of each class not among them).
WARM_UP_ROWS = 64

#: A warm-up that compiled kernels is reported when it took longer (seconds).
COMPILE_NOTE_SECONDS = 1.0


# --------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------
def _hidden_sizes(text: str) -> tuple[int, ...]:
    """Parse ``"64,32"`` into ``(64, 32)`` (argparse type)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 64,32, got {text!r}"
        )
    return sizes


def _checked(convert, valid, expected: str):
    """An argparse type: ``convert(text)``, refused unless ``valid`` holds."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_non_negative_float = _checked(
    float, lambda v: bool(np.isfinite(v)) and v >= 0, "a finite number >= 0"
)
_positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
_folds = _checked(int, lambda v: v >= 2, "an integer >= 2")


def _selection(text: str) -> str | float:
    """``"one_se"``, ``"best"`` or a score tolerance >= 0 (argparse type)."""
    if text in SELECTION_RULES:
        return text
    return _checked(
        float,
        lambda v: bool(np.isfinite(v)) and v >= 0,
        f"one of {', '.join(SELECTION_RULES)} or a score tolerance >= 0",
    )(text)


#: a seed NumPy accepts
_seed = _checked(int, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``skgroupsparse`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser; ``parser.parse_args([])`` gives the digits defaults.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Train an over-sized MLP with a group-lasso penalty that removes whole "
            "neurons and input features, its strength chosen by a cross-validated "
            "path (RegularizationPathCV) unless --alpha is given, next to a dense "
            "scikit-learn MLP of the same starting size and training budget, and "
            "print the learned architecture, parameter counts, test scores and fit "
            "times. Without --data it runs on scikit-learn's digits."
        ),
        epilog=(
            "With --data, a non-numeric target, or a numeric one with at most "
            f"{MAX_INTEGER_CLASSES} distinct integer values, is a classification "
            "problem (accuracy); any other target is a regression problem (R^2). "
            "Text feature columns are one-hot encoded, features are standardized, "
            "and so is a regression target. The data are split "
            f"{100 - 100 * TEST_SIZE:.0f}/{100 * TEST_SIZE:.0f} "
            "(stratified for classification) with --seed."
        ),
    )
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="a .csv, .tsv or .arff file (optionally .gz) with a header row; "
        "needs --target",
    )
    parser.add_argument(
        "--target",
        metavar="COLUMN",
        help="name of the target column of --data",
    )
    parser.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=DEFAULT_HIDDEN,
        metavar="N1,N2",
        help="starting hidden layer sizes, comma-separated (default: "
        f"{','.join(map(str, DEFAULT_HIDDEN))})",
    )
    parser.add_argument(
        "--alpha",
        type=_non_negative_float,
        default=DEFAULT_ALPHA,
        help="fit this group-lasso strength (larger prunes more) instead of "
        "letting RegularizationPathCV choose it (default: search)",
    )
    parser.add_argument(
        "--cv",
        type=_folds,
        default=DEFAULT_CV,
        metavar="FOLDS",
        help="folds of the search (default: %(default)d)",
    )
    parser.add_argument(
        "--n-alphas",
        type=_positive_int,
        default=DEFAULT_N_ALPHAS,
        metavar="N",
        help="alphas on the search's path (default: %(default)d)",
    )
    parser.add_argument(
        "--selection",
        type=_selection,
        default=DEFAULT_SELECTION,
        help="which stage the search keeps: one_se (the smallest network within "
        "one standard error of the best mean score), best, or a score tolerance "
        "such as 0.005 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-iter",
        type=_positive_int,
        default=DEFAULT_MAX_ITER,
        metavar="EPOCHS",
        help="epoch budget of both models (of each stage of the search and of its "
        "relaxed refit) (default: %(default)d)",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=DEFAULT_SEED,
        help="seed of the split and of both models (default: %(default)d)",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    return parser


# --------------------------------------------------------------------------
# The problem: data, task, scaler
# --------------------------------------------------------------------------
@dataclass
class Problem:
    """A dataset ready for the two models.

    Attributes
    ----------
    name : str
        What to call the data in the report.
    X : ndarray of shape (n_samples, n_features)
        Numeric features (float64).
    y : ndarray of shape (n_samples,)
        Class labels or real targets.
    feature_names : list of str
        Names of the columns of ``X``.
    classification : bool
        Whether ``y`` holds class labels.
    make_scaler : callable
        Returns a fresh feature scaler for the pipelines.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    classification: bool
    make_scaler: Callable[[], BaseEstimator]


def digits_problem() -> Problem:
    """Return scikit-learn's bundled digits, min-max scaled inside the pipelines.

    Returns
    -------
    problem : Problem
        1797 8x8 images, 64 pixel features, 10 classes.
    """
    data = load_digits()
    return Problem(
        name="digits (sklearn.datasets.load_digits)",
        X=np.asarray(data.data, dtype=np.float64),
        y=np.asarray(data.target),
        feature_names=list(data.feature_names),
        classification=True,
        make_scaler=MinMaxScaler,
    )


def is_classification_target(y: pd.Series) -> bool:
    """Tell whether a target column holds class labels.

    Parameters
    ----------
    y : pandas.Series
        The target column, without missing values.

    Returns
    -------
    classification : bool
        True when ``y`` is not numeric (text, categories), or is numeric
        (booleans included) with at most ``MAX_INTEGER_CLASSES`` distinct
        values that are all integers; False otherwise (regression).
    """
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return True
    values = np.unique(y.to_numpy(dtype=np.float64))
    return len(values) <= MAX_INTEGER_CLASSES and bool(
        np.all(values == np.round(values))
    )


def file_problem(path: str, target: str) -> Problem:
    """Read a table file into a :class:`Problem`.

    Parameters
    ----------
    path : str
        A file :func:`~skgroupsparse.datasets.load_table` reads.
    target : str
        The target column.

    Returns
    -------
    problem : Problem
        Text feature columns one-hot encoded (:func:`pandas.get_dummies`);
        standardized inside the pipelines.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be read, ``target`` is not one of its columns, a
        value is missing, or nothing is left to learn from.
    """
    X, y, _ = load_table(path, target)
    if isinstance(y, pd.DataFrame):  # a column name given twice in the file
        raise ValueError(f"more than one column of {path!r} is named {target!r}")
    _check_no_missing(y.to_frame(), path, "target")
    _check_no_missing(X, path, "feature")
    if X.shape[1] == 0:
        raise ValueError(f"{path!r} has no feature column besides {target!r}")
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if text:
        X = pd.get_dummies(X, columns=text, dtype=np.float64)
    classification = is_classification_target(y)
    return Problem(
        name=f"{path} (target {target!r})",
        X=X.to_numpy(dtype=np.float64),
        y=y.to_numpy() if classification else y.to_numpy(dtype=np.float64),
        feature_names=[str(c) for c in X.columns],
        classification=classification,
        make_scaler=StandardScaler,
    )


def _check_no_missing(frame: pd.DataFrame, path: str, kind: str) -> None:
    """Raise ``ValueError`` naming the columns of ``frame`` with missing values."""
    missing = frame.columns[frame.isna().any()]
    if len(missing):
        raise ValueError(
            f"{path!r} has missing values in {kind} column(s) "
            f"{_names([repr(c) for c in missing])}; "
            "impute or drop them first"
        )


def can_stratify(problem: Problem) -> bool:
    """Tell whether the 75/25 split of ``problem`` can be stratified.

    Parameters
    ----------
    problem : Problem
        The data.

    Returns
    -------
    stratified : bool
        True for a classification problem whose every class has two samples
        or more and whose classes fit in both parts of the split.
    """
    if not problem.classification:
        return False
    n = problem.X.shape[0]
    _, counts = np.unique(problem.y, return_counts=True)
    n_test = int(np.ceil(TEST_SIZE * n))
    n_classes = len(counts)
    return bool(counts.min() >= 2 and n_classes <= min(n_test, n - n_test))


def split(problem: Problem, seed: int) -> tuple[np.ndarray, ...]:
    """Split 75/25, stratified for classification when every class allows it.

    Parameters
    ----------
    problem : Problem
        The data.
    seed : int
        Seed of the split.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        The two parts.

    Raises
    ------
    ValueError
        If there are too few samples to split.
    """
    n = problem.X.shape[0]
    if n < 8:
        raise ValueError(f"{problem.name} has {n} rows; at least 8 are needed")
    stratify = problem.y if can_stratify(problem) else None
    return train_test_split(
        problem.X, problem.y, test_size=TEST_SIZE, random_state=seed, stratify=stratify
    )


# --------------------------------------------------------------------------
# The two models
# --------------------------------------------------------------------------
def make_models(
    problem: Problem,
    hidden: tuple[int, ...],
    alpha: float | None,
    max_iter: int,
    seed: int,
    batch_size: int,
    search: dict | None = None,
) -> tuple[BaseEstimator, BaseEstimator]:
    """Return the group-lasso model and its dense peer, both unfitted.

    Both are a ``Pipeline`` of the problem's scaler and an MLP with the same
    starting layers, Adam, step size, batch size and epoch budget; the dense
    one is scikit-learn's MLP with its default L2 penalty. With ``alpha``
    None the group-lasso MLP is wrapped in a :class:`RegularizationPathCV`
    that chooses it (``search`` gives its ``cv``, ``n_alphas`` and
    ``selection``). A regressor is
    wrapped in a ``TransformedTargetRegressor`` that standardizes the target.

    Parameters
    ----------
    problem : Problem
        Gives the task and the scaler.
    hidden : tuple of int
        Starting hidden layer sizes.
    alpha : float or None
        Group-lasso strength; None: chosen by the search.
    search : dict, default=None
        Parameters of the :class:`RegularizationPathCV` (when ``alpha`` is
        None).
    max_iter : int
        Epoch budget.
    seed : int
        Seed of both models.
    batch_size : int
        Mini-batch size of both models.

    Returns
    -------
    sparse, dense : estimator
        The unfitted models.
    """
    common = dict(
        hidden_layer_sizes=hidden,
        learning_rate_init=LEARNING_RATE_INIT,
        batch_size=batch_size,
        max_iter=max_iter,
        random_state=seed,
        early_stopping=False,
    )
    fixed = {} if alpha is None else {"alpha": alpha}
    if problem.classification:
        sparse_mlp = GroupLassoMLPClassifier(optimizer="adam", **fixed, **common)
        dense_mlp = MLPClassifier(solver="adam", **common)
    else:
        sparse_mlp = GroupLassoMLPRegressor(optimizer="adam", **fixed, **common)
        dense_mlp = MLPRegressor(solver="adam", **common)
    if alpha is None:
        sparse_mlp = RegularizationPathCV(sparse_mlp, **(search or {}))

    def wrap(mlp: BaseEstimator) -> BaseEstimator:
        pipe = Pipeline([("scale", problem.make_scaler()), ("mlp", mlp)])
        if problem.classification:
            return pipe
        return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())

    return wrap(sparse_mlp), wrap(dense_mlp)


def _last_step(model: BaseEstimator) -> BaseEstimator:
    """The fitted last step of a model of :func:`make_models` (MLP or search)."""
    if isinstance(model, TransformedTargetRegressor):
        model = model.regressor_
    return model[-1]


def _mlp(model: BaseEstimator) -> BaseEstimator:
    """The fitted MLP inside a model of :func:`make_models` (a search's best)."""
    step = _last_step(model)
    return step.best_estimator_ if isinstance(step, RegularizationPathCV) else step


def _n_params(mlp: BaseEstimator) -> int:
    """Weights and biases of a fitted full-width MLP (``coefs_`` layout)."""
    return sum(c.size for c in mlp.coefs_) + sum(b.size for b in mlp.intercepts_)


@dataclass
class Fit:
    """One fitted model of the comparison.

    Attributes
    ----------
    model : estimator
        The fitted pipeline.
    score : float
        Test accuracy (classification) or R^2 (regression).
    seconds : float
        Fit time, :func:`time.perf_counter`.
    """

    model: BaseEstimator
    score: float
    seconds: float

    @property
    def mlp(self) -> BaseEstimator:
        """The fitted MLP inside the pipeline (a search's best estimator)."""
        return _mlp(self.model)

    @property
    def search(self) -> RegularizationPathCV | None:
        """The fitted search that chose the MLP's size, if there was one."""
        step = _last_step(self.model)
        return step if isinstance(step, RegularizationPathCV) else None


@dataclass
class WarmUp:
    """The untimed warm-up fit of one model.

    Attributes
    ----------
    seconds : float
        Its duration, :func:`time.perf_counter`.
    compiled : int
        Signatures of the numba CPU kernels compiled during it; 0 when they
        were all loaded from numba's cache or compiled before.
    """

    seconds: float
    compiled: int


def _n_compiled() -> int:
    """Kernel signatures compiled (not loaded from the cache) in this process."""
    total = 0
    for obj in vars(_kernels).values():
        misses = getattr(getattr(obj, "stats", None), "cache_misses", None)
        if misses is not None:
            total += sum(misses.values())
    return total


def _warm_up_rows(y: np.ndarray, classification: bool) -> np.ndarray:
    """The first ``WARM_UP_ROWS`` rows, and the first row of every class."""
    rows = np.arange(min(WARM_UP_ROWS, len(y)))
    if classification:
        _, first = np.unique(y, return_index=True)
        rows = np.union1d(rows, first)
    return rows


def warm_up(
    model: BaseEstimator,
    X_train: np.ndarray,
    y_train: np.ndarray,
    classification: bool,
) -> WarmUp:
    """Fit a copy of ``model`` for one epoch on a few rows, untimed in the report.

    The copy has the same settings except ``max_iter=1`` (and a batch size no
    larger than those rows), so it runs every kernel the real fit runs, with
    the same argument types: the numba kernels are compiled, or loaded from
    their cache, here rather than in the timed fit.

    Parameters
    ----------
    model : estimator
        An unfitted model of :func:`make_models`; left unchanged.
    X_train, y_train : ndarray
        The training part of the split.
    classification : bool
        Whether ``y_train`` holds class labels (the rows then include every
        class).

    Returns
    -------
    warm : WarmUp
        How long it took and how many kernel signatures it compiled.
    """
    rows = _warm_up_rows(y_train, classification)
    copy = clone(model)
    prefix = "regressor__" if isinstance(copy, TransformedTargetRegressor) else ""
    step = copy.get_params()[f"{prefix}mlp"]
    if isinstance(step, RegularizationPathCV):
        # the search runs the same kernels as its estimator's fit
        copy.set_params(**{f"{prefix}mlp": clone(step.estimator)})
    batch_size = copy.get_params()[f"{prefix}mlp__batch_size"]
    copy.set_params(
        **{
            f"{prefix}mlp__max_iter": 1,
            f"{prefix}mlp__batch_size": min(batch_size, len(rows)),
        }
    )
    compiled = _n_compiled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        copy.fit(X_train[rows], y_train[rows])
        seconds = time.perf_counter() - start
    return WarmUp(seconds, _n_compiled() - compiled)


def compile_note(warm: WarmUp) -> str | None:
    """Return the report's line on compiling the kernels, if there is one.

    Parameters
    ----------
    warm : WarmUp
        The warm-up of the group-lasso model.

    Returns
    -------
    note : str or None
        One line when the warm-up compiled kernels and took longer than
        ``COMPILE_NOTE_SECONDS``: how long, and where the compiled code is
        cached (or why it is not); None otherwise.
    """
    if warm.compiled == 0 or warm.seconds <= COMPILE_NOTE_SECONDS:
        return None
    again = "every new process compiles again"
    requested = _jit.requested_cache_dir()
    if _jit.CACHE_DIR is not None:
        why = (
            f"first run after an install; cached in {_jit.CACHE_DIR}, "
            "later runs skip this"
        )
    elif requested is None:
        why = f"caching turned off by {_jit.ENV_VAR}: {again}"
    else:
        why = f"no writable cache folder ({requested}): {again}; set {_jit.ENV_VAR}"
    return (
        f"compiled the CPU kernels in {warm.seconds:.1f} s, not counted in the "
        f"fit times ({why})"
    )


def fit_and_score(
    model: BaseEstimator,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
) -> Fit:
    """Fit ``model`` (timed, ``ConvergenceWarning`` silenced) and score it.

    Parameters
    ----------
    model : estimator
        An unfitted model of :func:`make_models`.
    X_train, y_train, X_test, y_test : ndarray
        The split data.

    Returns
    -------
    fit : Fit
        The fitted model, its test score and its fit time.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return Fit(model, float(model.score(X_test, y_test)), seconds)


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------
def _names(names: Sequence[str]) -> str:
    """At most ``MAX_NAMES_SHOWN`` names, then how many more."""
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    if len(names) > MAX_NAMES_SHOWN:
        shown += f" (+{len(names) - MAX_NAMES_SHOWN} more)"
    return shown


def format_report(
    problem: Problem,
    n_train: int,
    n_test: int,
    stratified: bool,
    seed: int,
    sparse: Fit,
    dense: Fit,
) -> str:
    """Return the report table as text.

    Parameters
    ----------
    problem : Problem
        The data.
    n_train, n_test : int
        Sizes of the two parts of the split.
    stratified : bool
        Whether the split was stratified.
    seed : int
        Seed of the split and the models.
    sparse, dense : Fit
        The group-lasso model and its dense peer.

    Returns
    -------
    report : str
        Several lines, no trailing newline.
    """
    gl, mlp = sparse.mlp, dense.mlp
    n_features = problem.X.shape[1]
    start = [n_features, *gl.hidden_layer_sizes]
    live = [int(gl.support_.sum()), *gl.active_neurons_]
    labels = ["input features"] + [
        f"hidden layer {i + 1}" for i in range(len(live) - 1)
    ]
    n_dense = _n_params(mlp)
    n_compact = sum(p.numel() for p in gl.network_.parameters())
    task = (
        f"{len(np.unique(problem.y))} classes"
        if problem.classification
        else "regression"
    )
    metric = "accuracy" if problem.classification else "R^2"
    how = "stratified, " if stratified else ""

    lines = [
        f"data: {problem.name}",
        f"      {problem.X.shape[0]} samples x {n_features} features, {task}; "
        f"train {n_train} / test {n_test} ({how}seed {seed})",
        "",
        f"{'architecture':<22}{'start':>8}{'learned':>9}",
    ]
    lines += [
        f"{label:<22}{s:>8}{a:>9}"
        for label, s, a in zip(labels, start, live, strict=True)
    ]
    lines += [
        f"{'parameters':<22}{n_dense:>8,}{n_compact:>9,}   "
        f"(compacted network: {n_compact / max(n_dense, 1):.0%} of dense)",
        f"{'zero weights':<22}{'':>8}{gl.sparsity_:>9.1%}   (sparsity_)",
    ]
    dropped = [n for n, keep in zip(problem.feature_names, gl.support_) if not keep]
    if dropped:
        lines.append(f"dropped inputs: {_names(dropped)}")

    search = sparse.search
    if search is not None:
        results = search.cv_results_
        se = standard_error(
            results["std_test_score"][search.best_index_], search.n_splits_
        )
        lines += [
            "",
            f"search: RegularizationPathCV, {search.n_splits_} folds x "
            f"{len(search.alphas_)} alphas, selection={search.selection}",
            f"        alpha {search.alpha_:.3g} chosen (stage {search.best_index_ + 1}"
            f" of {len(search.alphas_)}), held-out {metric} {search.best_score_:.4f} "
            f"+- {se:.4f}; refitted on the training rows and relaxed (alpha=0 on "
            "the support it selected)",
        ]
        sparse_name = f"{type(gl).__name__} (searched alpha={search.alpha_:.3g})"
    else:
        sparse_name = f"{type(gl).__name__} (alpha={gl.alpha:g})"
    dense_name = f"{type(mlp).__name__} (dense, L2 alpha={mlp.alpha:g})"
    width = max(len(sparse_name), len(dense_name)) + 2
    lines += [
        "",
        f"{'model':<{width}}{metric:>9}{'fit time':>11}{'epochs':>8}",
    ]
    for name, fit in ((sparse_name, sparse), (dense_name, dense)):
        lines.append(
            f"{name:<{width}}{fit.score:>9.4f}{fit.seconds:>9.2f} s{fit.mlp.n_iter_:>8}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------
def run(args: argparse.Namespace) -> str:
    """Load the data, fit both models and return the report.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    report : str
        The table of :func:`format_report`, then the line of
        :func:`compile_note` when the warm-up compiled the kernels.

    Raises
    ------
    FileNotFoundError, ValueError
        On a missing or unreadable file, an unknown column or unusable data.
    """
    problem = (
        digits_problem() if args.data is None else file_problem(args.data, args.target)
    )
    X_train, X_test, y_train, y_test = split(problem, args.seed)
    sparse, dense = make_models(
        problem,
        args.hidden,
        args.alpha,
        args.max_iter,
        args.seed,
        batch_size=min(200, X_train.shape[0]),
        search=dict(cv=args.cv, n_alphas=args.n_alphas, selection=args.selection),
    )
    # untimed: one-time costs (compiling the kernels) stay out of the fit times
    warm = warm_up(sparse, X_train, y_train, problem.classification)
    warm_up(dense, X_train, y_train, problem.classification)
    sparse_fit = fit_and_score(sparse, X_train, y_train, X_test, y_test)
    dense_fit = fit_and_score(dense, X_train, y_train, X_test, y_test)
    report = format_report(
        problem,
        X_train.shape[0],
        X_test.shape[0],
        can_stratify(problem),
        args.seed,
        sparse_fit,
        dense_fit,
    )
    note = compile_note(warm)
    return report if note is None else f"{report}\n\n{note}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skgroupsparse`` command.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments, without the program name; ``None`` reads
        ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success; 2 on a usage error or on data that cannot be used (one
        ``skgroupsparse: error: ...`` line on stderr); 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else 2
    if (args.data is None) != (args.target is None):
        given, needed = (
            ("--data", "--target") if args.target is None else ("--target", "--data")
        )
        try:
            parser.error(f"{given} needs {needed}")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 2
    try:
        report = run(args)
    except (OSError, ValueError) as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        return _error("interrupted", status=130)
    print(report)
    return 0


def _error(message: str, status: int = 2) -> int:
    """Print one ``skgroupsparse: error: ...`` line to stderr; return ``status``."""
    one_line = " ".join(message.split()) or "unknown error"
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return status
