"""The figures draw what the records say."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from skgroupsparse import plotting  # noqa: E402

RECORDS = [
    dict(alpha=1e-2, sparsity=0.9, live_neurons=[3, 2], validation_score=0.7),
    dict(alpha=1e-3, sparsity=0.5, live_neurons=[10, 6], validation_score=0.9),
    dict(alpha=1e-1, sparsity=1.0, live_neurons=[1, 1], validation_score=0.1),
]


def test_plot_path_draws_sparsity_and_score_against_alpha():
    ax, ax_score = plotting.plot_path(RECORDS)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, [1e-3, 1e-2, 1e-1])
    np.testing.assert_allclose(y, [0.5, 0.9, 1.0])
    np.testing.assert_allclose(ax_score.lines[0].get_data()[1], [0.9, 0.7, 0.1])
    assert ax.get_xscale() == "log"
    # no score recorded: no score axis
    _, none = plotting.plot_path([dict(r, validation_score=None) for r in RECORDS])
    assert none is None


def test_plot_size_space_follows_decreasing_alpha():
    ax = plotting.plot_size_space(RECORDS)
    x, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(x, [1, 3, 10])
    np.testing.assert_array_equal(y, [1, 2, 6])
    assert [t.get_text() for t in ax.texts] == ["0.1", "0.01", "0.001"]
    with pytest.raises(ValueError, match="two hidden layers"):
        plotting.plot_size_space([dict(alpha=1.0, live_neurons=[3])])


def test_a_missing_matplotlib_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skgroupsparse\[plot\]"):
        plotting.plot_path(RECORDS)


class _Search:
    """What plot_path_cv reads of a fitted RegularizationPathCV."""

    n_splits_ = 4
    best_index_ = 1
    alpha_ = 1e-3
    selection = "one_se"
    size = "neurons"
    cv_results_ = dict(
        mean_test_score=np.array([0.90, 0.88, 0.70]),
        std_test_score=np.array([0.04, 0.02, 0.06]),
        mean_n_neurons=np.array([30.0, 12.5, 3.0]),
        mean_live_neurons=np.array([[20.0, 10.0], [8.5, 4.0], [2.0, 1.0]]),
        mean_live_features=np.array([8.0, 6.0, 2.0]),
        mean_n_params=np.array([500.0, 160.0, 40.0]),
    )


def test_plot_path_cv_draws_mean_and_standard_error_against_size():
    ax = plotting.plot_path_cv(_Search())
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, [30.0, 12.5, 3.0])
    np.testing.assert_allclose(y, [0.90, 0.88, 0.70])
    # the error bars span one standard error: std / sqrt(4)
    segments = ax.collections[0].get_segments()
    np.testing.assert_allclose(
        [seg[1][1] - seg[0][1] for seg in segments], [0.04, 0.02, 0.06]
    )
    marks = [line for line in ax.lines if line.get_markersize() == 13]
    assert [tuple(m.get_data()[0]) for m in marks] == [(12.5,)]
    threshold = [line for line in ax.lines if line.get_linestyle() == "--"]
    np.testing.assert_allclose(threshold[0].get_ydata(), [0.88, 0.88])
    # a linear model has no hidden neurons: its size is in features
    linear = _Search()
    linear.cv_results_ = dict(_Search.cv_results_, mean_live_neurons=np.zeros((3, 0)))
    ax = plotting.plot_path_cv(linear)
    np.testing.assert_allclose(ax.lines[0].get_data()[0], [8.0, 6.0, 2.0])
    assert ax.get_xlabel() == "mean live input features"
    # the size the search counts: parameters by default, features on request
    for size, expected in (("params", [500.0, 160.0, 40.0]), ("features", [8, 6, 2])):
        counted = _Search()
        counted.size = size
        ax = plotting.plot_path_cv(counted)
        np.testing.assert_allclose(ax.lines[0].get_data()[0], expected)
        assert size[:-1] in ax.get_xlabel()
