"""skgroupsparse: scikit-learn MLPs that learn their own size by group sparsity."""

__version__ = "0.1.0.dev0"

from skgroupsparse.group_lasso import GroupLassoMLPClassifier, GroupLassoMLPRegressor

__all__ = ["GroupLassoMLPClassifier", "GroupLassoMLPRegressor", "__version__"]
