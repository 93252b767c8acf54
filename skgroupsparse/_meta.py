"""What the package's meta-estimators share: delegation to ``best_estimator_``.

:class:`~skgroupsparse.TargetSparsityCV` and
:class:`~skgroupsparse.RegularizationPathCV` wrap one of the package's
estimators, fit copies of it, and predict with the one they keep; the
prediction methods, the tags and the data attributes they copy from it are
written once here.
"""

from __future__ import annotations

import copy

from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

__all__ = ["BestEstimatorDelegate"]


def _estimator_has(attr: str):
    """``available_if`` check: the fitted (or given) estimator has ``attr``."""

    def check(self) -> bool:
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class BestEstimatorDelegate:
    """Mixin: predict, score and tags through ``best_estimator_``.

    The class it is mixed into has an ``estimator`` parameter and, once
    fitted, a ``best_estimator_`` (unless fitted without a refit).
    """

    def _best(self):
        """The fitted ``best_estimator_``, or a clear error."""
        check_is_fitted(self)
        if not hasattr(self, "best_estimator_"):
            raise AttributeError(
                f"This {type(self).__name__} was fitted with refit=False: it has "
                "no model to predict with. Fit the estimator at alpha_ yourself, "
                "or fit the search with refit='relaxed' or 'penalized'."
            )
        return self.best_estimator_

    def _take_data_attributes(self, fitted) -> None:
        """Copy what the fitted estimator learned of the data's shape."""
        self.n_features_in_ = fitted.n_features_in_
        for name in ("feature_names_in_", "classes_"):
            if hasattr(fitted, name):
                setattr(self, name, getattr(fitted, name))
            elif hasattr(self, name):
                delattr(self, name)

    def predict(self, X):
        """Predict with the best estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray
            Predictions of ``best_estimator_``.
        """
        return self._best().predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the best estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of ``best_estimator_``.
        """
        return self._best().predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from the best estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log probabilities of ``best_estimator_``.
        """
        return self._best().predict_log_proba(X)

    def score(self, X, y):
        """The best estimator's score (accuracy or R^2) on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets.

        Returns
        -------
        score : float
            ``best_estimator_.score(X, y)``.
        """
        return self._best().score(X, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = copy.deepcopy(inner.classifier_tags)
        tags.regressor_tags = copy.deepcopy(inner.regressor_tags)
        tags.target_tags = copy.deepcopy(inner.target_tags)
        tags.input_tags = copy.deepcopy(inner.input_tags)
        tags.non_deterministic = inner.non_deterministic
        return tags
