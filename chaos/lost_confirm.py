"""The sequence that once charged a customer while our books never heard of it (issue 25): Stripe
has committed a capture and the workers stall before they report it; the Temporal server restarts
on its database, losing what it kept only in memory (an update no worker had accepted yet); the
API process that carried the confirm dies, so nobody sends it again; then another worker takes
over (the caller starts it). Shared by the chaos run and tests/integration/payments/test_capture_never_lost.py."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil

from devstack.ports import wait_ready, wait_until
from devstack.temporal import TemporalDevServer
from devstack.throwaway import Stack

BACK_WITHIN = 120.0  # seconds for the restarted Temporal server and the new API


def lose_the_confirm(stack: Stack) -> list[psutil.Process]:
    """Call once Stripe has committed the capture and while its answer is held: `stall`, then
    `restart_temporal_and_api`. Returns the frozen workers: SIGKILL them when done, never resume them."""
    frozen = stall(stack)
    restart_temporal_and_api(stack)
    return frozen


def stall(stack: Stack) -> list[psutil.Process]:
    """Freeze (SIGSTOP) every worker, and the API: silent from here on, it cannot send the confirm
    again once Temporal is back, and its client's connection stays open until it dies."""
    frozen, api = stack.processes("worker"), stack.process("api")
    if not frozen or api is None:
        raise RuntimeError("the stack has no live worker or API")
    for worker in frozen:
        worker.suspend()
    api.suspend()
    return frozen


def restart_temporal_and_api(stack: Stack) -> None:
    """SIGKILL the Temporal server and let it restart with the same command line (so on the same
    sqlite file, as a history host keeps its database), then SIGKILL the API (a new one comes up)."""
    stack.replace("temporal", signal.SIGKILL)
    settings = stack.settings
    temporal = TemporalDevServer(
        Path(settings.devstack_dir) / "temporal.db", settings.temporal_port, settings.temporal_ui_port, ""
    )
    wait_until(lambda: temporal.serves(settings.temporal_namespace), "Temporal did not come back", BACK_WITHIN)
    stack.replace("api", signal.SIGKILL)
    wait_ready(f"{stack.api}/readyz", lambda: None, BACK_WITHIN)
