"""
The architecture learned on digits
==================================

A group-lasso MLP starts with two hidden layers of 64 and 32 neurons on the
8x8 digits. The penalty puts one group on every input pixel (its outgoing
weights) and one on every hidden neuron, so whole pixels and whole neurons reach
exactly zero; ``remove_dead=True`` slices them out while training. We compare
the network it ends with against scikit-learn's dense ``MLPClassifier`` of the
starting size.
"""

# %%
# Fit both networks
# -----------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skgroupsparse import GroupLassoMLPClassifier

# the training budgets here are short on purpose
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

sparse = GroupLassoMLPClassifier(
    (64, 32), alpha=1e-3, remove_dead=True, max_iter=150, random_state=0
).fit(X_train, y_train)
dense = MLPClassifier((64, 32), max_iter=400, random_state=0).fit(X_train, y_train)

print(f"group lasso: test accuracy {sparse.score(X_test, y_test):.3f}")
print(f"dense MLP:   test accuracy {dense.score(X_test, y_test):.3f}")
print(f"live neurons {sparse.active_neurons_} of [64, 32]")
print(f"kept pixels  {sparse.support_.sum()} of {X.shape[1]}")
dense_params = sum(w.size + b.size for w, b in zip(dense.coefs_, dense.intercepts_))
# ``coefs_`` keep the starting widths (removed units are zero); ``network_`` is
# the compacted network that ``predict`` runs
sparse_params = sum(p.numel() for p in sparse.network_.parameters())
print(f"parameters   {sparse_params} against {dense_params}")

# %%
# What it kept
# ------------
# Left: the pixels the network reads (``support_``) coloured by
# ``feature_importances_``, the norm of each pixel's outgoing weights. Most of
# the removed pixels are in the left and right columns, nearly constant on
# digits. Right: the width of every layer, dense against learned.
fig, (ax_pixels, ax_widths) = plt.subplots(1, 2, figsize=(9, 3.8))
importance = np.where(sparse.support_, sparse.feature_importances_, np.nan)
image = ax_pixels.imshow(importance.reshape(8, 8), cmap="viridis")
ax_pixels.set_title(f"pixels kept: {sparse.support_.sum()} of 64")
ax_pixels.set_xticks([])
ax_pixels.set_yticks([])
fig.colorbar(image, ax=ax_pixels, label="outgoing weight norm")

layers = ["inputs", "hidden 1", "hidden 2", "outputs"]
dense_widths = [64, 64, 32, 10]
learned_widths = [int(sparse.support_.sum()), *sparse.active_neurons_, 10]
position = np.arange(len(layers))
ax_widths.bar(position - 0.2, dense_widths, width=0.4, label="dense MLP")
ax_widths.bar(position + 0.2, learned_widths, width=0.4, label="group lasso")
ax_widths.set_xticks(position, layers)
ax_widths.set_ylabel("units")
ax_widths.set_title("layer widths")
ax_widths.legend()
fig.tight_layout()
plt.show()
