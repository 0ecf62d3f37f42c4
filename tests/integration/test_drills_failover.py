"""The primary-lost drill in small (issue 28): 30 payments on a throwaway stack whose PostgreSQL is a
primary and a synchronous standby under Patroni, while the primary is SIGKILLed; every invariant a
chaos run keeps must hold and no acknowledged payment may be missing (`python -m drills primary-lost
--count 300` is the full size). Its stack is Patroni's, so it shares it with no other drill; the
disk-lost drill runs on the stores drills' stack (test_drills_stores.py)."""

import pytest

from drills import primary_lost

COUNT, SEED = 30, 1


@pytest.mark.drill
@pytest.mark.timeout(600)
def test_primary_lost_fails_over_and_the_old_primary_rejoins_as_standby() -> None:
    report = primary_lost.run(COUNT, SEED)
    print(report.table())
    assert report.violations == 0, report.table()
    assert report.figures["payments acknowledged"] == COUNT, report.table()
    assert report.figures["RPO: acknowledged payments missing"] == 0, report.table()
    assert "seconds to the old primary streaming as sync standby" in report.figures, report.table()
