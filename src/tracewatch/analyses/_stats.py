"""Grouped statistics with NumPy (count, min, mean, max, sample standard deviation).

Private helper of the analyses; imports NumPy and :mod:`tracewatch.kernel.fast`.
"""

from __future__ import annotations

import numpy as np

from ..kernel.fast import dense_index

__all__ = ["group_stats", "histogram", "groups"]


def group_stats(group: np.ndarray, values: np.ndarray, ngroups: int) -> dict[str, np.ndarray]:
    """Statistics of ``values`` per group (``group``: group index of each value, 0..ngroups-1).

    Returns count (int64), min_ns, max_ns (int64; 0 for empty groups), avg_ns and stdev_ns
    (float64; the sample standard deviation, computed around the group mean so that large
    durations keep their precision; NaN below two values).
    """
    v = values.astype(np.int64)
    count = np.bincount(group, minlength=ngroups).astype(np.int64)
    mn = np.zeros(ngroups, np.int64)
    mx = np.zeros(ngroups, np.int64)
    if v.size:
        big = np.iinfo(np.int64).max
        mn[:] = big
        np.minimum.at(mn, group, v)
        mx[:] = np.iinfo(np.int64).min
        np.maximum.at(mx, group, v)
        mn[count == 0] = 0
        mx[count == 0] = 0
    # exact integer sums for the mean (float sums of ns lose precision past 2**53)
    isum = np.zeros(ngroups, np.int64)
    np.add.at(isum, group, v)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(count > 0, isum / np.maximum(count, 1), np.nan)
        dev = v - avg[group] if v.size else np.zeros(0)
        ss = np.bincount(group, weights=dev * dev, minlength=ngroups)
        stdev = np.where(count > 1, np.sqrt(ss / np.maximum(count - 1, 1)), np.nan)
    return {"count": count, "min_ns": mn, "avg_ns": avg, "max_ns": mx, "stdev_ns": stdev}


def histogram(values: np.ndarray, resolution: int, lo: int | None = None, hi: int | None = None
              ) -> dict[str, np.ndarray]:
    """``resolution`` buckets of equal integer width between ``lo`` and ``hi`` (the data's
    min and max unless given): lo_ns, hi_ns (bucket [lo, hi), the last also holds hi) and
    count of the values inside."""
    if resolution < 1:
        raise ValueError("the histogram resolution must be at least 1")
    v = values.astype(np.int64)
    lo_ = (int(v.min()) if v.size else 0) if lo is None else lo
    hi_ = (int(v.max()) if v.size else lo_) if hi is None else hi
    width = max(1, -(-(hi_ - lo_) // resolution))  # ceil, at least 1
    edges = lo_ + width * np.arange(resolution + 1, dtype=np.int64)
    inside = v[(v >= lo_) & (v <= hi_)]
    idx = np.minimum((inside - lo_) // width, resolution - 1)
    counts = np.bincount(idx, minlength=resolution)[:resolution].astype(np.int64)
    return {"lo_ns": edges[:-1], "hi_ns": edges[1:], "count": counts}


def groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct values in order of first appearance, position of each one's first
    appearance, group index of each element): np.unique's (values, index, inverse) without a
    sort when the values are small non-negative integers."""
    (inv,), keys = dense_index([values])
    if inv.size == 0:
        return keys, np.zeros(0, np.int64), inv
    new = np.ones(inv.size, bool)
    new[1:] = inv[1:] > np.maximum.accumulate(inv)[:-1]
    return keys, np.flatnonzero(new), inv
