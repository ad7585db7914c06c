"""Market phase rules over Kuramoto R, entropy change and mean Ricci curvature.

The rules, checked in this order at every bar (first match wins), with the default
thresholds of :class:`PhaseThresholds`:

1. ``PROTO``: ``R < 0.4`` and ``dH > 0`` (no synchrony, disorder rising);
2. ``PRECOGNITIVE``: ``0.4 <= R <= 0.7`` and ``dH <= 0`` (partial synchrony,
   disorder falling);
3. ``EMERGENT``: ``R >= 0.75`` and ``dH < 0`` and ``curvature < 0`` (strong
   synchrony, ordering, negatively curved market graph);
4. ``POST_EMERGENT``: ``R <= 0.7`` and ``dH > 0`` (synchrony dissolving);
5. ``NEUTRAL``: anything else.

A bar where any input is NaN (warm-up) is ``UNKNOWN``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError

__all__ = [
    "COMPOSITE_WEIGHTS",
    "DEFAULT_THRESHOLDS",
    "Phase",
    "PhaseThresholds",
    "composite_score",
    "detect_phase",
    "phase_names",
]

#: Weights of R, -dH and -curvature in :func:`composite_score` (the original's).
COMPOSITE_WEIGHTS = (0.4, 0.3, 0.3)


class Phase(IntEnum):
    """Phase codes returned by :func:`detect_phase` (stored as int8)."""

    UNKNOWN = -1
    PROTO = 0
    PRECOGNITIVE = 1
    EMERGENT = 2
    POST_EMERGENT = 3
    NEUTRAL = 4


@dataclass(frozen=True, slots=True)
class PhaseThresholds:
    """Thresholds of the phase rules (R dimensionless, entropy change in nats).

    ``proto_r_max``: proto needs ``R < proto_r_max``.
    ``entropy_change_min``: proto and post-emergent need ``dH > entropy_change_min``;
    precognitive needs ``dH <= entropy_change_min``.
    ``neutral_band``: ``(low, high)``; precognitive needs ``low <= R <= high``,
    post-emergent ``R <= high``.
    ``emergent_r_min``, ``emergent_entropy_change_max``, ``emergent_curvature_max``:
    emergent needs ``R >= emergent_r_min``, ``dH < emergent_entropy_change_max`` and
    ``curvature < emergent_curvature_max``.

    Raises:
        IndicatorError: a threshold is not a finite number, an R threshold lies
            outside ``[0, 1]``, or ``neutral_band`` is not an ordered pair.
    """

    proto_r_max: float = 0.4
    entropy_change_min: float = 0.0
    neutral_band: tuple[float, float] = (0.4, 0.7)
    emergent_r_min: float = 0.75
    emergent_entropy_change_max: float = 0.0
    emergent_curvature_max: float = 0.0

    def __post_init__(self) -> None:
        band = self.neutral_band
        if not isinstance(band, tuple) or len(band) != 2:
            raise IndicatorError(f"neutral_band must be a (low, high) pair, got {band!r}")
        values = {
            "proto_r_max": self.proto_r_max,
            "entropy_change_min": self.entropy_change_min,
            "neutral_band[0]": band[0],
            "neutral_band[1]": band[1],
            "emergent_r_min": self.emergent_r_min,
            "emergent_entropy_change_max": self.emergent_entropy_change_max,
            "emergent_curvature_max": self.emergent_curvature_max,
        }
        for name, value in values.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise IndicatorError(f"{name} must be a finite number, got {value!r}")
        for name in ("proto_r_max", "neutral_band[0]", "neutral_band[1]", "emergent_r_min"):
            if not 0.0 <= values[name] <= 1.0:
                raise IndicatorError(f"{name} must lie in [0, 1], got {values[name]!r}")
        if band[0] > band[1]:
            raise IndicatorError(f"neutral_band must have low <= high, got {band!r}")


#: The thresholds :func:`detect_phase` uses unless told otherwise.
DEFAULT_THRESHOLDS = PhaseThresholds()


def _series(values: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise IndicatorError(f"{name} must be an array of real numbers: {exc}") from exc
    if array.ndim != 1:
        raise IndicatorError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _inputs(
    R: ArrayLike, delta_entropy: ArrayLike, curvature: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    r = _series(R, "R")
    dh = _series(delta_entropy, "delta_entropy")
    kappa = _series(curvature, "curvature")
    if not r.shape == dh.shape == kappa.shape:
        raise IndicatorError(
            "R, delta_entropy and curvature must have equal lengths, got "
            f"{r.shape[0]}, {dh.shape[0]} and {kappa.shape[0]}"
        )
    return r, dh, kappa


def detect_phase(
    R: ArrayLike,
    delta_entropy: ArrayLike,
    curvature: ArrayLike,
    *,
    thresholds: PhaseThresholds = DEFAULT_THRESHOLDS,
) -> NDArray[np.int8]:
    """Return the :class:`Phase` code (int8) of every bar.

    ``R`` is the Kuramoto order parameter, ``delta_entropy`` the entropy change (nats)
    and ``curvature`` the mean Ricci curvature, aligned bar by bar; the rules and their
    order are in the module docstring. A bar where any input is NaN (e.g. warm-up) is
    ``Phase.UNKNOWN``.

    Raises:
        IndicatorError: an input is not a 1-D array of numbers, the lengths differ, or
            ``thresholds`` is not a :class:`PhaseThresholds`.
    """
    if not isinstance(thresholds, PhaseThresholds):
        raise IndicatorError(f"thresholds must be a PhaseThresholds, got {thresholds!r}")
    r, dh, kappa = _inputs(R, delta_entropy, curvature)
    th = thresholds
    low, high = th.neutral_band
    conditions = [
        np.isnan(r) | np.isnan(dh) | np.isnan(kappa),
        (r < th.proto_r_max) & (dh > th.entropy_change_min),
        (low <= r) & (r <= high) & (dh <= th.entropy_change_min),
        (r >= th.emergent_r_min)
        & (dh < th.emergent_entropy_change_max)
        & (kappa < th.emergent_curvature_max),
        (r <= high) & (dh > th.entropy_change_min),
    ]
    choices = [
        Phase.UNKNOWN,
        Phase.PROTO,
        Phase.PRECOGNITIVE,
        Phase.EMERGENT,
        Phase.POST_EMERGENT,
    ]
    codes = np.select(conditions, [int(c) for c in choices], default=int(Phase.NEUTRAL))
    return codes.astype(np.int8)


def phase_names(codes: ArrayLike) -> list[str | None]:
    """Return the lowercase phase name of every code (``None`` for ``UNKNOWN``).

    Raises:
        IndicatorError: a code is not a :class:`Phase` value.
    """
    names: dict[int, str | None] = {int(p): p.name.lower() for p in Phase}
    names[int(Phase.UNKNOWN)] = None
    array = np.asarray(codes)
    if array.dtype.kind not in "iu":
        raise IndicatorError(f"codes must be integers, got dtype {array.dtype}")
    try:
        return [names[int(c)] for c in array.ravel()]
    except KeyError as exc:
        raise IndicatorError(f"codes must be Phase values, got {exc.args[0]!r}") from None


def composite_score(
    R: ArrayLike, delta_entropy: ArrayLike, curvature: ArrayLike
) -> NDArray[np.float64]:
    """Return the transition score ``0.4 R - 0.3 dH - 0.3 curvature`` of every bar.

    Higher means more synchrony, falling disorder and more negative curvature, the
    signature of an emerging move. NaN in any input gives NaN at that bar.

    Raises:
        IndicatorError: an input is not a 1-D array of numbers or the lengths differ.
    """
    r, dh, kappa = _inputs(R, delta_entropy, curvature)
    w_r, w_dh, w_kappa = COMPOSITE_WEIGHTS
    score: NDArray[np.float64] = w_r * r - w_dh * dh - w_kappa * kappa
    return score
