"""``stagectl farm ...``: render-farm planning commands."""

import typer

app = typer.Typer(help="Plan render chunks onto GPU nodes and compute-pool time.")
