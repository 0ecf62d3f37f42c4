"""`python -m devstack` (= `make dev`): the whole stack locally until Ctrl-C;
`python -m devstack restart NAME`: restart one service of the running stack."""

from __future__ import annotations

import argparse
import os
import sys

from payments.cli.main import leave
from payments.config.logs import configure_logging
from payments.config.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    actions = parser.add_subparsers(dest="action")
    restart = actions.add_parser("restart", help="restart one service of the running stack")
    restart.add_argument("service", help="worker, api, stripe-emulator, temporal, redis or postgres")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.action == "restart":
        return _restart(settings, args.service)

    from devstack.dev import run_dev_stack

    os.environ.setdefault("PAYMENTS_ENV", "development")  # the children run on the dev secrets
    configure_logging("WARNING", json=False)  # the banner is the output; children log to files
    try:
        return run_dev_stack(settings)
    except KeyboardInterrupt:
        return 130


def _restart(settings: Settings, service: str) -> int:
    from devstack.supervisor import request_restart, run_dir

    try:
        pid = request_restart(run_dir(settings.devstack_dir), service)
    except (LookupError, TimeoutError) as exc:  # no such stack or service; a stack still starting
        print(exc, file=sys.stderr)
        return 1
    print(f"{service} restarted, pid {pid}" if pid else f"{service} exited at once; see its log")
    return 0 if pid else 1


leave(main())
