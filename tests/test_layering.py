"""The import directions of DESIGN.md ("Layers, and which way imports go").

Every module of ``skgroupsparse/`` is parsed (``ast``; nothing is imported),
including imports inside functions, and each import is checked against the
table below. A module missing from the table gets the rules every module
shares (no scikit-learn, no estimator modules).

    module            may import from skgroupsparse          third party
    ----------------  -------------------------------------  ----------------
    penalties         nothing                                torch only
    groups            nothing (never penalties)              torch only
    network           groups                                 torch only
    _jit              nothing                                numba only
    _kernels          _jit                                   numpy, numba only
    training          the package's public names (its __init__); below, its
                      modules, which nothing outside the package imports:
      .optimizers     nothing                                torch only
      .cuda_graph     nothing                                torch only
      .device         nothing                                numpy, torch,
                                                             threadpoolctl only
      .sparse_rows    nothing                                numpy, scipy,
                                                             torch only
      .components     penalties, _kernels                    torch only
      .readout        network                                torch only
      .engines        network, _kernels, .components,        numpy, torch only
                      .cuda_graph, .sparse_rows
      .diagnostics    penalties, groups, network,            torch only
                      .components
      .loop           penalties, groups, network, and the    torch only
                      modules above but .diagnostics
      .batched        network, .device, .engines, .loop,     torch only
                      .optimizers
      .__init__       the modules above                      nothing
    path              nothing                                numpy, torch only
    _sklearn          nothing                                scikit-learn only
    export            nothing                                anything
    _base             penalties, groups, network, training,  anything
                      path, _sklearn, export
    regularization    what _base may, and _base              anything
    group_lasso, shrinknet, target_sparsity, path_cv, _meta
                      what _base may, and _base,             anything
                      regularization, each other
    datasets          nothing that imports torch             no sklearn, torch
    plotting          anything but the estimator modules     no scikit-learn
    cli, __init__     anything                               anything

and, across the table: only the estimator modules (``_base`` and
``regularization`` included), ``_sklearn``, ``export`` (DESIGN.md puts the
exports, ``to_sklearn`` and ONNX, in the scikit-learn layer: a module of their
own that reads fitted estimators and builds scikit-learn's MLPs, importing
nothing of the package) and ``cli`` import scikit-learn (one
exception: ``datasets`` may import ``sklearn.datasets`` inside a function, for
the OpenML download that DESIGN.md gives it and issue 5 asks of
``fetch_openml``; importing ``datasets`` and reading local files still never
load scikit-learn, which a test checks); nothing imports the estimator modules
(``regularization`` among them: it fits estimators along alpha) or
``_sklearn`` (scikit-learn's private helpers, in one place) but ``__init__``,
``cli`` and the estimator modules themselves. The standard library is always
allowed. ``path`` (the pure maths of choosing alpha) names ``training``'s
types in its hints only, under ``TYPE_CHECKING``. ``_kernels`` (fused CPU kernels
of the training loop, the same maths as ``penalties`` and the optimizers) is a
layer beside ``penalties`` that only ``training`` uses; ``_jit`` (where numba
caches those kernels) sits under it, and ``cli`` reads it to report the
first-run compilation. Inside ``training`` the modules are checked one by one
(``training.loop`` and so on); an import under ``if TYPE_CHECKING:`` (type
hints only, e.g. a component naming ``ProximalTrainer``) is not a dependency
at run time and is not checked.
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = "skgroupsparse"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

ESTIMATORS = {
    "_base",
    "_meta",
    "regularization",
    "group_lasso",
    "shrinknet",
    "target_sparsity",
    "path_cv",
}
UNDER_ESTIMATORS = {"penalties", "groups", "network", "training", "path"}
#: the modules of the training package (the package itself is "training")
TRAINING_MODULES = {
    f"training.{name}"
    for name in (
        "optimizers",
        "cuda_graph",
        "device",
        "components",
        "readout",
        "engines",
        "diagnostics",
        "loop",
        "batched",
        "sparse_rows",
    )
}
ANY = None  # no restriction
ALL_MODULES = ANY

# module -> (skgroupsparse modules it may import, third-party allowed, forbidden)
# "third-party allowed" is a whitelist (ANY: any package); "forbidden" is a
# blacklist applied on top of it.
RULES = {
    "penalties": (set(), {"torch"}, set()),
    "groups": (set(), {"torch"}, set()),
    "network": ({"groups"}, {"torch"}, set()),
    "_jit": (set(), {"numba"}, set()),
    "_kernels": ({"_jit"}, {"numpy", "numba"}, set()),
    "training.optimizers": (set(), {"torch"}, set()),
    "training.cuda_graph": (set(), {"torch"}, set()),
    "training.device": (set(), {"numpy", "torch", "threadpoolctl"}, set()),
    "training.sparse_rows": (set(), {"numpy", "scipy", "torch"}, set()),
    "training.components": ({"penalties", "_kernels"}, {"torch"}, set()),
    "training.readout": ({"network"}, {"torch"}, set()),
    "training.engines": (
        {
            "network",
            "_kernels",
            "training.components",
            "training.cuda_graph",
            "training.sparse_rows",
        },
        {"numpy", "torch"},
        set(),
    ),
    "training.diagnostics": (
        {"penalties", "groups", "network", "training.components"},
        {"torch"},
        set(),
    ),
    "training.loop": (
        {"penalties", "groups", "network"}
        | TRAINING_MODULES - {"training.diagnostics", "training.batched"},
        {"torch"},
        set(),
    ),
    "training.batched": (
        {
            "network",
            "training.device",
            "training.engines",
            "training.loop",
            "training.optimizers",
        },
        {"torch"},
        set(),
    ),
    "training.__init__": (TRAINING_MODULES, set(), set()),
    "path": (set(), {"numpy", "torch"}, set()),
    "_sklearn": (set(), {"sklearn"}, set()),
    "export": (set(), ANY, set()),
    "_base": (UNDER_ESTIMATORS | {"_sklearn", "export"}, ANY, set()),
    "regularization": (UNDER_ESTIMATORS | {"_base", "_sklearn"}, ANY, set()),
    **{
        name: (UNDER_ESTIMATORS | {"_sklearn"} | ESTIMATORS, ANY, set())
        for name in ESTIMATORS - {"_base", "regularization"}
    },
    "datasets": (set(), ANY, {"sklearn", "torch"}),
    "plotting": (ALL_MODULES, ANY, {"sklearn"}),
    "cli": (ALL_MODULES, ANY, set()),
    "__init__": (ALL_MODULES, ANY, set()),
}
MAY_IMPORT_SKLEARN = ESTIMATORS | {"_sklearn", "export", "cli"}
MAY_IMPORT_ESTIMATORS = ESTIMATORS | {"cli", "__init__"}
# the package's __init__ exports the estimators: importing it counts as
# importing them; importing _sklearn counts as importing scikit-learn, which
# only the estimator layer does
EXPORTS_ESTIMATORS = ESTIMATORS | {"__init__", "_sklearn"}
DEFAULT_RULE = (ALL_MODULES, ANY, {"sklearn"})
# module -> {scikit-learn submodule: names} it may import inside a function only
LAZY_SKLEARN = {"datasets": {"sklearn.datasets": {"fetch_openml"}}}
# modules that must not even reach torch through skgroupsparse imports
NO_TORCH_TRANSITIVELY = {"datasets"}


def _imports(source, module):
    """``[(kind, name, lineno)]``: kind is "internal" or "external".

    ``name`` is the skgroupsparse module (first component after the package)
    or the top-level third-party package.
    """
    tree = ast.parse(source)
    found = []
    type_only = _type_checking_lines(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in type_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                if node.module:
                    names = [f"{PACKAGE}.{node.module}"]
                else:
                    names = [
                        f"{PACKAGE}.{alias.name}"
                        if alias.name in KNOWN_MODULES
                        else PACKAGE
                        for alias in node.names
                    ]
            elif node.module == PACKAGE:
                # from skgroupsparse import groups / import GroupLassoMLPRegressor
                names = [
                    f"{PACKAGE}.{alias.name}"
                    if alias.name in KNOWN_MODULES
                    else PACKAGE
                    for alias in node.names
                ]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE:
                target = parts[1] if len(parts) > 1 else "__init__"
                if target == "training" and len(parts) > 2:
                    target = f"training.{parts[2]}"  # a module of the package
                if target != module:
                    found.append(("internal", target, node.lineno))
            elif parts[0] == "__future__" or parts[0] in sys.stdlib_module_names:
                continue
            else:
                found.append(("external", parts[0], node.lineno))
    return found


def _type_checking_lines(tree):
    """Lines of the imports under ``if TYPE_CHECKING:`` (type hints only)."""
    lines = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        name = getattr(test, "id", None) or getattr(test, "attr", None)
        if isinstance(node, ast.If) and name == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(n.lineno for n in ast.walk(inner) if hasattr(n, "lineno"))
    return lines


def _allowed_lazy_lines(source, module):
    """Lines of the function-level imports that ``LAZY_SKLEARN[module]`` allows."""
    allowed = LAZY_SKLEARN.get(module, {})
    lines = set()
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if (
                isinstance(node, ast.ImportFrom)
                and not node.level
                and node.module in allowed
                and all(alias.name in allowed[node.module] for alias in node.names)
            ):
                lines.add(node.lineno)
    return lines


def check_module(module, source, graph=None):
    """Violations of the table by one module, as readable strings."""
    internal_ok, external_ok, forbidden = RULES.get(module, DEFAULT_RULE)
    problems = []
    lazy = _allowed_lazy_lines(source, module)
    for kind, name, line in _imports(source, module):
        where = f"{module}.py:{line} imports {name}"
        if kind == "external" and name == "sklearn" and line in lazy:
            continue
        if kind == "external":
            if name == "sklearn" and module not in MAY_IMPORT_SKLEARN:
                problems.append(
                    f"{where}: only the estimator modules and cli "
                    "may import scikit-learn"
                )
            elif name in forbidden:
                problems.append(f"{where}: forbidden for {module}")
            elif external_ok is not ANY and name not in external_ok:
                problems.append(
                    f"{where}: {module} may import only "
                    f"{sorted(external_ok)} and the standard library"
                )
        else:
            inside_training = module.startswith("training.")
            if name.startswith("training.") and not inside_training:
                problems.append(
                    f"{where}: the modules of training are internal; import "
                    "from skgroupsparse.training"
                )
            elif name == "training" and inside_training:
                problems.append(
                    f"{where}: inside training, import its modules (the "
                    "package's __init__ imports them all)"
                )
            elif name in EXPORTS_ESTIMATORS and module not in MAY_IMPORT_ESTIMATORS:
                problems.append(
                    f"{where}: nothing but __init__, cli and the "
                    "estimator modules imports an estimator module"
                )
            elif internal_ok is not ALL_MODULES and name not in internal_ok:
                problems.append(
                    f"{where}: {module} may import only "
                    f"{sorted(internal_ok) or 'no skgroupsparse module'}"
                )
    if graph is not None and module in NO_TORCH_TRANSITIVELY:
        for dep in _closure(module, graph):
            if "torch" in graph[dep]["external"]:
                problems.append(f"{module} reaches torch through {dep}")
    return problems


def _graph(sources):
    graph = {}
    for module, source in sources.items():
        imports = _imports(source, module)
        graph[module] = {
            "internal": {n for k, n, _ in imports if k == "internal"},
            "external": {n for k, n, _ in imports if k == "external"},
        }
    return graph


def _closure(module, graph):
    seen, todo = set(), [module]
    while todo:
        for dep in graph.get(todo.pop(), {}).get("internal", ()):
            if dep not in seen and dep in graph:
                seen.add(dep)
                todo.append(dep)
    return seen


def _package_sources():
    sources = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR)
        # a module of the training package counts as "training.<name>";
        # another subpackage would count as its top-level name
        module = rel.parts[0].removesuffix(".py")
        if module == "training":
            module = f"training.{rel.parts[1].removesuffix('.py')}"
        sources[module] = sources.get(module, "") + "\n" + path.read_text()
    return sources


SOURCES = _package_sources()
KNOWN_MODULES = set(SOURCES) | set(RULES) | {"helpers"}  # helpers: self-test


def test_the_package_is_found():
    assert {
        "penalties",
        "groups",
        "network",
        "training.loop",
        "training.engines",
        "training.__init__",
        "_base",
        "group_lasso",
        "__init__",
    } <= set(SOURCES)


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_follow_design_layers(module):
    problems = check_module(module, SOURCES[module], _graph(SOURCES))
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# the checker itself can fail
# --------------------------------------------------------------------------
BAD = {
    "groups": (
        "import numpy as np\n"
        "from skgroupsparse.penalties import L1\n"
        "def f():\n"
        "    import sklearn.base\n",
        ["numpy", "penalties", "sklearn"],
    ),
    "penalties": ("from . import groups\n", ["groups"]),
    "network": ("from .training import ProximalTrainer\n", ["training"]),
    "training.loop": (
        "from sklearn.utils import check_random_state\n"
        "from skgroupsparse import _base\n"
        "from skgroupsparse.training import FlatOptimizer\n"
        "from skgroupsparse.training.diagnostics import read_thresholds\n",
        ["sklearn", "_base", "training", "training.diagnostics"],
    ),
    "training.optimizers": (
        "import numpy\nfrom skgroupsparse.training.loop import TrainConfig\n",
        ["numpy", "training.loop"],
    ),
    "group_lasso": (
        "from skgroupsparse.training.engines import NumbaEngine\n",
        ["training.engines"],
    ),
    "path": (
        "from skgroupsparse.group_lasso import GroupLassoMLPRegressor\n",
        ["group_lasso"],
    ),
    "datasets": (
        "import torch\nimport sklearn.datasets\n"
        "def f():\n"
        "    from sklearn.linear_model import Lasso\n"
        "    from sklearn.datasets import fetch_openml, load_iris\n"
        "    import sklearn.datasets\n",
        ["torch", "sklearn", "sklearn", "sklearn", "sklearn"],
    ),
    "plotting": ("import sklearn.metrics\n", ["sklearn"]),
    "new_helper": ("from skgroupsparse.shrinknet import X\n", ["shrinknet"]),
    "target_sparsity": ("from skgroupsparse import plotting\n", ["plotting"]),
    "_base": ("from skgroupsparse import GroupLassoMLPClassifier\n", ["__init__"]),
}


@pytest.mark.parametrize("module", sorted(BAD))
def test_checker_flags_bad_module(module):
    source, culprits = BAD[module]
    problems = check_module(module, source)
    assert len(problems) == len(culprits), problems
    for culprit, problem in zip(culprits, problems, strict=True):
        assert f"imports {culprit}" in problem


def _cycles(graph):
    """The import cycles of ``graph`` (module -> its internal imports)."""
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph.get(module, {}).get("internal", ())):
            if dep not in graph:
                continue
            if state.get(dep) == "open":
                found.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_imports_go_one_way():
    """No import cycle between the package's modules (type-only imports under
    ``TYPE_CHECKING`` aside): every layer only looks down."""
    assert _cycles(_graph(SOURCES)) == []


def test_cycle_finder_can_fail():
    sources = {
        "training.loop": "from skgroupsparse.training.engines import X\n",
        "training.engines": "from skgroupsparse.training.components import Y\n",
        "training.components": "from skgroupsparse.training.loop import Z\n",
        "penalties": "import torch\n",
    }
    (cycle,) = _cycles(_graph(sources))
    assert set(cycle) == {"training.loop", "training.engines", "training.components"}


def test_checker_flags_torch_reached_through_the_package():
    sources = {
        "datasets": "from skgroupsparse import helpers\n",
        "helpers": "import numpy\nfrom . import network\n",
        "network": "import torch\n",
    }
    problems = check_module("datasets", sources["datasets"], _graph(sources))
    assert any("reaches torch" in p for p in problems)


def test_checker_accepts_good_modules():
    good = {
        "penalties": "from __future__ import annotations\nimport math\nimport torch\n",
        "network": "import torch\nfrom skgroupsparse.groups import FlatLayout\n",
        "training.engines": "import numpy\nfrom skgroupsparse import network\n"
        "from skgroupsparse.training.components import StepContext\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from skgroupsparse.training.loop import ProximalTrainer\n",
        "group_lasso": "from sklearn.base import BaseEstimator\n"
        "from skgroupsparse._base import BaseGroupSparseMLP\n",
        "cli": "import argparse\nfrom skgroupsparse import GroupLassoMLPRegressor\n",
        "datasets": "import numpy as np\nimport pandas as pd\n"
        "def fetch():\n"
        "    from sklearn.datasets import fetch_openml\n",
    }
    for module, source in good.items():
        assert check_module(module, source) == [], module


def test_datasets_never_loads_sklearn_offline(tmp_path):
    # the lazy exception above holds at run time: loading the module (on its
    # own: the package's __init__ imports the estimators) and reading a local
    # file leave scikit-learn and torch unloaded
    import subprocess

    path = str(PACKAGE_DIR / "datasets.py")
    # a tiny stand-in for the shared mg file: the test needs no shared data
    (tmp_path / "mg_scale.csv").write_text(
        "target,x1,x2,x3,x4,x5,x6\n1.0,0.1,0.2,0.3,0.4,0.5,0.6\n"
    )
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ds', {path!r})\n"
        "datasets = sys.modules['ds'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(datasets)\n"
        f"datasets.load_dataset('mg', data_home={str(tmp_path)!r})\n"
        "datasets.make_mackey_glass(5, random_state=0)\n"
        "assert 'sklearn' not in sys.modules, 'sklearn loaded'\n"
        "assert 'torch' not in sys.modules, 'torch loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
