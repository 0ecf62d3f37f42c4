"""The PostgreSQL drills of `make drill` in small (issue 28): 30 payments each on a throwaway stack
while PostgreSQL's disk or its primary is lost; every invariant a chaos run keeps must hold and no
acknowledged payment may be missing (`python -m drills disk-lost --count 300` is the full size)."""

import pytest

from drills import disk_lost, primary_lost

COUNT, SEED = 30, 1


@pytest.mark.drill
@pytest.mark.timeout(600)
def test_disk_lost_restores_every_acknowledged_payment_from_barman() -> None:
    report = disk_lost.run(COUNT, SEED)
    assert report.violations == 0, report.table()
    assert report.figures["payments acknowledged"] == COUNT, report.table()
    assert report.figures["RPO: acknowledged payments missing"] == 0, report.table()
    assert "restore seconds" in report.figures, report.table()  # the loss was applied


@pytest.mark.drill
@pytest.mark.timeout(600)
def test_primary_lost_fails_over_and_the_old_primary_rejoins_as_standby() -> None:
    report = primary_lost.run(COUNT, SEED)
    assert report.violations == 0, report.table()
    assert report.figures["payments acknowledged"] == COUNT, report.table()
    assert report.figures["RPO: acknowledged payments missing"] == 0, report.table()
    assert "seconds to the old primary streaming as sync standby" in report.figures, report.table()
