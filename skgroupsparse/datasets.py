"""Real tabular data: a table reader and the project's offline benchmark sets.

:func:`load_table` reads one CSV, TSV (either optionally gzipped) or dense ARFF
file into a feature frame and a target. :func:`load_benchmark` loads a named
dataset from the project's offline data folder (:func:`shared_datasets_dir`)
with that file's target convention and returns NumPy arrays ready for an
estimator.

This module imports NumPy and pandas only (no scikit-learn, no torch), so that
it can be used, and tested, without the estimators.
"""

from __future__ import annotations

import difflib
import gzip
import io
import os
import re
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

__all__ = [
    "BENCHMARKS",
    "BenchmarkSpec",
    "list_datasets",
    "load_benchmark",
    "load_dataset",
    "load_table",
    "make_mackey_glass",
    "make_teacher_network",
    "shared_datasets_dir",
]

#: Environment variable that overrides :func:`shared_datasets_dir`.
DATA_ENV_VAR = "SKGROUPSPARSE_DATA"

# column names taken as the target when ``target=None`` (in this order)
_DEFAULT_TARGETS = ("target", "class")
_SEPARATORS = {".csv": ",", ".tsv": "\t"}
_SUPPORTED = ".csv, .tsv, .arff (each optionally .gz)"
# ``@attribute <name> <type>``; the name may be quoted with ' or "
_ARFF_ATTRIBUTE = re.compile(
    r"""^@attribute\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)\s*(.*)$""",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------
# Reading one file
# --------------------------------------------------------------------------
def _file_format(path: Path) -> tuple[str, bool]:
    """Return ``(extension, gzipped)`` of ``path``, or raise ``ValueError``."""
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in (*_SEPARATORS, ".arff"):
        raise ValueError(
            f"unsupported file type {''.join(path.suffixes) or '(no extension)'!r} "
            f"for {str(path)!r}; supported: {_SUPPORTED}"
        )
    return ext, gzipped


def _read_arff(path: Path, gzipped: bool) -> pd.DataFrame:
    """Read a dense ARFF file with pandas (no scipy: it rejects some valid files).

    Column names come from the ``@attribute`` lines, in order; the ``@data``
    lines are parsed as CSV with ``'`` as the quote character and ``?`` as a
    missing value. Lines starting with ``%`` are comments. Blanks around a
    value are dropped. Nominal values are kept as pandas parses them (numbers
    as numbers, the rest as strings).
    """
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    names: list[str] = []
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        keyword = line.split(None, 1)[0].lower()
        if keyword == "@data":
            data_start = i + 1
            break
        if keyword == "@attribute":
            match = _ARFF_ATTRIBUTE.match(line)
            if match is None or not match.group(2):
                raise ValueError(f"malformed @attribute line {i + 1}: {line!r}")
            name = match.group(1)
            if name[0] in "'\"":
                name = name[1:-1]
            names.append(name)
        elif keyword != "@relation":
            raise ValueError(f"unexpected header line {i + 1}: {line[:60]!r}")
    if data_start is None:
        raise ValueError("no @data line (is this an ARFF file?)")
    if not names:
        raise ValueError("no @attribute lines before @data")
    rows = [ln for ln in lines[data_start:] if not ln.lstrip().startswith("%")]
    first = next((ln.strip() for ln in rows if ln.strip()), "")
    if first.startswith("{"):
        raise ValueError("sparse ARFF is not supported, only dense ARFF")
    with warnings.catch_warnings():
        # pandas only warns (and drops data) when a row has too many fields
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(
                io.StringIO("\n".join(rows)),
                header=None,
                names=names,
                index_col=False,
                skipinitialspace=True,
                quotechar="'",
                na_values=["?", ""],
                keep_default_na=False,
            )
        except pd.errors.ParserWarning:
            raise ValueError(
                f"a @data row has more values than the {len(names)} attributes"
            ) from None
    # blanks around a value do not belong to it (``a ,b``); numbers are parsed
    # without them already, text keeps the trailing ones
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].str.rstrip()
    return frame


