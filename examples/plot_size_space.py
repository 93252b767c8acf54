"""
The size-space trajectory of a two-layer network
================================================

Along a regularization path, plot the live neurons of the first hidden layer
against those of the second, one point per alpha: this is the path the
network's size takes as the penalty grows, its trajectory in "size space"
(:func:`~skgroupsparse.plotting.plot_size_space`). The paths are taken from
small to large alpha, every stage warm-started from the previous one
(:func:`~skgroupsparse.regularization.regularization_path`).

With one alpha for every group, the second hidden layer drops a few neurons
early and then holds on, while the first keeps shrinking. A neuron's group is
its outgoing weights, penalised by ``alpha * sqrt(group size) * norm``: a
second-layer neuron feeds the 10 outputs (weight ``sqrt(10)``), a first-layer
neuron the 24 second-layer neurons (weight ``sqrt(24)``), so the second layer
is penalised less per unit of norm. A per-layer
``alpha`` (``alpha[0]`` for the input features, ``alpha[k]`` for hidden layer
``k``) steers the trajectory: here the second layer's alpha is eight times the
others'.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skgroupsparse import GroupLassoMLPClassifier
from skgroupsparse.path import alpha_grid
from skgroupsparse.plotting import plot_size_space
from skgroupsparse.regularization import alpha_max, regularization_path

# the training budgets here are short on purpose
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(
    X / 16.0, y, test_size=0.25, stratify=y, random_state=0
)

estimator = GroupLassoMLPClassifier((48, 24), max_iter=40, random_state=0)
grid = alpha_grid(3 * alpha_max(estimator, X_train, y_train), 10, eps=1e-2)[::-1]
weightings = {"one alpha": (1, 1, 1), "alpha x8 on hidden 2": (1, 1, 8)}
paths = {}
for name, weights in weightings.items():
    alphas = [list(alpha * np.array(weights)) for alpha in grid]
    paths[name] = regularization_path(
        estimator, X_train, y_train, alphas, validation_data=(X_val, y_val)
    )
    for record in paths[name]:
        print(
            f"{name:<21} alpha {record['alpha'][0]:.1e}  "
            f"neurons {record['live_neurons']}  "
            f"accuracy {record['validation_score']:.3f}"
        )

# %%
# Left: the two trajectories, from the first stage (top right) towards smaller
# networks. Right: the validation accuracy against the total number of
# live hidden neurons along each path. Steering the shrinkage changes where the
# network ends up in size space; whether it finds a better accuracy for its size
# is a question for the data (here the two are level at the dense end and the
# uniform alpha is clearly ahead at small sizes).
fig, (ax_size, ax_score) = plt.subplots(1, 2, figsize=(10, 4.2))
for (name, records), color in zip(paths.items(), ["C2", "C4"]):
    plot_size_space(records, ax=ax_size, annotate=False)
    ax_size.get_lines()[-1].set(color=color, label=name)
    neurons = [sum(record["live_neurons"]) for record in records]
    accuracy = [record["validation_score"] for record in records]
    ax_score.plot(neurons, accuracy, "o-", color=color, label=name)
ax_size.set_title("digits, starting at (48, 24)")
ax_size.legend()
ax_score.set_xlabel("live hidden neurons (both layers)")
ax_score.set_ylabel("validation accuracy")
ax_score.set_title("accuracy against size")
ax_score.legend()
fig.tight_layout()
plt.show()
