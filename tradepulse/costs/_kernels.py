"""Compiled fill arithmetic shared by the cost models and the backtest engines.

One implementation of the execution price, the commission and the target sizing,
so that the typed Python API (:mod:`tradepulse.costs`), the vectorised engine's
kernel and the event-driven engine price every fill with the same floating-point
operations, in the same order. All functions are pure and scalar.
"""

from __future__ import annotations

import math

import numba

__all__: list[str] = []

#: Most regula-falsi steps when sizing under market impact (it converges in far fewer).
_SOLVER_STEPS = 200
#: Width, relative to its high end, at which the sizing bracket is narrow enough.
_SOLVER_TOLERANCE = 1e-15


@numba.njit(cache=True, inline="always")
def execution_price(  # type: ignore[no-untyped-def]  # numba kernel; typed wrappers in costs
    price, side, quantity, volume, half_spread, slippage, impact
):
    """Price of a market order of ``quantity`` units on ``side`` (+1 buy, -1 sell)."""
    adverse = half_spread + slippage
    if impact > 0.0:
        size = abs(quantity)
        participation = 1.0 if volume <= size else size / volume
        adverse += impact * math.sqrt(participation)
    return price * (1.0 + side * adverse)


@numba.njit(cache=True, inline="always")
def commission(quantity, price, rate, per_unit, per_fill):  # type: ignore[no-untyped-def]
    """Commission of a fill: ``rate * |q| * price + per_unit * |q| + per_fill`` (0 if q == 0)."""
    size = abs(quantity)
    if size == 0.0:
        return 0.0
    return size * price * rate + size * per_unit + per_fill


@numba.njit(cache=True, inline="always")
def _excess_value(  # type: ignore[no-untyped-def]
    change,
    units,
    grow,
    trade_side,
    mark_price,
    equity,
    fraction,
    price,
    volume,
    rate,
    per_unit,
    per_fill,
    half_spread,
    slippage,
    impact,
):
    """Position value after trading ``change`` units minus ``fraction`` of equity after it.

    Both are valued at ``mark_price`` (the reference price moved by half the spread
    and the fixed slippage, without impact); ``grow`` is +1 when the trade adds to
    the position and -1 when it reduces it.
    """
    fill_price = execution_price(price, trade_side, change, volume, half_spread, slippage, impact)
    cost_per_unit = trade_side * (fill_price - mark_price) + fill_price * rate + per_unit
    after = equity - per_fill - change * cost_per_unit
    return (units + grow * change) * mark_price - fraction * after


@numba.njit(cache=True)
def _solve_with_impact(  # type: ignore[no-untyped-def]
    change,
    units,
    grow,
    trade_side,
    mark_price,
    equity,
    fraction,
    price,
    volume,
    rate,
    per_unit,
    per_fill,
    half_spread,
    slippage,
    impact,
    whole,
):
    """Trade size under market impact, by regula falsi (Illinois) on a bracket.

    ``change`` is the closed-form size without impact. Impact only adds cost, so
    the root lies in ``[0, change]`` when growing and in ``[change, units]`` when
    shrinking. ``gap(q)`` (the position's value minus the target, sign-adjusted so
    it increases with ``q``) is <= 0 at the bracket's low end and >= 0 at its high
    end; the bracket shrinks until it is 1e-15 wide relative to its high end (or,
    with ``whole``, until both ends floor to the same position). The end that
    never overshoots the target is returned: the low end when growing, the high
    end when shrinking.
    """
    orientation = grow  # gap(q) = orientation * excess(q) increases with q
    low = 0.0 if grow > 0.0 else change
    high = change if grow > 0.0 else units
    low_gap = orientation * _excess_value(
        low,
        units,
        grow,
        trade_side,
        mark_price,
        equity,
        fraction,
        price,
        volume,
        rate,
        per_unit,
        per_fill,
        half_spread,
        slippage,
        impact,
    )
    high_gap = orientation * _excess_value(
        high,
        units,
        grow,
        trade_side,
        mark_price,
        equity,
        fraction,
        price,
        volume,
        rate,
        per_unit,
        per_fill,
        half_spread,
        slippage,
        impact,
    )
    if grow > 0.0 and high_gap <= 0.0:
        return high
    if grow < 0.0 and low_gap >= 0.0:
        return low
    kept = 0  # which end the last step kept: -1 low, +1 high (Illinois halving)
    for _ in range(_SOLVER_STEPS):
        if high - low <= _SOLVER_TOLERANCE * high:
            break
        if whole and math.floor(units + grow * low) == math.floor(units + grow * high):
            break
        middle = high - high_gap * (high - low) / (high_gap - low_gap)
        if not (middle > low and middle < high):
            middle = 0.5 * (low + high)
            if not (middle > low and middle < high):
                break
        middle_gap = orientation * _excess_value(
            middle,
            units,
            grow,
            trade_side,
            mark_price,
            equity,
            fraction,
            price,
            volume,
            rate,
            per_unit,
            per_fill,
            half_spread,
            slippage,
            impact,
        )
        if middle_gap > 0.0:
            high, high_gap = middle, middle_gap
            if kept == -1:
                low_gap *= 0.5
            kept = -1
        elif middle_gap < 0.0:
            low, low_gap = middle, middle_gap
            if kept == 1:
                high_gap *= 0.5
            kept = 1
        else:
            return middle
    return low if grow > 0.0 else high


