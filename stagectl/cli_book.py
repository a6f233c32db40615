"""``stagectl book ...``: stage booking commands."""

import typer

app = typer.Typer(help="Book stage time: requests, holds, confirmations, solve, outages, ICS.")
