"""Drill: the PostgreSQL primary lost under payment load (`python -m drills primary-lost`).

The stack runs a primary and a synchronous standby under Patroni (`PAYMENTS_POSTGRES_STANDBY=true`),
reached by a multi-host read-write URL. At 40 % of the load the primary's postmaster is SIGKILLed;
Patroni promotes the standby (only a synchronous standby may be promoted, so it holds every
acknowledged commit) and the old primary rewinds and rejoins as the new synchronous standby.
Figures: RPO and RTO (drills/postgres_loss.py), seconds until the standby was promoted and until
the old primary streamed again as the synchronous standby. Exit 1 on any violation."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from devstack.patroni import patroni_cluster
from devstack.ports import wait_until
from devstack.throwaway import Stack, running_stack
from drills.postgres_loss import BACK_WITHIN, drill, wait_for_api
from drills.report import Report


def kill_primary(stack: Stack) -> dict[str, float | int]:
    cluster = patroni_cluster(stack.settings)
    old = cluster.primary()
    if old is None:
        raise RuntimeError("the stack's Patroni cluster has no primary")
    postmaster = int((cluster.home / f"node{old}" / "postmaster.pid").read_text().split()[0])
    started = time.monotonic()
    os.kill(postmaster, signal.SIGKILL)
    wait_until(lambda: cluster.primary() not in (None, old), "no standby was promoted", BACK_WITHIN)
    promoted = time.monotonic() - started
    wait_for_api(stack)
    answering = time.monotonic() - started

    def rejoined() -> bool:
        return cluster.roles().get(old) == "replica" and cluster.ready()

    wait_until(rejoined, "the old primary did not rejoin as the synchronous standby", BACK_WITHIN)
    return {
        "seconds to the standby promoted": promoted,
        "RTO: seconds to the API answering": answering,
        "seconds to the old primary streaming as sync standby": time.monotonic() - started,
    }


def run(count: int, seed: int) -> Report:
    with running_stack(None, {"PAYMENTS_POSTGRES_STANDBY": "true"}) as stack:
        return asyncio.run(drill(stack, "primary-lost", count, seed, kill_primary))
