"""Every public class, function, method, parameter and fitted attribute is documented.

The public surface is what a user can reach by name: the ``__all__`` of the
package and of every module without a leading underscore. Each class or
function in it, and every public method or property a class defines in
skgroupsparse (inherited scikit-learn and torch members are theirs to
document), is validated with :func:`numpydoc.validate.validate`.

Checks not enforced, and why:

- ``EX01`` (Examples), ``SA01`` (See Also), ``ES01`` (extended summary): the
  gallery and the user guide carry the examples and the cross-references; most
  helpers of the engine need neither.
- ``SA04`` (a description for every See Also entry): the entries name siblings
  whose own summaries say what they are.
- ``SS05`` (summary starts with an infinitive verb): numpydoc's rule for this
  misfires on summaries such as "Soft threshold ..." that start with a noun
  phrase on purpose.
- ``GL01``/``GL02`` (text on the line after the opening/before the closing
  quotes): layout of the quotes, not content.
- ``RT02`` (Returns names only the type): named returns read better for
  tuples, and numpydoc accepts both forms.

Module constants (tables such as ``PENALTIES``) are data, not callables: they
are documented in their module docstring and by ``#:`` comments, which numpydoc
cannot validate.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

import skgroupsparse  # noqa: E402

IGNORED_CHECKS = {"EX01", "SA01", "ES01", "SA04", "SS05", "GL01", "GL02", "RT02"}


def _public_modules():
    yield skgroupsparse
    for info in pkgutil.iter_modules(skgroupsparse.__path__):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"skgroupsparse.{info.name}")


def _defined_here(obj) -> bool:
    return getattr(obj, "__module__", "").startswith("skgroupsparse")


def _unwrap(attr):
    if isinstance(attr, (staticmethod, classmethod)):
        return attr.__func__
    if isinstance(attr, functools.cached_property):
        return attr.func
    return attr


def _public_members(cls):
    """``(name, owner)`` of the public methods and properties skgroupsparse defines.

    ``owner`` is the class whose docstring documents the member: an override
    without a docstring of its own inherits its base's, as Sphinx's autodoc
    and :func:`inspect.getdoc` show it, so the base's is the one validated.
    """
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owners = [klass for klass in cls.__mro__ if name in vars(klass)]
        if not owners or not _defined_here(owners[0]):
            continue
        attr = _unwrap(vars(owners[0])[name])
        if not (isinstance(attr, property) or inspect.isfunction(attr)):
            continue
        documented = [
            klass for klass in owners if _unwrap(vars(klass)[name]).__doc__ is not None
        ]
        owner = documented[0] if documented else owners[0]
        if _defined_here(owner):
            yield name, owner


def _public_objects():
    names = set()
    for module in _public_modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if name.startswith("__") or not _defined_here(obj):
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # a constant table
            path = f"{obj.__module__}.{obj.__qualname__}"
            names.add(path)
            if inspect.isclass(obj):
                names.update(
                    f"{owner.__module__}.{owner.__qualname__}.{member}"
                    for member, owner in _public_members(obj)
                )
    return sorted(names)


PUBLIC = _public_objects()


def test_the_public_surface_is_found():
    # the enumeration itself must see the estimators, their methods and the engine
    for expected in (
        "skgroupsparse.group_lasso.GroupLassoMLPClassifier",
        "skgroupsparse._base.BaseGroupSparseMLP.fit",
        "skgroupsparse._base.GroupSparseClassifierMixin.predict_proba",
        "skgroupsparse._base.GroupSparseRegressorMixin.partial_fit",
        "skgroupsparse.groups.FlatLayout.weight_shapes",
        "skgroupsparse.target_sparsity.TargetSparsityCV.fit",
        "skgroupsparse.penalties.Penalty.prox",
        "skgroupsparse.penalties.L1MinusL2.alpha_max",
        "skgroupsparse.groups.build_group_map",
        "skgroupsparse.regularization.regularization_path",
        "skgroupsparse.path.alpha_grid",
        "skgroupsparse.training.loop.ProximalTrainer.fit",
        "skgroupsparse.training.engines.StepEngine.prox",
        "skgroupsparse.datasets.load_dataset",
    ):
        assert expected in PUBLIC, expected
    assert not any(".get_params" in name for name in PUBLIC)  # sklearn's own


def test_an_override_without_docstring_is_validated_through_its_base():
    from skgroupsparse.penalties import L1, Penalty

    assert "value" not in vars(L1) or vars(L1)["value"].__doc__ is None
    assert dict(_public_members(L1))["value"] is Penalty


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_is_valid(name):
    result = numpydoc_validate.validate(name)
    errors = [
        f"{code}: {message}"
        for code, message in result["errors"]
        if code not in IGNORED_CHECKS
    ]
    assert not errors, f"{name}\n" + "\n".join(errors)


def _documented_attributes(cls) -> set[str]:
    from numpydoc.docscrape import ClassDoc

    doc = ClassDoc(cls, config={"show_class_members": False})
    return {item.name.split(":")[0].strip() for item in doc["Attributes"]}


def _small_problem(kind):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    if kind == "classifier":
        return X, (X[:, 0] > 0).astype(int)
    return X, X[:, 0] - X[:, 1]


def _estimators():
    from skgroupsparse import (
        GroupLassoMLPClassifier,
        GroupLassoMLPRegressor,
        ShrinkNetClassifier,
        ShrinkNetRegressor,
        TargetSparsityCV,
    )

    small = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    yield GroupLassoMLPClassifier(alpha=1e-3, **small), "classifier"
    yield GroupLassoMLPRegressor(alpha=1e-3, remove_dead=True, **small), "regressor"
    yield GroupLassoMLPClassifier(alpha=1e-3, solver="rvsm", **small), "classifier"
    yield ShrinkNetClassifier(alpha=1e-3, **small), "classifier"
    yield ShrinkNetRegressor(alpha=1e-3, remove_dead=True, **small), "regressor"
    yield (
        TargetSparsityCV(
            GroupLassoMLPRegressor(**small), target_neurons=[3], cv=2, max_trainings=3
        ),
        "regressor",
    )


@pytest.mark.parametrize(
    "estimator, kind",
    list(_estimators()),
    ids=lambda value: type(value).__name__ if not isinstance(value, str) else value,
)
def test_every_fitted_attribute_is_documented(estimator, kind):
    X, y = _small_problem(kind)
    estimator.fit(X, y)
    fitted = {
        name
        for name in vars(estimator)
        if name.endswith("_") and not name.startswith("_")
    }
    assert fitted, "the fit set no public attribute"
    missing = fitted - _documented_attributes(type(estimator))
    assert not missing, f"{type(estimator).__name__} does not document {missing}"
