"""Helpers shared by the indicator modules: numba kernels and input validation.

Every check raises :class:`~tradepulse.errors.IndicatorError` with a message that
names the parameter and the offending value (for arrays, the first offending element,
e.g. ``close[3] = nan``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError

__all__ = ["as_float", "as_int", "as_prices", "as_series", "numba_kernel"]

_F = TypeVar("_F", bound=Callable[..., Any])


def numba_kernel(
    *, parallel: bool = False, error_model: Literal["python", "numpy"] | None = None
) -> Callable[[_F], _F]:
    """Return a decorator compiling a function with numba, keeping its type for mypy.

    The function is compiled with ``numba.njit(cache=True, fastmath=False)`` (cached on
    disk, strict IEEE arithmetic), plus ``parallel=True`` when ``parallel`` is set (so
    ``numba.prange`` loops run in parallel) and ``error_model`` when one is given
    (``"numpy"`` makes division by zero give inf/NaN instead of raising). Options left
    at their defaults are not passed to numba at all.
    """
    options: dict[str, Any] = {"cache": True, "fastmath": False}
    if parallel:
        options["parallel"] = True
    if error_model is not None:
        options["error_model"] = error_model

    def decorate(func: _F) -> _F:
        return cast(_F, numba.njit(**options)(func))

    return decorate


def as_series(values: ArrayLike, *, name: str, ndim: int = 1) -> NDArray[np.float64]:
    """Return ``values`` as a C-contiguous float64 array of ``ndim`` dimensions.

    Copies only when needed; the values themselves are not checked.

    Raises:
        IndicatorError: ``values`` cannot be made an array, holds something other than
            real numbers (booleans and integers are accepted), or is not ``ndim``-D.
    """
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise IndicatorError(f"{name} must be a {ndim}-D array of real numbers: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise IndicatorError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise IndicatorError(f"{name} must be {ndim}-D, got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float64)


def as_prices(values: ArrayLike, *, name: str = "close", ndim: int = 1) -> NDArray[np.float64]:
    """Return ``values`` as a C-contiguous float64 ``ndim``-D array of finite prices > 0.

    Raises:
        IndicatorError: as :func:`as_series`, or an element is not finite and > 0 (the
            message names the first one in C order, e.g. ``close[3] = nan``).
    """
    prices = as_series(values, name=name, ndim=ndim)
    bad = np.flatnonzero(~(np.isfinite(prices) & (prices > 0.0)).ravel())
    if bad.size:
        where = np.unravel_index(int(bad[0]), prices.shape)
        index = ", ".join(str(int(i)) for i in where)
        raise IndicatorError(
            f"{name} must be finite and > 0, got {name}[{index}] = {float(prices[where])!r}"
        )
    return prices


def as_int(value: int, *, name: str, minimum: int) -> int:
    """Return ``value`` as an ``int`` (Python or numpy integers; not ``bool``).

    Raises:
        IndicatorError: ``value`` is not an integer, or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise IndicatorError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise IndicatorError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def as_float(value: float, *, name: str) -> float:
    """Return ``value`` as a ``float`` (Python or numpy reals and integers; not ``bool``).

    Only the type is checked: NaN and infinities pass.

    Raises:
        IndicatorError: ``value`` is not a real number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise IndicatorError(f"{name} must be a real number, got {value!r}")
    return float(value)
