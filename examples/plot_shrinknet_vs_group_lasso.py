"""
ShrinkNet against the group lasso
=================================

Two ways to make a network learn its width. The group lasso penalises the
norm of every neuron's outgoing weights. A ShrinkNet gives every neuron a
switch ``beta`` that scales its output, puts an l1 penalty on the switches and
a small l2 penalty on the weights, and removes a neuron when its switch
reaches zero. Over the product of the two penalties the ShrinkNet is a concave
group penalty (see the user guide), so it shrinks large groups less.

Each is fitted over its own grid of penalty strengths on digits (the two
alphas are on different scales: a switch penalty is not a group norm), and each
fit is one point of accuracy against live neurons.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skgroupsparse import GroupLassoMLPClassifier, ShrinkNetClassifier

# the training budgets here are short on purpose
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.25, stratify=y, random_state=0
)

grids = {
    "group lasso": np.geomspace(3e-4, 8e-3, 6),
    "ShrinkNet": np.geomspace(1e-3, 5e-2, 6),
}
results = {"group lasso": [], "ShrinkNet": []}
for step in range(6):
    models = {
        "group lasso": GroupLassoMLPClassifier(
            (64,),
            alpha=grids["group lasso"][step],
            remove_dead=True,
            max_iter=60,
            random_state=0,
        ),
        "ShrinkNet": ShrinkNetClassifier(
            (64,),
            alpha=grids["ShrinkNet"][step],
            alpha2=1e-4,
            max_iter=60,
            random_state=0,
        ),
    }
    for name, model in models.items():
        model.fit(X_train, y_train)
        neurons = model.active_neurons_[0]
        accuracy = model.score(X_test, y_test)
        results[name].append((neurons, accuracy))
        print(
            f"{name:<12} alpha {model.alpha:.1e}: {neurons:2d} neurons, "
            f"{model.support_.sum():2d} pixels, accuracy {accuracy:.3f}"
        )

# %%
# Points further up and to the left are smaller networks that score better.
fig, ax = plt.subplots(figsize=(6.5, 4))
for (name, points), marker in zip(results.items(), ["o", "s"]):
    neurons, accuracy = np.array(points).T
    ax.plot(neurons, accuracy, marker + "-", label=name)
ax.set_xlabel("live hidden neurons (of 64)")
ax.set_ylabel("test accuracy")
ax.set_title("digits, one hidden layer of 64 to start")
ax.legend()
fig.tight_layout()
plt.show()
