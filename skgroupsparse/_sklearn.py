"""scikit-learn's private helpers, imported in this one module.

The estimators need a few names that scikit-learn does not promise to keep
(private modules such as ``sklearn.utils._param_validation``, or names with a
leading underscore). They are imported here and nowhere else, so that a
scikit-learn release that moves one breaks one line. Its public API
(``sklearn.base``, ``sklearn.utils.validation``, ...) is imported where it is
used.
"""

from sklearn.base import _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call

__all__ = [
    "HasMethods",
    "Interval",
    "Options",
    "StrOptions",
    "_check_partial_fit_first_call",
    "_fit_context",
    "_safe_indexing",
]