def _read_frame(path: Path, header: bool) -> pd.DataFrame:
    """Read ``path`` into a DataFrame, with one-line errors."""
    if not path.exists():
        raise FileNotFoundError(f"no such data file: {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"not a file: {str(path)!r}")
    ext, gzipped = _file_format(path)
    try:
        if ext == ".arff":
            frame = _read_arff(path, gzipped)
        else:
            frame = pd.read_csv(
                path,
                sep=_SEPARATORS[ext],
                header=0 if header else None,
                compression="gzip" if gzipped else None,
            )
    except (
        ValueError,  # includes pandas' ParserError and EmptyDataError
        UnicodeDecodeError,
        OSError,  # e.g. a .gz file that is not gzip
        EOFError,  # a truncated .gz file
    ) as exc:
        message = str(exc).strip().replace("\n", " ") or type(exc).__name__
        raise ValueError(f"cannot parse {str(path)!r}: {message}") from exc
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"no data rows or columns in {str(path)!r}")
    return frame


def _unknown_column(column: Hashable, columns: pd.Index, path: Path) -> ValueError:
    """The error for a target column that ``columns`` lacks."""
    shown = [repr(c) for c in columns[:20]]
    if len(columns) > 20:
        shown.append(f"... ({len(columns)} columns in all)")
    close = difflib.get_close_matches(str(column), [str(c) for c in columns], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValueError(
        f"target column {column!r} not found in {str(path)!r}; available columns: "
        f"{', '.join(shown)}{hint}"
    )


def _default_target(columns: pd.Index) -> Hashable:
    """``'target'`` or ``'class'`` (exact, then any case), else the last column."""
    for name in _DEFAULT_TARGETS:
        if name in columns:
            return name
    lowered = {str(c).lower(): c for c in columns}
    for name in _DEFAULT_TARGETS:
        if name in lowered:
            return lowered[name]
    return columns[-1]


def load_table(
    path: str | os.PathLike[str],
    target: Hashable | Sequence[Hashable] | None = None,
    *,
    header: bool = True,
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame, list[Hashable]]:
    """Read a table file and split it into features and target(s).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` or ``.tsv`` file (optionally gzipped: ``.csv.gz``,
        ``.tsv.gz``) with a header row, or a dense ARFF file (``.arff`` or
        ``.arff.gz``). ARFF is read with pandas alone: names from the
        ``@attribute`` lines, values from the ``@data`` lines (``'`` quotes,
        ``?`` for a missing value, ``%`` comment lines dropped).
    target : str, int, list of those, or None, default=None
        The target column, or a list of columns for a multi-target problem.
        ``None`` takes the column named ``'target'``, else the one named
        ``'class'`` (matched exactly, then ignoring case), else the last column.
    header : bool, default=True
        Whether a CSV/TSV file starts with a row of column names. With
        ``header=False`` the columns are named ``0, 1, ...`` and ``target``
        may be such an integer. Ignored for ARFF.

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Every column but the target(s), in file order, with the dtypes pandas
        infers (numbers stay numbers, text stays text).
    y : pandas.Series of shape (n_samples,) or pandas.DataFrame of shape \
(n_samples, n_targets)
        A Series when ``target`` is a single name (or ``None``), a DataFrame
        when it is a list.
    target_names : list
        The target column name(s).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the extension is not supported, the file cannot be parsed, or a
        target column is not in the file (the message lists the columns).

    See Also
    --------
    load_benchmark : Load a named dataset of the offline folder as arrays.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
    >>> _ = path.write_text("a,b,class\\n1,2,x\\n3,4,y\\n")
    >>> X, y, names = load_table(path)
    >>> X.shape, y.tolist(), names
    ((2, 2), ['x', 'y'], ['class'])
    """
    path = Path(path)
    return _split(_read_frame(path, header), target, path)


def _split(
    frame: pd.DataFrame,
    target: Hashable | Sequence[Hashable] | None,
    path: Path,
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame, list[Hashable]]:
    """Split ``frame`` into features and target(s) (see :func:`load_table`)."""
    columns = frame.columns
    multi = isinstance(target, (list, tuple))
    if target is None:
        names = [_default_target(columns)]
    elif multi:
        names = list(target)
        if not names:
            raise ValueError("target is an empty list; give at least one column")
    else:
        names = [target]
    for name in names:
        if name not in columns:
            raise _unknown_column(name, columns, path)
    if len(set(names)) != len(names):
        raise ValueError(f"target names a column twice: {names!r}")
    X = frame.drop(columns=names)
    y = frame[names] if multi else frame[names[0]]
    return X, y, names


# --------------------------------------------------------------------------
# The offline benchmark folder
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark dataset lives and how its target is found.

    Parameters
    ----------
    file : str
        File name inside :func:`shared_datasets_dir`.
    task : {"classification", "regression"}
        What the target is.
    target : str, int, tuple of str, or None, default=None
        Passed to :func:`load_table` (``None``: its default rule). A tuple
        means a multi-target problem.
    header : bool, default=True
        Passed to :func:`load_table`.
    n_last_targets : int, default=0
        If positive, the targets are the last ``n_last_targets`` columns and
        ``target`` is ignored (multi-target files that name no target).
    shape : tuple of int, default=(0, 0, 1)
        ``(n_rows, n_features, n_targets)`` of the file as loaded, from
        ``PROVENANCE.md`` (features before any encoding).
    openml_id : int or None, default=None
        The OpenML dataset id where one is known (``None`` for subsets and
        conversions that OpenML does not hold).
    """

    file: str
    task: str
    target: Hashable | tuple[Hashable, ...] | None = None
    header: bool = True
    n_last_targets: int = 0
    shape: tuple[int, int, int] = (0, 0, 1)
    openml_id: int | None = None


#: The datasets that :func:`load_benchmark` knows, by name (read-only).
BENCHMARKS: Mapping[str, BenchmarkSpec] = MappingProxyType(
    {
        # classification
        "adult": BenchmarkSpec(
            "pmlb_adult.tsv.gz",
            "classification",
            "target",
            shape=(48842, 14, 1),
            openml_id=1590,
        ),
        "credit-g": BenchmarkSpec(
            "credit-g.arff",
            "classification",
            "class",
            shape=(1000, 20, 1),
            openml_id=31,
        ),
        "electricity": BenchmarkSpec(
            "elecNormNew.arff",
            "classification",
            "class",
            shape=(45312, 8, 1),
            openml_id=151,
        ),
        "higgs": BenchmarkSpec(
            "higgs_lightgbm_binary.train.tsv",
            "classification",
            0,
            header=False,
            shape=(7000, 28, 1),
        ),
        "higgs-test": BenchmarkSpec(
            "higgs_lightgbm_binary.test.tsv",
            "classification",
            0,
            header=False,
            shape=(500, 28, 1),
        ),
        "letter": BenchmarkSpec(
            "letter.arff",
            "classification",
            "class",
            shape=(20000, 16, 1),
            openml_id=6,
        ),
        "madelon": BenchmarkSpec(
            "madelon_train.arff", "classification", "class", shape=(2000, 500, 1)
        ),
        "magic": BenchmarkSpec(
            "pmlb_magic.tsv.gz",
            "classification",
            "target",
            shape=(19020, 10, 1),
            openml_id=1120,
        ),
        "optdigits": BenchmarkSpec(
            "optdigits.arff",
            "classification",
            "class",
            shape=(5620, 64, 1),
            openml_id=28,
        ),
        "pendigits": BenchmarkSpec(
            "pendigits.arff",
            "classification",
            "class",
            shape=(10992, 16, 1),
            openml_id=32,
        ),
        "phoneme": BenchmarkSpec(
            "pmlb_phoneme.tsv.gz",
            "classification",
            "target",
            shape=(5404, 5, 1),
            openml_id=1489,
        ),
        "satimage": BenchmarkSpec(
            "pmlb_satimage.tsv.gz",
            "classification",
            "target",
            shape=(6435, 36, 1),
            openml_id=182,
        ),
        "segment": BenchmarkSpec(
            "segment.arff",
            "classification",
            "class",
            shape=(2310, 19, 1),
            openml_id=36,
        ),
        "spambase": BenchmarkSpec(
            "spambase.arff",
            "classification",
            "class",
            shape=(4601, 57, 1),
            openml_id=44,
        ),
        "wine-quality-red": BenchmarkSpec(
            "pmlb_wine_quality_red.tsv.gz",
            "classification",
            "target",
            shape=(1599, 11, 1),
            openml_id=40691,
        ),
        "wine-quality-white": BenchmarkSpec(
            "pmlb_wine_quality_white.tsv.gz",
            "classification",
            "target",
            shape=(4898, 11, 1),
            openml_id=40498,
        ),
        # regression
        "ailerons": BenchmarkSpec(
            "ailerons.arff",
            "regression",
            "goal",
            shape=(13750, 40, 1),
            openml_id=296,
        ),
        "cpu_act": BenchmarkSpec(
            "cpu_act.arff", "regression", "usr", shape=(8192, 21, 1), openml_id=197
        ),
        "elevators": BenchmarkSpec(
            "elevators.arff",
            "regression",
            "Goal",
            shape=(16599, 18, 1),
            openml_id=216,
        ),
        "house_16H": BenchmarkSpec(
            "pmlb_574_house_16H.tsv.gz",
            "regression",
            "target",
            shape=(22784, 16, 1),
            openml_id=574,
        ),
        "houses": BenchmarkSpec(
            "pmlb_537_houses.tsv.gz",
            "regression",
            "target",
            shape=(20640, 8, 1),
            openml_id=537,
        ),
        "kin8nm": BenchmarkSpec(
            "kin8nm.arff", "regression", "y", shape=(8192, 8, 1), openml_id=189
        ),
        "mg": BenchmarkSpec("mg_scale.csv", "regression", "target", shape=(1385, 6, 1)),
        # multi-target regression: the last 16 attributes are the targets
        "oes97": BenchmarkSpec(
            "oes97.arff", "regression", n_last_targets=16, shape=(334, 263, 16)
        ),
        "pol": BenchmarkSpec(
            "pol.arff", "regression", "foo", shape=(15000, 48, 1), openml_id=201
        ),
    }
)


def shared_datasets_dir() -> Path:
    """Return the folder that holds the offline benchmark datasets.

    Returns
    -------
    path : pathlib.Path
        The value of the environment variable ``SKGROUPSPARSE_DATA`` when it
        is set and not empty, else ``<repo>/../shared/datasets``, where
        ``<repo>`` is the parent of the ``skgroupsparse`` package directory.
        The folder is not required to exist.
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def _numeric_features(X: pd.DataFrame) -> np.ndarray:
    """Float64 features: non-numeric columns one-hot encoded, NaN kept."""
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if text:
        X = pd.get_dummies(X, columns=text, dtype=np.float64)
    return X.to_numpy(dtype=np.float64)


def _known_name(name: str) -> str:
    """The registry key for ``name`` (exact, then ignoring case), or a ValueError."""
    if isinstance(name, str):
        if name in BENCHMARKS:
            return name
        lowered = {key.lower(): key for key in BENCHMARKS}
        if name.lower() in lowered:
            return lowered[name.lower()]
    close = difflib.get_close_matches(str(name), list(BENCHMARKS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown dataset {name!r}{hint} Known: {', '.join(BENCHMARKS)}")


def list_datasets() -> pd.DataFrame:
    """The datasets :func:`load_dataset` knows: name, task, shape, OpenML id.

    Returns
    -------
    table : pandas.DataFrame
        One row per dataset, indexed by name, with columns ``task``,
        ``n_samples``, ``n_features``, ``n_targets``, ``openml_id`` (``<NA>``
        where none is known) and ``file``.
    """
    rows = {
        name: dict(
            task=spec.task,
            n_samples=spec.shape[0],
            n_features=spec.shape[1],
            n_targets=spec.shape[2],
            openml_id=spec.openml_id,
            file=spec.file,
        )
        for name, spec in BENCHMARKS.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["openml_id"] = table["openml_id"].astype("Int64")
    table.index.name = "name"
    return table


def load_dataset(
    name: str,
    data_home: str | os.PathLike[str] | None = None,
    *,
    download_if_missing: bool = False,
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
    """Load a dataset of the offline collection by its plain name.

    The file is read from a local folder. If it is not there and
    ``download_if_missing=True``, the dataset is fetched from OpenML by its id
    (:func:`sklearn.datasets.fetch_openml`, which caches it in scikit-learn's
    data folder, ``~/scikit_learn_data`` or ``$SCIKIT_LEARN_DATA``, never in
    ``data_home``); the target is OpenML's default target, and OpenML's copy
    can differ from the offline file in column names, dtypes and the target's
    coding.

    Parameters
    ----------
    name : str
        A name of :func:`list_datasets` (``"optdigits"``, ``"oes97"``,
        ``"mg"``, ...), matched exactly or ignoring case.
    data_home : str or os.PathLike, default=None
        The folder that holds the files. Default: the environment variable
        ``SKGROUPSPARSE_DATA`` if set, else :func:`shared_datasets_dir`.
    download_if_missing : bool, default=False
        Fetch the dataset from OpenML when its file is missing (needs a
        network connection and an OpenML id, see :func:`list_datasets`).

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, n_features)
        The features as in the file (text columns stay text; see
        :func:`load_benchmark` for encoded arrays).
    y : pandas.Series of shape (n_samples,) or pandas.DataFrame of shape \
(n_samples, n_targets)
        The target(s); a DataFrame for the multi-target ``"oes97"``.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the known names).
    FileNotFoundError
        If the dataset's file is not in the folder (and not downloaded); the
        message says which folder was searched and how to point to another
        one, and why a download was not tried or failed.

    Examples
    --------
    >>> X, y = load_dataset("mg")  # doctest: +SKIP
    >>> X.shape, y.name  # doctest: +SKIP
    ((1385, 6), 'target')
    """
    spec = BENCHMARKS[_known_name(name)]
    if data_home is not None:
        folder, why = Path(data_home).expanduser(), "data_home"
    elif os.environ.get(DATA_ENV_VAR):
        folder, why = shared_datasets_dir(), f"${DATA_ENV_VAR}"
    else:
        folder, why = shared_datasets_dir(), "the default folder"
    path = folder / spec.file
    if not path.is_file():
        missing = (
            f"dataset {name!r}: file {spec.file!r} not found in {str(folder)!r} "
            f"({why}); pass data_home= or set {DATA_ENV_VAR} to the folder that "
            "holds it"
        )
        if not download_if_missing:
            if spec.openml_id is not None:
                missing += (
                    f", or download_if_missing=True for OpenML id {spec.openml_id}"
                )
            raise FileNotFoundError(missing)
        if spec.openml_id is None:
            raise FileNotFoundError(f"{missing}; it has no known OpenML id to download")
        return _fetch_openml(spec.openml_id, missing)
    frame = _read_frame(path, spec.header)
    target = spec.target
    if spec.n_last_targets:
        target = list(frame.columns[-spec.n_last_targets :])
    X, y, _ = _split(frame, target, path)
    return X, y


def _fetch_openml(data_id: int, missing: str) -> tuple:
    """``(X, y)`` of OpenML dataset ``data_id`` as pandas objects."""
    # the one scikit-learn import of this module, made only here so that
    # importing the module and reading local files never load scikit-learn
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(data_id=data_id, as_frame=True, parser="auto")
    except OSError as err:  # no network, HTTP errors (URLError is an OSError)
        raise FileNotFoundError(
            f"{missing}; downloading OpenML id {data_id} failed: {err}"
        ) from err
    return bunch.data, bunch.target


def load_benchmark(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a named dataset of the offline folder as NumPy arrays.

    Parameters
    ----------
    name : str
        A key of :data:`BENCHMARKS`, for instance ``'pendigits'``,
        ``'optdigits'``, ``'letter'``, ``'satimage'``, ``'magic'``,
        ``'spambase'``, ``'higgs'`` (the 7000-row training file),
        ``'kin8nm'``, ``'mg'``, ``'segment'`` or ``'phoneme'``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float64
        The features; non-numeric columns are one-hot encoded
        (:func:`pandas.get_dummies`, every level kept), so ``n_features`` can
        exceed the number of columns in the file.
    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The target as found in the file: class labels (integers or strings)
        for classification, floats for regression; 2-D for ``'oes97'``.

    Raises
    ------
    ValueError
        If ``name`` is not a known dataset.
    FileNotFoundError
        If the dataset's file is not in :func:`shared_datasets_dir`.

    See Also
    --------
    load_table : Read any CSV, TSV or ARFF file.
    """
    name = _known_name(name)
    X, y = load_dataset(name)
    y_arr = y.to_numpy()
    spec = BENCHMARKS[name]
    if spec.task == "regression":
        y_arr = y_arr.astype(np.float64)
    return _numeric_features(X), y_arr


# --------------------------------------------------------------------------
# Synthetic data with a known answer
# --------------------------------------------------------------------------
def make_teacher_network(
    n_samples: int = 1000,
    n_features: int = 20,
    n_informative: int = 5,
    hidden_layer_sizes: Sequence[int] = (8,),
    *,
    task: str = "regression",
    n_classes: int = 2,
    noise: float = 0.0,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Data from a random tanh MLP that reads only a few of its inputs.

    A recovery test: a sparse network fitted to it should keep the
    ``n_informative`` informative features and need about
    ``hidden_layer_sizes`` neurons.

    Parameters
    ----------
    n_samples : int, default=1000
        Rows.
    n_features : int, default=20
        Columns of ``X`` (standard normal).
    n_informative : int, default=5
        Columns the teacher reads (a random subset); the others are noise.
    hidden_layer_sizes : sequence of int, default=(8,)
        The teacher's hidden layers (tanh), every neuron used.
    task : {"regression", "classification"}, default="regression"
        ``y`` is the teacher's output plus ``noise`` times standard normal
        noise, or the class with the largest noisy output (``n_classes``
        outputs; one output thresholded at 0 when ``n_classes == 2``).
    n_classes : int, default=2
        Classes of a classification task.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to the outputs.
    random_state : int, RandomState instance or None, default=None
        The same value gives the same data and teacher.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The inputs, independent standard normal.
    y : ndarray of shape (n_samples,)
        Floats (regression) or integer labels ``0 .. n_classes - 1``.
    teacher : dict
        ``informative`` (sorted column indices), ``coefs`` and ``intercepts``
        (the teacher's weights in ``MLPClassifier``'s layout: ``coefs[0]`` has
        zero rows for the uninformative columns).
    """
    sizes = [int(h) for h in hidden_layer_sizes]
    if not 1 <= int(n_informative) <= int(n_features):
        raise ValueError(
            f"n_informative must be between 1 and n_features={n_features}, got "
            f"{n_informative!r}"
        )
    if int(n_samples) < 1 or any(h < 1 for h in sizes):
        raise ValueError(
            "n_samples and every hidden layer size must be positive, got "
            f"n_samples={n_samples!r}, hidden_layer_sizes={hidden_layer_sizes!r}"
        )
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    if task == "classification" and int(n_classes) < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes!r}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise!r}")
    rng = _random_state(random_state)
    X = rng.standard_normal((int(n_samples), int(n_features)))
    informative = np.sort(rng.choice(int(n_features), int(n_informative), False))
    n_out = 1 if task == "regression" or int(n_classes) == 2 else int(n_classes)
    widths = [int(n_informative), *sizes, n_out]
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        coefs.append(rng.standard_normal((fan_in, fan_out)) * 2.0 / np.sqrt(fan_in))
        intercepts.append(0.1 * rng.standard_normal(fan_out))
    h = X[:, informative]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        h = h @ W + b
        if i < len(coefs) - 1:
            h = np.tanh(h)
    out = h + noise * rng.standard_normal(h.shape)
    if task == "regression":
        y = out[:, 0]
    elif n_out == 1:
        y = (out[:, 0] > 0).astype(np.int64)
    else:
        y = out.argmax(axis=1).astype(np.int64)
    first = np.zeros((int(n_features), widths[1]))
    first[informative] = coefs[0]
    teacher = dict(
        informative=informative,
        coefs=[first, *coefs[1:]],
        intercepts=intercepts,
    )
    return X, y, teacher


def _random_state(random_state) -> np.random.RandomState:
    """The generator ``random_state`` names (scikit-learn's convention, without it).

    This module imports no scikit-learn at load time (see its docstring).
    """
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)


def _mackey_glass_series(
    n_points: int,
    step: int,
    *,
    tau: float,
    beta: float,
    gamma: float,
    power: float,
    dt: float,
    history: float,
    discard: int,
) -> np.ndarray:
    """Every ``step``-th point of an RK4 solution of the delay equation.

    The solution lives on a grid of spacing ``dt`` with the delay a whole number
    (at least 2) of steps; the delayed value at a half step is the cubic
    through its four nearest grid values (error O(dt^4), so the scheme keeps
    RK4's order; the mean of the two neighbours would make it second order).
    The first ``discard`` grid points after the constant ``history`` are dropped.
    """
    lag = int(round(tau / dt))
    n_grid = discard + (n_points - 1) * step + 1
    x = np.empty(lag + n_grid)
    x[: lag + 1] = history

    def rate(now: float, delayed: float) -> float:
        return beta * delayed / (1.0 + delayed**power) - gamma * now

    for k in range(lag, lag + n_grid - 1):
        j = k - lag
        old, new = x[j], x[j + 1]
        mid = (9.0 * (old + new) - x[max(j - 1, 0)] - x[j + 2]) / 16.0
        k1 = rate(x[k], old)
        k2 = rate(x[k] + 0.5 * dt * k1, mid)
        k3 = rate(x[k] + 0.5 * dt * k2, mid)
        k4 = rate(x[k] + dt * k3, new)
        x[k + 1] = x[k] + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return x[lag + discard :: step]


def _whole_steps(value: float, dt: float, name: str) -> int:
    steps = value / dt
    if value <= 0 or abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        raise ValueError(
            f"{name}={value!r} must be a positive multiple of dt={dt!r} (the "
            "solver's grid)"
        )
    return int(round(steps))


def make_mackey_glass(
    n_samples: int = 1385,
    *,
    n_lags: int = 6,
    lag: int = 6,
    horizon: int = 85,
    tau: float = 17.0,
    sampling_interval: float = 6.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    power: float = 10.0,
    dt: float = 0.1,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lagged samples of the Mackey-Glass series, laid out as LIBSVM's ``mg``.

    The series solves the delay differential equation

    .. math:: \\frac{dx}{dt} = \\beta \\frac{x(t - \\tau)}{1 + x(t - \\tau)^n}
              - \\gamma x(t)

    (chaotic for ``tau=17``), is sampled every ``sampling_interval`` time
    units, and row ``i`` holds its values at the sample ``s_i`` and ``lag``,
    ``2 lag``, ... samples earlier; the target is the sample ``horizon``
    samples later. The defaults give the layout of the shared ``mg`` data,
    read off ``mg_scale.csv``: its column ``x_j`` is column ``x_1``
    ``6 (j - 1)`` rows back, its target is ``x_1`` 85 rows ahead (unscaled),
    and the lag autocorrelations of its rows are those of a series sampled
    every 6 time units (not every one, as the usual ``x(t), x(t - 6), ...``
    description suggests). ``mg_scale`` scales the features to [-1, 1];
    these are unscaled.

    Parameters
    ----------
    n_samples : int, default=1385
        Rows (consecutive samples).
    n_lags : int, default=6
        Features per row.
    lag : int, default=6
        Samples between consecutive features.
    horizon : int, default=85
        Samples between the first feature and the target.
    tau : float, default=17.0
        Delay of the equation (a multiple of ``dt``).
    sampling_interval : float, default=6.0
        Time between consecutive samples (a multiple of ``dt``).
    beta, gamma, power : float, default=0.2, 0.1, 10.0
        Parameters of the equation.
    dt : float, default=0.1
        Step of the fourth-order Runge-Kutta solver.
    random_state : int, RandomState instance or None, default=None
        Draws the constant initial history from U(0.5, 1.5); the first 1000
        time units are discarded. The same value gives the same data.

    Returns
    -------
    X : ndarray of shape (n_samples, n_lags)
        ``X[i, j]`` is the series ``j * lag`` samples before row ``i``'s.
    y : ndarray of shape (n_samples,)
        The series ``horizon`` samples after row ``i``'s.
    """
    for name, value, least in (
        ("n_samples", n_samples, 1),
        ("n_lags", n_lags, 1),
        ("lag", lag, 0),
        ("horizon", horizon, 0),
    ):
        if not isinstance(value, (int, np.integer)) or value < least:
            kind = "positive" if least else "non-negative"
            raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
    if _whole_steps(tau, dt, "tau") < 2:
        raise ValueError(f"tau={tau!r} must be at least 2 dt (dt={dt!r})")
    step = _whole_steps(sampling_interval, dt, "sampling_interval")
    rng = _random_state(random_state)
    back = (int(n_lags) - 1) * int(lag)
    series = _mackey_glass_series(
        back + int(n_samples) + int(horizon),
        step,
        tau=float(tau),
        beta=float(beta),
        gamma=float(gamma),
        power=float(power),
        dt=float(dt),
        history=rng.uniform(0.5, 1.5),
        discard=_whole_steps(1000.0, dt, "1000 time units"),
    )
    rows = np.arange(back, back + int(n_samples))
    X = np.stack([series[rows - j * int(lag)] for j in range(int(n_lags))], axis=1)
    return X, series[rows + int(horizon)]
