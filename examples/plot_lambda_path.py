"""
A lambda path: sparsity and score against alpha
===============================================

:func:`~skgroupsparse.regularization.regularization_path` fits one estimator over a
sequence of penalty strengths, each fit starting from the previous one's
weights. By default the grid runs from a small alpha up to
:func:`~skgroupsparse.regularization.alpha_max`, the smallest alpha at which the first
layer of groups is zero at the start. :func:`~skgroupsparse.plotting.plot_path`
draws the fraction of zero weights and the held-out score along it.
"""

# %%
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skgroupsparse import GroupLassoMLPClassifier
from skgroupsparse.path import alpha_grid
from skgroupsparse.plotting import plot_path
from skgroupsparse.regularization import alpha_max, regularization_path

# the training budgets here are short on purpose
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_breast_cancer(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

estimator = GroupLassoMLPClassifier((32,), max_iter=60, random_state=0)
top = alpha_max(estimator, X_train, y_train)
alphas = alpha_grid(top, n_alphas=12, eps=1e-3)[::-1]  # small to large
records = regularization_path(
    estimator, X_train, y_train, alphas, validation_data=(X_val, y_val)
)

print(f"alpha_max = {top:.3g}")
for record in records:
    print(
        f"alpha {record['alpha']:.2e}  zero weights {record['sparsity']:.2f}  "
        f"features {record['live_features']:2d}  "
        f"neurons {record['live_neurons']}  "
        f"accuracy {record['validation_score']:.3f}"
    )

# %%
# The accuracy holds while most weights, and most of the 30 features, are
# removed; it drops only on the last stages, near ``alpha_max``, where a few
# features and neurons are left.
ax, ax_score = plot_path(records)
ax.axvline(top, color="grey", linestyle=":", label="alpha_max")
ax.set_title("breast cancer, one hidden layer of 32")
ax_score.set_ylabel("validation accuracy")
plt.tight_layout()
plt.show()
