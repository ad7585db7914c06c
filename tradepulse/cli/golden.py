"""``tradepulse golden update|check``: golden regression files (indicators, backtests, stress).

``check`` runs every golden case as an executor task (on a Ray cluster:
``--address``, else an embedded local one; in this process: ``--local``),
prints one line per drift, writes a Markdown and an HTML report with charts to
``--report-dir`` and exits 1 on drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from tradepulse.backtest.runner import ENGINES
from tradepulse.cli._common import (
    console,
    error_console,
    fail,
    progress_bar,
    reported_errors,
    research_executor,
)

if TYPE_CHECKING:
    from tradepulse.golden import RegressionRun

__all__ = ["golden_app"]

golden_app = typer.Typer(help="Golden regression files (golden/).", no_args_is_help=True)

#: The golden suites, in the order they run.
SUITES: Final = ("indicators", "backtests", "stress")
#: Where the check's report goes by default (relative to the working directory).
DEFAULT_REPORT_DIR: Final = Path("reports") / "regressions"

SuiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--suite",
        help="Suite to run: indicators, backtests or stress (repeatable; default all).",
    ),
]
EngineOption = Annotated[
    list[str] | None,
    typer.Option(
        "--engine",
        help="Backtest engine to check: vector or event (repeatable; default every "
        "engine the strategy supports). Stress runs use the engine they were generated on.",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address", help="Ray cluster to join (default: RAY_ADDRESS, else start one here)."
    ),
]
LocalOption = Annotated[bool, typer.Option("--local", help="Run in this process, without Ray.")]
ReportDirOption = Annotated[
    Path,
    typer.Option(
        "--report-dir",
        help="Folder of the report (index.md, index.html, PNG charts); overwritten each run.",
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


def _say(text: str, *, error: bool = False) -> None:
    (error_console if error else console).print(text, highlight=False, soft_wrap=True, markup=False)


@golden_app.command("update")
def update_command(suite: SuiteOption = None) -> None:
    """Regenerate golden/indicators, golden/backtests and golden/stress (review the diff)."""
    from tradepulse.golden import (
        update_backtest_goldens,
        update_indicator_goldens,
        update_stress_goldens,
    )

    suites = _chosen(suite, SUITES, "--suite")
    with reported_errors():
        paths = []
        if "indicators" in suites:
            paths.extend(update_indicator_goldens())
        if "backtests" in suites:
            paths.extend(update_backtest_goldens())
        if "stress" in suites:
            paths.extend(update_stress_goldens())
    for path in paths:
        _say(f"wrote {path}")


@golden_app.command("check")
def check_command(
    suite: SuiteOption = None,
    engine: EngineOption = None,
    address: AddressOption = None,
    local: LocalOption = False,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
) -> None:
    """Recompute every golden case (one task each), write the report, exit 1 on drift.

    Exit 0 when every case matches (the report says so), 1 on drift or on a
    missing or corrupted golden file, 2 on a bad option value.
    """
    suites = _chosen(suite, SUITES, "--suite")
    engines = _chosen(engine, ENGINES, "--engine")
    if local and address is not None:
        fail("--local and --address exclude each other", code=2)
    import time

    from tradepulse.golden import prepare_golden_checks, run_golden_tasks
    from tradepulse.reports.regression_report import write_regression_report

    with reported_errors():
        started = time.perf_counter()
        # Goldens are read before connecting, so a missing file fails at once.
        inputs, tasks = prepare_golden_checks(suites=suites, engines=engines)
        load_s = time.perf_counter() - started
        executor = research_executor(address, local=local)
        with progress_bar("golden cases", len(tasks)) as bar:
            task = bar.task_ids[0]

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            run = run_golden_tasks(
                inputs, tasks, executor=executor, progress=advance, load_s=load_s
            )
        report = write_regression_report(run, report_dir)
    _print_summary(run)
    _say(
        f"{len(run.checks)} cases in {run.elapsed_s:.1f} s on {run.executor} "
        f"(task CPU {run.cpu_s:.1f} s, peak worker memory {run.peak_rss_mb:.0f} MiB)"
    )
    _say(f"report: {report.markdown_path} and {report.html_path}")
    if not run.passed:
        raise typer.Exit(1)


def _print_summary(run: RegressionRun) -> None:
    """Print every drift, then one line per suite."""
    for check in run.failed:
        for drift in check.drifts:
            _say(f"drift: {drift}", error=True)
    if "indicators" in run.suites:
        checks = run.of_suite("indicators")
        failed = [check for check in checks if not check.passed]
        if failed:
            _say(f"golden indicators: {len(failed)} of {len(checks)} files drifted", error=True)
        else:
            _say("golden indicators: all match")
    if "backtests" in run.suites:
        checks = run.of_suite("backtests")
        failed = [check for check in checks if not check.passed]
        engines = ", ".join(e for e in ENGINES if any(c.engine == e for c in checks))
        cases = len({check.case for check in checks})
        summary = f"{cases} cases, {len(checks)} runs ({engines or 'no engine'})"
        if failed:
            _say(
                f"golden backtests: {len(failed)} of {len(checks)} runs drifted; {summary}",
                error=True,
            )
        else:
            _say(f"golden backtests: all match; {summary}")
    if "stress" in run.suites:
        checks = run.of_suite("stress")
        failed = [check for check in checks if not check.passed]
        if failed:
            _say(f"golden stress: {len(failed)} of {len(checks)} runs drifted", error=True)
        else:
            _say(f"golden stress: all match; {len(checks)} runs (scenario x seed)")