@numba.njit(cache=True, inline="always")
def adjust_quantity(  # type: ignore[no-untyped-def]
    position,
    cash,
    price,
    volume,
    target,
    rate,
    per_unit,
    per_fill,
    half_spread,
    slippage,
    impact,
    whole,
):
    """Signed units to trade so a position on ``target``'s side is worth |target| of equity.

    ``position`` is 0 or on the same side as ``target`` (non-zero). After the
    trade, ``|position'| * m == |target| * equity'``, both valued at ``m``, the
    reference price moved against the trade by half the spread and the slippage;
    ``equity'`` has paid the trade's commission and impact. Without impact the
    solution is closed-form; with impact it is bracketed and solved by
    `_solve_with_impact` (the result never overshoots the target). With ``whole``
    the resulting position is floored to whole units. Returns 0 when nothing is
    to trade or equity is exhausted.
    """
    direction = 1.0 if target > 0.0 else -1.0
    fraction = abs(target)
    units = abs(position)
    adverse = half_spread + slippage
    # Grow or shrink? Compare the position's value with the target at the raw price.
    gap = fraction * (cash + position * price) - units * price
    if gap == 0.0:
        return 0.0
    grow = 1.0 if gap > 0.0 else -1.0
    trade_side = direction * grow
    mark_price = price * (1.0 + trade_side * adverse)
    equity = cash + position * mark_price
    if grow > 0.0:
        if fraction * (equity - per_fill) <= units * mark_price:
            return 0.0
        change = (fraction * (equity - per_fill) - units * mark_price) / (
            mark_price * (1.0 + fraction * rate) + fraction * per_unit
        )
    else:
        denominator = mark_price * (1.0 - fraction * rate) - fraction * per_unit
        change = units
        if denominator > 0.0:
            change = (units * mark_price - fraction * (equity - per_fill)) / denominator
        change = min(max(change, 0.0), units)
    if impact > 0.0 and change > 0.0:
        change = _solve_with_impact(
            change,
            units,
            grow,
            trade_side,
            mark_price,
            equity,
            fraction,
            price,
            volume,
            rate,
            per_unit,
            per_fill,
            half_spread,
            slippage,
            impact,
            whole,
        )
    if whole:
        held = math.floor(units + grow * change)
        if held == units:
            return 0.0
        return direction * (held - units)
    return trade_side * change


@numba.njit(cache=True, inline="always")
def target_legs(  # type: ignore[no-untyped-def]
    position,
    cash,
    price,
    volume,
    target,
    rate,
    per_unit,
    per_fill,
    half_spread,
    slippage,
    impact,
    whole,
):
    """Signed quantities of the closing and the opening/adjusting fill towards ``target``.

    A position on the other side of ``target`` (or any position when ``target``
    is 0) is closed in full first; then the remaining or new position is adjusted
    by :func:`adjust_quantity` with the cash the closing fill left.
    """
    closing = 0.0
    if position != 0.0 and (target == 0.0 or (target > 0.0) != (position > 0.0)):
        closing = -position
        side = 1.0 if closing > 0.0 else -1.0
        fill_price = execution_price(price, side, closing, volume, half_spread, slippage, impact)
        cash = (
            cash - closing * fill_price - commission(closing, fill_price, rate, per_unit, per_fill)
        )
        position = 0.0
    opening = 0.0
    if target != 0.0:
        opening = adjust_quantity(
            position,
            cash,
            price,
            volume,
            target,
            rate,
            per_unit,
            per_fill,
            half_spread,
            slippage,
            impact,
            whole,
        )
    return closing, opening
