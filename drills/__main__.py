"""`python -m drills NAME|all [--count N] [--seed N]` (`make drill DRILL=NAME`): run a drill (or each
in turn) on a throwaway stack, print its figures and checks, exit 1 on any violation."""

from __future__ import annotations

import argparse
import importlib
import sys

from payments.config.logs import configure_logging

# Drill name -> module; each module has `run(count: int, seed: int) -> drills.report.Report`.
DRILLS: dict[str, str] = {
    "disk-lost": "drills.disk_lost",
    "primary-lost": "drills.primary_lost",
    "redis-lost": "drills.redis_lost",
    "temporal-lost": "drills.temporal_lost",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__)
    parser.add_argument("name", choices=[*sorted(DRILLS), "all"], help="the drill to run, or all of them in turn")
    parser.add_argument("--count", type=int, default=300, help="payments in the load (default: 300)")
    parser.add_argument("--seed", type=int, default=1, help="picks the workload (devstack/workload.py)")
    args = parser.parse_args(argv)
    configure_logging("WARNING", json=False)  # the figures are the output; the stack logs to files
    violations = 0
    for name in sorted(DRILLS) if args.name == "all" else [args.name]:
        report = importlib.import_module(DRILLS[name]).run(args.count, args.seed)
        print(report.table(), flush=True)
        violations += report.violations
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
