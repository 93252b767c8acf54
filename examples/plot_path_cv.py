"""
Choosing the size by cross-validation: RegularizationPathCV
===========================================================

:class:`~skgroupsparse.RegularizationPathCV` fits a path of alphas, from small
to large, on every fold, scores every stage on the held-out fold, and keeps the
smallest network whose mean score is within one standard error of the best
(``selection="one_se"``). The path is then run on all the training data up to
that alpha, and the network there is trained on without the penalty on the
support it selected (the relaxed fit). Here a (64, 32) network on digits.
"""

# %%
# The search
# ----------
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skgroupsparse import GroupLassoMLPClassifier, RegularizationPathCV
from skgroupsparse.plotting import plot_path_cv

# each stage of the path has a budget of max_iter epochs: running it out warns
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.25, stratify=y, random_state=0
)
net = GroupLassoMLPClassifier((64, 32), max_iter=40, remove_dead=True, random_state=0)
search = RegularizationPathCV(net, n_alphas=10, cv=5).fit(X_train, y_train)

print(f"alpha chosen: {search.alpha_:.3g} (stage {search.best_index_ + 1} of 10)")
print(f"live neurons: {search.best_estimator_.active_neurons_}")
print(f"test accuracy: {search.score(X_test, y_test):.3f}")
dense = MLPClassifier((64, 32), random_state=0).fit(X_train, y_train)
print(f"dense (64, 32) MLPClassifier: {dense.score(X_test, y_test):.3f}")

# %%
# The path
# --------
# Each point is a stage: its mean live neurons over the five folds and its
# mean held-out accuracy, with one standard error. The dashed line is the best
# mean score less its standard error; the circled stage is the smallest
# network above it.
ax = plot_path_cv(search)
ax.set_xscale("log")
plt.show()
