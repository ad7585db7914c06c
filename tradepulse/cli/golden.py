"""``tradepulse golden update|check``: golden regression files (indicators and backtests)."""

from __future__ import annotations

from typing import Annotated, Final

import typer

from tradepulse.backtest.runner import ENGINES, Engine
from tradepulse.cli._common import console, error_console, fail, progress_bar, reported_errors

__all__ = ["golden_app"]

golden_app = typer.Typer(help="Golden regression files (golden/).", no_args_is_help=True)

#: The golden suites, in the order they run.
SUITES: Final = ("indicators", "backtests")

SuiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--suite",
        help="Suite to run: indicators or backtests (repeatable; default both).",
    ),
]
EngineOption = Annotated[
    list[str] | None,
    typer.Option(
        "--engine",
        help="Backtest engine to check: vector or event (repeatable; default every "
        "engine the strategy supports).",
    ),
]


def _chosen(values: list[str] | None, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """Return ``values`` (all of ``allowed`` when none) or fail naming the bad one."""
    if not values:
        return allowed
    for value in values:
        if value not in allowed:
            fail(f"{option} must be one of {', '.join(allowed)}; got {value!r}", code=2)
    return tuple(value for value in allowed if value in values)


@golden_app.command("update")
def update_command(suite: SuiteOption = None) -> None:
    """Regenerate golden/indicators and golden/backtests from the shipped data (review the diff)."""
    from tradepulse.golden import update_backtest_goldens, update_indicator_goldens

    suites = _chosen(suite, SUITES, "--suite")
    with reported_errors():
        paths = []
        if "indicators" in suites:
            paths.extend(update_indicator_goldens())
        if "backtests" in suites:
            paths.extend(update_backtest_goldens())
    for path in paths:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True, markup=False)


@golden_app.command("check")
def check_command(suite: SuiteOption = None, engine: EngineOption = None) -> None:
    """Recompute every golden file and exit non-zero on drift."""
    suites = _chosen(suite, SUITES, "--suite")
    engines: tuple[Engine, ...] = tuple(
        e for e in ENGINES if e in _chosen(engine, ENGINES, "--engine")
    )
    drifted = False
    if "indicators" in suites:
        drifted |= _check_indicators()
    if "backtests" in suites:
        drifted |= _check_backtests(engines)
    if drifted:
        raise typer.Exit(1)


def _check_indicators() -> bool:
    """Check the indicator goldens; return whether any drifted."""
    from tradepulse.golden import check_indicator_goldens

    with reported_errors():
        drifts = check_indicator_goldens()
    for drift in drifts:
        error_console.print(f"drift: {drift}", highlight=False, soft_wrap=True, markup=False)
    if not drifts:
        console.print("golden indicators: all match", highlight=False)
    return bool(drifts)


def _check_backtests(engines: tuple[Engine, ...]) -> bool:
    """Check every backtest case on ``engines``; return whether any drifted."""
    from tradepulse.golden import check_case, golden_backtest_cases

    with reported_errors():
        cases = golden_backtest_cases()
        runs = [(case, e) for case in cases for e in case.engines if e in engines]
        results = []
        with progress_bar("golden backtests", total=len(runs)) as progress:
            for case, run_engine in runs:
                results.append(check_case(case, run_engine))
                progress.advance(progress.task_ids[0])
    failed = [result for result in results if not result.passed]
    for result in failed:
        for drift in result.drifts:
            error_console.print(f"drift: {drift}", highlight=False, soft_wrap=True, markup=False)
    checked = ", ".join(sorted({e for _, e in runs}, key=ENGINES.index))
    summary = f"{len(cases)} cases, {len(runs)} runs ({checked or 'no engine'})"
    if failed:
        error_console.print(
            f"golden backtests: {len(failed)} of {len(runs)} runs drifted; {summary}",
            highlight=False,
        )
    else:
        console.print(f"golden backtests: all match; {summary}", highlight=False)
    return bool(failed)
