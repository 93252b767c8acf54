"""
Feature selection inside a Pipeline with GridSearchCV
=====================================================

The estimators are ordinary scikit-learn estimators: they go into a
:class:`~sklearn.pipeline.Pipeline` and :class:`~sklearn.model_selection.GridSearchCV`
tunes ``alpha`` like any hyper-parameter. The input-feature groups make the
network a feature selector as well: ``support_`` says which columns it still
reads and ``feature_importances_`` how much, so
:class:`~sklearn.feature_selection.SelectFromModel` works on it too.
"""

# %%
# Search alpha by cross-validation
# --------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skgroupsparse import GroupLassoMLPClassifier

# the training budgets here are short on purpose
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)

pipeline = make_pipeline(
    StandardScaler(),
    GroupLassoMLPClassifier((16,), max_iter=60, random_state=0),
)
alphas = np.geomspace(1e-4, 1e-1, 7)
search = GridSearchCV(
    pipeline,
    {"grouplassomlpclassifier__alpha": alphas},
    cv=StratifiedKFold(4, shuffle=True, random_state=0),
).fit(X_train, y_train)

best = search.best_estimator_[-1]
print(f"best alpha {search.best_params_['grouplassomlpclassifier__alpha']:.2g}")
print(f"cross-validated accuracy {search.best_score_:.3f}")
print(f"test accuracy {search.score(X_test, y_test):.3f}")
print(f"features read: {best.support_.sum()} of {X.shape[1]}")

# %%
# The columns it kept
# -------------------
# The scaler passes the columns on in order, so ``support_`` and
# ``feature_importances_`` line up with the DataFrame's column names.
kept = pd.Series(best.feature_importances_, index=X.columns)
print(kept[kept > 0].sort_values(ascending=False).round(3).to_string())

# %%
# How many features each alpha keeps
# ----------------------------------
# One refit per alpha on the training part gives the feature count next to the
# cross-validated score the search recorded.
n_features = [
    pipeline.set_params(grouplassomlpclassifier__alpha=alpha)
    .fit(X_train, y_train)[-1]
    .support_.sum()
    for alpha in alphas
]
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.errorbar(
    alphas,
    search.cv_results_["mean_test_score"],
    yerr=search.cv_results_["std_test_score"],
    fmt="o-",
    color="C1",
)
ax.set_xscale("log")
ax.set_xlabel("alpha")
ax.set_ylabel("cross-validated accuracy", color="C1")
ax_features = ax.twinx()
ax_features.plot(alphas, n_features, "s--", color="C0")
ax_features.set_ylabel("features read", color="C0")
ax.set_title("breast cancer: GridSearchCV over alpha")
fig.tight_layout()
plt.show()
