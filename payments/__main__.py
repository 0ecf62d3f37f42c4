"""`python -m payments ...`: the same command as the installed `payments`."""

from payments.cli.main import run

run()
