"""Membership of many integer keys in a sorted key array, cache-friendly.

The fence index and the zone transitions look up tens of thousands of packed keys
(cell and fence, record and fence) per micro-batch in sorted arrays of up to a
million keys.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["find_sorted"]

I64 = npt.NDArray[np.int64]

_SORT_NEEDLES_MIN = 256


def find_sorted(keys: I64, needles: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """``(pos, hit)``: where each needle sits in the sorted ``keys`` and whether it is there.

    Many needles are looked up in sorted order (and put back): a binary search for random
    needles in a large array misses the cache at most of its steps, sorted ones walk it
    in order (measured in 632k keys: 120k needles 36 ms unsorted, 7 ms with the sort; 3,000
    needles 1.1 ms and 0.5 ms; 500 needles 0.14 ms and 0.10 ms).
    """
    if keys.size == 0:
        return np.zeros(needles.size, dtype=np.int64), np.zeros(needles.size, dtype=bool)
    if needles.size > _SORT_NEEDLES_MIN:
        order = np.argsort(needles)
        pos = np.empty(needles.size, dtype=np.int64)
        pos[order] = np.searchsorted(keys, needles[order])
    else:
        pos = np.searchsorted(keys, needles)
    np.minimum(pos, keys.size - 1, out=pos)
    return pos, keys[pos] == needles
