"""Pieces shared by the built-in strategies: price columns, crosses and the position state machine.

Every built-in turns its indicators into four per-bar events (long entry, long
exit, short entry, short exit) and folds them into a target position with
:func:`next_target`: the event form calls it bar by bar, the vectorised form
runs the same rule over all bars at once (:func:`follow_events`). Sharing the
rule and the comparisons is what makes both forms decide identically.

A *cross above* at bar t means ``a[t-1] < b[t-1] and a[t] > b[t]`` (strict on
both bars); a *cross below* means ``a[t-1] > b[t-1] and a[t] < b[t]``. A NaN on
either bar (warm-up) is never a cross.
"""

from __future__ import annotations

import numba
import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.errors import DataError

__all__ = [
    "cross_above",
    "cross_below",
    "follow_events",
    "next_target",
    "price_column",
]


def price_column(bars: pl.DataFrame, name: str = "close") -> NDArray[np.float64]:
    """Return column ``name`` of ``bars`` as a float64 array.

    Raises:
        DataError: ``bars`` has no such column.
    """
    if name not in bars.columns:
        raise DataError(f"bars have no {name!r} column (columns: {', '.join(bars.columns)})")
    return bars.get_column(name).to_numpy().astype(np.float64, copy=False)


def cross_above(a: NDArray[np.float64], b: NDArray[np.float64] | float) -> NDArray[np.bool_]:
    """Return, per bar, whether ``a`` crossed strictly above ``b`` (a series or a level).

    Bar 0 is never a cross.
    """
    ref = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape[0], dtype=np.bool_)
    out[1:] = (a[:-1] < ref[:-1]) & (a[1:] > ref[1:])
    return out


def cross_below(a: NDArray[np.float64], b: NDArray[np.float64] | float) -> NDArray[np.bool_]:
    """Return, per bar, whether ``a`` crossed strictly below ``b`` (a series or a level).

    Bar 0 is never a cross.
    """
    ref = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape[0], dtype=np.bool_)
    out[1:] = (a[:-1] > ref[:-1]) & (a[1:] < ref[1:])
    return out


def next_target(
    state: float, *, long_entry: bool, long_exit: bool, short_entry: bool, short_exit: bool
) -> float:
    """Return the target position after one bar's events, given the current ``state``.

    Entries win over exits (a long entry reverses a short, a short entry a
    long); an exit flattens only the side it belongs to; with no event the
    target stays.
    """
    if long_entry:
        return 1.0
    if short_entry:
        return -1.0
    if (state > 0.0 and long_exit) or (state < 0.0 and short_exit):
        return 0.0
    return state


@numba.njit(cache=True)
def _follow_kernel(long_entry, long_exit, short_entry, short_exit, out):  # type: ignore[no-untyped-def]
    # Same rule as next_target, one bar after another, starting flat.
    state = 0.0
    for t in range(out.shape[0]):
        if long_entry[t]:
            state = 1.0
        elif short_entry[t]:
            state = -1.0
        elif (state > 0.0 and long_exit[t]) or (state < 0.0 and short_exit[t]):
            state = 0.0
        out[t] = state


def follow_events(
    *,
    long_entry: NDArray[np.bool_],
    long_exit: NDArray[np.bool_],
    short_entry: NDArray[np.bool_] | None = None,
    short_exit: NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """Return the target position of every bar by applying :func:`next_target` from flat.

    The event arrays are per-bar booleans of equal length; omitted short events
    never fire (a long-only strategy).
    """
    n = long_entry.shape[0]
    never = np.zeros(n, dtype=np.bool_)
    out = np.empty(n, dtype=np.float64)
    _follow_kernel(
        np.ascontiguousarray(long_entry, dtype=np.bool_),
        np.ascontiguousarray(long_exit, dtype=np.bool_),
        never if short_entry is None else np.ascontiguousarray(short_entry, dtype=np.bool_),
        never if short_exit is None else np.ascontiguousarray(short_exit, dtype=np.bool_),
        out,
    )
    return out
