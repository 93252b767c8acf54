"""Sparse training data, made dense one mini-batch at a time.

A one-hot encoded table is mostly zeros: its dense copy can be many times the
memory of the sparse matrix. :class:`SparseRows` holds a SciPy CSR matrix and
offers the few tensor operations the training loop applies to its data
(``shape``, row and column selection, slicing); a slice stays sparse, and
:meth:`SparseRows.dense` gives the dense rows, as a tensor on the training
device or as a NumPy array for the CPU kernels. The loop makes each mini-batch
dense just before its step.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["SparseRows", "dense_rows"]


class SparseRows:
    """Rows of a sparse matrix, made dense on demand.

    Parameters
    ----------
    matrix : scipy.sparse matrix or array
        The data, ``(n_samples, n_features)``; kept as CSR in ``dtype``.
    dtype : torch.dtype
        The dtype of the dense rows.
    device : torch.device or str
        Where :meth:`dense` puts them.
    as_numpy : bool, default=False
        :meth:`dense` gives NumPy arrays (the CPU kernels' form) instead of
        tensors.
    """

    def __init__(self, matrix, dtype: torch.dtype, device, as_numpy: bool = False):
        numpy_dtype = torch.empty((), dtype=dtype).numpy().dtype
        self.matrix = sp.csr_matrix(matrix, dtype=numpy_dtype)
        self.dtype = dtype
        self.device = torch.device(device)
        self.as_numpy = as_numpy

    def _like(self, matrix) -> SparseRows:
        return SparseRows(matrix, self.dtype, self.device, self.as_numpy)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_columns)``."""
        return self.matrix.shape

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def __getitem__(self, rows: slice) -> SparseRows:
        """The rows ``rows`` (a slice), still sparse."""
        if not isinstance(rows, slice):
            raise TypeError("SparseRows takes a slice of rows")
        return self._like(self.matrix[rows])

    def index_select(self, dim: int, index: Tensor) -> SparseRows:
        """The rows or columns at ``index``, as ``Tensor.index_select`` selects.

        Parameters
        ----------
        dim : {0, 1}
            Rows (0) or columns (1).
        index : LongTensor
            Their positions.

        Returns
        -------
        SparseRows
            The selection, still sparse.
        """
        index = np.asarray(index.cpu().numpy(), dtype=np.int64)
        if dim == 0:
            return self._like(self.matrix[index])
        if dim == 1:
            return self._like(self.matrix[:, index])
        raise ValueError(f"dim must be 0 or 1, got {dim}")

    def numpy_rows(self) -> SparseRows:
        """The same rows, made dense as NumPy arrays (the CPU kernels' form).

        Returns
        -------
        SparseRows
            The same matrix, whose :meth:`dense` gives NumPy arrays.
        """
        return SparseRows(self.matrix, self.dtype, self.device, as_numpy=True)

    def dense(self) -> Tensor | np.ndarray:
        """The rows as a dense, C-contiguous array.

        Returns
        -------
        Tensor or ndarray of shape (n_rows, n_columns)
            A tensor on ``device``, or a NumPy array with ``as_numpy``.
        """
        array = np.ascontiguousarray(self.matrix.toarray())
        if self.as_numpy:
            return array
        return torch.from_numpy(array).to(self.device)


def dense_rows(X):
    """``X`` as a dense batch.

    Parameters
    ----------
    X : SparseRows, Tensor or ndarray
        A batch of rows.

    Returns
    -------
    Tensor or ndarray
        ``X.dense()`` for :class:`SparseRows`, else ``X`` itself.
    """
    return X.dense() if isinstance(X, SparseRows) else X
