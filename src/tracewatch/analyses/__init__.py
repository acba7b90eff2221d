"""Analyses of kernel traces: CPU usage (:mod:`.cputop`), scheduling latency (:mod:`.sched`),
system calls (:mod:`.syscalls`), interrupts (:mod:`.irq`), I/O (:mod:`.io`), page allocations
(:mod:`.mem`); each with a ``*_periods`` variant per time window where it applies.

Owns the computations and their result tables. Imports :mod:`tracewatch.ctf` and
:mod:`tracewatch.kernel`; never :mod:`tracewatch.output` or :mod:`tracewatch.cli`.

Results are :class:`Table` objects: a dict of equal-length NumPy arrays (no pandas needed),
with :meth:`Table.to_pandas` for those who have pandas.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["Table"]


class Table(Mapping[str, np.ndarray]):
    """Columns of equal length, in a fixed order: ``t["tid"]``, ``len(t)``, ``t.rows()``."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self._c: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in columns.items()}
        lengths = {v.shape[0] for v in self._c.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: { {k: v.shape[0] for k, v in self._c.items()} }")

    def __getitem__(self, key: str) -> np.ndarray:
        return self._c[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._c)

    def __len__(self) -> int:
        """Number of columns (Mapping protocol); see :attr:`nrows` for rows."""
        return len(self._c)

    @property
    def nrows(self) -> int:
        return next(iter(self._c.values())).shape[0] if self._c else 0

    @property
    def columns(self) -> list[str]:
        return list(self._c)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts of Python values."""
        cols = {k: v.tolist() for k, v in self._c.items()}
        for i in range(self.nrows):
            yield {k: v[i] for k, v in cols.items()}

    def take(self, index: np.ndarray) -> Table:
        """Rows selected by an index array or boolean mask, in that order."""
        return Table({k: v[index] for k, v in self._c.items()})

    def to_pandas(self) -> Any:
        """A pandas DataFrame of the columns (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Table.to_pandas() needs pandas: pip install pandas") from e
        return pd.DataFrame(self._c)

    def __repr__(self) -> str:
        return f"Table({self.nrows} rows: {', '.join(self._c)})"
