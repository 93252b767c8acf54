"""
Asking for a size: TargetSparsityCV
===================================

Instead of tuning ``alpha``, ask for the size you want.
:class:`~skgroupsparse.TargetSparsityCV` reads, after each training, the zero
threshold of every group (its gradient norm over its weight: the alpha at
which it would switch off). While the network is too dense, ``alpha`` grows at
least tenfold; once a training has been too sparse, the reading proposes the
alpha that keeps the number of neurons asked for, inside the bracket the
trainings left. Each training stops at the first mini-batch where the target
holds.
Here a (64, 32) network on digits is asked for 12 and 8 live neurons, one
alpha per layer.
"""

# %%
# The search
# ----------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skgroupsparse import GroupLassoMLPClassifier, TargetSparsityCV

# trainings that end at the target, not at convergence, warn: quiet here
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.25, stratify=y, random_state=0
)

target = [12, 8]
search = TargetSparsityCV(
    GroupLassoMLPClassifier((64, 32), alpha=1e-3, remove_dead=True, random_state=0),
    target_neurons=target,
    max_trainings=8,
).fit(X_train, y_train)

print(f"target met: {search.target_met_} after {search.n_trainings_} trainings")
print(f"alpha per layer of units: {np.array2string(search.alpha_, precision=3)}")
for i, row in enumerate(search.history_, 1):
    print(f"training {i}: live neurons {row['live_neurons']}, met {row['met']}")
searched = search.search_estimator_.score(X_test, y_test)
print(f"test accuracy at the end of the search: {searched:.3f}")

# %%
# The relaxed refit
# -----------------
# The search stops each training at the first mini-batch where the size is
# reached, under an alpha large enough to force it, so the weights it leaves
# are heavily shrunk (``search_estimator_``). The model the search returns,
# ``best_estimator_`` (``refit="relaxed"``, the default), is that network
# trained on at ``alpha=0`` with every zero weight held at zero, for the
# number of epochs early stopping chooses on a tenth of the training data: the
# same size, trained for it. A dense network of that size trained from scratch
# is the reference: knowing the size in advance is what the search replaces.
relaxed = search.best_estimator_
dense = MLPClassifier(tuple(target), max_iter=400, random_state=0)
dense.fit(X_train, y_train)
print(
    f"relaxed: live neurons {relaxed.active_neurons_}, "
    f"test accuracy {search.score(X_test, y_test):.3f}"
)
print(f"dense {tuple(target)} from scratch: {dense.score(X_test, y_test):.3f}")

# %%
# Left: each training's live neurons per layer, with the targets dashed. Right:
# the test accuracy after the search, after the relaxed refit, and of the dense
# network of the target size.
trainings = np.arange(1, len(search.history_) + 1)
live = np.array([row["live_neurons"] for row in search.history_])
fig, (ax, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
for layer, color in enumerate(["C0", "C1"]):
    ax.plot(trainings, live[:, layer], "o-", color=color, label=f"hidden {layer + 1}")
    ax.axhline(target[layer], color=color, linestyle="--", linewidth=1)
ax.set_xticks(trainings)
ax.set_xlabel("training")
ax.set_ylabel("live neurons")
ax.set_title(f"TargetSparsityCV: target {tuple(target)}")
ax.legend()
labels = ["search", "relaxed refit", "dense, from scratch"]
scores = [searched, search.score(X_test, y_test), dense.score(X_test, y_test)]
ax_score.bar(labels, scores, color=["C0", "C2", "C7"])
ax_score.set_ylim(0, 1)
ax_score.set_ylabel("test accuracy")
ax_score.set_title("the same size, three ways")
fig.tight_layout()
plt.show()
