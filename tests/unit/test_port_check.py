"""The dev stack's port check: every taken port at once, each with the setting that moves it."""

import multiprocessing
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest

from devstack.ports import ensure_free
from payments.config.ports import PortTakenError, claim, free_port, is_free


@contextmanager
def taken_ports(count: int) -> Iterator[list[int]]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        yield [sock.getsockname()[1] for sock in sockets]


def test_every_taken_port_is_named_with_its_setting_and_a_free_alternative() -> None:
    free = free_port()
    with taken_ports(2) as (api, temporal):
        planned = [(api, "the API", "PAYMENTS_API_PORT"), (free, "Redis", "PAYMENTS_REDIS_PORT")]
        planned.append((temporal, "Temporal", "PAYMENTS_TEMPORAL_PORT"))
        with pytest.raises(PortTakenError) as refused:
            ensure_free(planned)
    message = str(refused.value)
    assert f"127.0.0.1:{api}  the API" in message and f"127.0.0.1:{temporal}  Temporal" in message
    assert "move it with PAYMENTS_API_PORT" in message and "move it with PAYMENTS_TEMPORAL_PORT" in message
    assert "PAYMENTS_REDIS_PORT" not in message and "2 of its ports" in message
    suggested = message.rsplit("e.g.: ", 1)[1].removesuffix(" make dev").split()
    moves = dict(move.split("=") for move in suggested)
    assert set(moves) == {"PAYMENTS_API_PORT", "PAYMENTS_TEMPORAL_PORT"}
    assert all(is_free(int(port)) and int(port) not in (api, temporal, free) for port in moves.values())


def test_two_settings_on_one_port_are_named_too() -> None:
    port = free_port()
    with pytest.raises(PortTakenError, match=f"127.0.0.1:{port}  the Temporal UI: the API asks for it too"):
        ensure_free([(port, "the API", "PAYMENTS_API_PORT"), (port, "the Temporal UI", "PAYMENTS_TEMPORAL_UI_PORT")])


def test_free_ports_pass() -> None:
    ensure_free([(free_port(), "the API", "PAYMENTS_API_PORT")])


def test_free_ports_come_from_below_the_ephemeral_range_and_once_each() -> None:
    # Outgoing connections take ports from the ephemeral range: one took a picked port in CI.
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(port < low and is_free(port) for port in ports)


def _taker(count: int) -> subprocess.Popen[str]:
    """A process that takes `count` ports, prints them, and lives until its input closes."""
    take = f"print(*(free_port() for _ in range({count})), flush=True)"
    code = f"from payments.config.ports import free_port; {take}; input()"
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _taken_by(taker: subprocess.Popen[str]) -> list[int]:
    assert taker.stdout is not None
    return [int(port) for port in taker.stdout.readline().split()]


def test_a_port_another_live_process_took_is_not_handed_out_until_it_exits() -> None:
    # A dev stack's worker drew the port a test process had picked for that stack's API.
    taker = _taker(50)
    try:
        taken = _taken_by(taker)
        assert len(taken) == 50
        assert not any(claim(port) for port in taken)
        taker.communicate("\n", timeout=30)
    finally:
        taker.kill()
    assert taker.returncode == 0
    assert all(claim(port) for port in taken)  # released when the taker exited


def test_a_killed_takers_ports_lapse() -> None:
    taker = _taker(1)
    try:
        (port,) = _taken_by(taker)
        assert not claim(port)
    finally:
        taker.kill()
        taker.wait(timeout=30)
    assert claim(port)


def _race(port: int, start: Barrier, won: Queue) -> None:
    start.wait()
    won.put(claim(port))


def test_of_processes_racing_for_a_lapsed_claim_exactly_one_wins() -> None:
    taker = _taker(1)
    try:
        (port,) = _taken_by(taker)
    finally:
        taker.kill()
        taker.wait(timeout=30)
    context = multiprocessing.get_context("fork")
    start, won = context.Barrier(8), context.Queue()
    racers = [context.Process(target=_race, args=(port, start, won)) for _ in range(8)]
    for racer in racers:
        racer.start()
    outcomes = [won.get(timeout=30) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    assert sorted(outcomes) == [False] * 7 + [True]
