"""`python -m chaos` (= `make chaos`): a seeded fault run on a throwaway stack; exit 1 on any violation."""

from __future__ import annotations

import argparse

from chaos.runner import run
from payments.cli.main import leave
from payments.config.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="picks the workload and the fault schedule")
    parser.add_argument("--count", type=int, default=1000, help="payments")
    parser.add_argument("--concurrency", type=int, default=12, help="clients at once")
    args = parser.parse_args(argv)
    configure_logging("WARNING", json=False)  # the fault lines and the table are the output; the stack logs to files
    return 1 if run(args.seed, args.count, args.concurrency).violations else 0


leave(main())
