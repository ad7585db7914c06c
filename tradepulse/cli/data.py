"""``tradepulse data ...``: validate, synthesise and resample market data."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Validate, synthesise and resample market data.", no_args_is_help=True)
