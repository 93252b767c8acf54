"""skgroupsparse: scikit-learn MLPs that learn their own size by group sparsity."""

__version__ = "0.1.0.dev0"

from skgroupsparse.group_lasso import GroupLassoMLPClassifier, GroupLassoMLPRegressor
from skgroupsparse.path_cv import RegularizationPathCV
from skgroupsparse.shrinknet import ShrinkNetClassifier, ShrinkNetRegressor
from skgroupsparse.target_sparsity import TargetSparsityCV

__all__ = [
    "GroupLassoMLPClassifier",
    "GroupLassoMLPRegressor",
    "RegularizationPathCV",
    "ShrinkNetClassifier",
    "ShrinkNetRegressor",
    "TargetSparsityCV",
    "__version__",
]
