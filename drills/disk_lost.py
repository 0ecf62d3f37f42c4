"""Drill: PostgreSQL's disk lost under payment load (`python -m drills disk-lost`).

The stack runs with Barman beside PostgreSQL (`PAYMENTS_DEV_BACKUPS=true`: its WAL receiver is a
synchronous standby, so a commit is acknowledged once its WAL is on Barman's disk). A base backup
is taken before the load; at 40 % of it the server is SIGKILLed and its data directory deleted,
then `payments backup restore` rebuilds it from that backup and every WAL segment streamed since,
the one still being written included, and the server starts on it. Figures: RPO and RTO
(drills/postgres_loss.py), and the restore's own seconds. Exit 1 on any violation."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import time
from pathlib import Path

from devstack.postgres import PostgresServer
from devstack.supervisor import request_restart, run_dir
from devstack.throwaway import Stack, running_stack
from drills import postgres_loss
from drills.postgres_loss import wait_for_api
from drills.report import Report
from payments.cli import backups


def destroy_and_restore(stack: Stack) -> dict[str, float | int]:
    settings = stack.settings
    server = PostgresServer(Path(settings.devstack_dir) / "postgres", settings.postgres_port)
    cluster, postmaster = server.cluster_dir, stack.process("postgres")
    if postmaster is None:
        raise RuntimeError("the stack runs no PostgreSQL")
    started = time.monotonic()
    os.killpg(postmaster.pid, signal.SIGKILL)  # the server and its backends at once
    shutil.rmtree(cluster)
    restoring = cluster.with_name(f"{cluster.name}.restoring")
    if backups.restore(settings, restoring, None, "latest") != 0:
        raise RuntimeError("payments backup restore failed")
    restored = time.monotonic() - started
    if server.run_as:  # Barman restored as us; the server runs as its service user
        entry = pwd.getpwnam(server.run_as)
        for root, dirs, files in os.walk(restoring):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)
    restoring.chmod(0o700)
    restoring.rename(cluster)
    for child in ("postgres", "barman"):  # now, not at the end of their restart backoff
        request_restart(run_dir(settings.devstack_dir), child)
    wait_for_api(stack)
    return {"restore seconds": restored, "RTO: seconds to the API answering": time.monotonic() - started}


# The stack this drill needs: Barman's WAL receiver beside PostgreSQL, its synchronous standby.
SETTINGS = {"PAYMENTS_DEV_BACKUPS": "true"}


async def drill(stack: Stack, count: int, seed: int) -> Report:
    """On a stack started with SETTINGS: a base backup, then the load with the disk lost at its 40 %."""
    if await asyncio.to_thread(backups.take, stack.settings) != 0:
        raise RuntimeError("the base backup before the load failed")
    return await postgres_loss.drill(stack, "disk-lost", count, seed, destroy_and_restore)


def run(count: int, seed: int) -> Report:
    with running_stack(None, SETTINGS) as stack:
        return asyncio.run(drill(stack, count, seed))
