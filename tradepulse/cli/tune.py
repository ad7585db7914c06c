"""``tradepulse tune``: an adaptive parameter search with Ray Tune, described by a spec file.

The spec (``tune/*.yaml``) names the data, the strategy, the search space, the
objective, the search algorithm (random or Bayesian), the ASHA scheduler and
the walk-forward folds each trial is scored on; the trials run on a Ray cluster
(``--address``, else one started in-process) and their results are written as
Parquet under ``--out`` (``docs/tune.md``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from tradepulse.cli._common import console, error_console, fail, progress_bar, reported_errors

if TYPE_CHECKING:
    from tradepulse.cluster.tune import TuneResult

__all__ = ["DEFAULT_OUT_ROOT", "tune_command", "tune_table"]

#: Without ``--out``, results go to ``DEFAULT_OUT_ROOT / <spec name>``.
DEFAULT_OUT_ROOT = Path("reports") / "tune"


def _format(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def tune_table(result: TuneResult, *, top: int) -> Table:
    """Return a rich table of the ``top`` completed trials, best first."""
    spec = result.spec
    completed = result.trials.filter(
        (result.trials.get_column("status") == "completed")
        & result.trials.get_column("objective").is_not_nan()
    )
    ranked = completed.sort(
        ["objective", "trial"], descending=[spec.mode == "max", False], nulls_last=True
    ).head(top)
    swept = [name for name in spec.space if name in ranked.columns]
    table = Table(
        title=f"{spec.name}: best {min(top, ranked.height)} of {result.trials.height} trials",
        caption=f"{spec.objective} ({spec.mode}): {spec.walk_forward.score} over "
        f"{result.folds} walk-forward folds",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("trial", justify="right", no_wrap=True)
    for name in swept:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column(spec.objective, justify="right", no_wrap=True)
    for row in ranked.iter_rows(named=True):
        table.add_row(
            str(row["trial"]),
            *(_format(row[name]) for name in swept),
            _format(row["objective"]),
        )
    return table


def tune_command(
    spec_path: Annotated[
        Path, typer.Option("--spec", help="Tune spec YAML (e.g. tune/sma_cross_random.yaml).")
    ],
    data: Annotated[
        Path | None, typer.Option("--data", help="Bar file to use instead of the spec's data.")
    ] = None,
    num_samples: Annotated[
        int | None,
        typer.Option("--num-samples", min=1, help="Trials to run instead of the spec's."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Seed to use instead of the spec's.")
    ] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option("--max-concurrent", min=1, help="Trials at once instead of the spec's."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address", help="Ray cluster to join (default: RAY_ADDRESS, else start one here)."
        ),
    ] = None,
    dashboard: Annotated[
        bool,
        typer.Option("--dashboard", help="Start the Ray dashboard with a local cluster."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for trials.parquet and summary.json (default: reports/tune/<spec name>).",
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Trials shown in the table.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Search a strategy's parameters with Ray Tune as a spec file describes.

    Each trial walks one parameter combination over the spec's walk-forward
    folds, reporting after every fold so ASHA can stop poor trials early.
    Exit 0 when at least one trial completed, 1 on a bad spec, data or cluster
    (or when no trial completed), 2 on a bad option value.
    """
    # Ray, Tune, the engines and the strategies load only when the command runs.
    from tradepulse.cluster import connect
    from tradepulse.cluster.tune import load_tune_spec, run_tune, with_overrides

    notes = error_console if as_json else console
    with reported_errors():
        spec = with_overrides(
            load_tune_spec(spec_path),
            data=data,
            num_samples=num_samples,
            seed=seed,
            max_concurrent=max_concurrent,
        )
        if not spec.data.exists():
            fail(f"{spec.data}: no such file")
        folder = out if out is not None else DEFAULT_OUT_ROOT / spec.name
        connect(address, dashboard=dashboard)
        with progress_bar(f"tune {spec.name}", spec.num_samples) as bar:
            task = bar.task_ids[0]

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = run_tune(spec, out=folder, progress=advance)
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, allow_nan=False, default=str))
    else:
        console.print(tune_table(result, top=top))
        notes.print(
            f"{summary['trials']} trials in {result.elapsed_s:.2f} s "
            f"({summary['completed']} completed, {summary['stopped_early']} stopped early, "
            f"{summary['invalid']} invalid, {summary['errors']} failed); "
            f"results: {result.path}",
            highlight=False,
            soft_wrap=True,
        )
    if result.best_params is None:
        fail("no trial completed with a defined objective")
