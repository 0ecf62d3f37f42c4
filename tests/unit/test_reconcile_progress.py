"""The `payments reconcile` progress line: where the run is and what it found."""

from payments.cli.reconcile import progress_line
from payments.schema.messages import ReconciliationProgress
from payments.workflows.reconciliation import PHASES


def test_the_bar_fills_with_the_phases_and_shows_the_counts() -> None:
    start = progress_line(ReconciliationProgress(PHASES[0], 1, {"checked": 100}))
    end = progress_line(ReconciliationProgress(PHASES[-1], 9, {"checked": 900, "auto_fixed": 2, "needs_review": 1}))
    assert start.count("#") < end.count("#") and "." not in end.split("]")[0]
    assert f"1/{len(PHASES)}" in start and "900 checked, 2 fixed, 1 to review" in end


def test_before_the_first_page_the_first_phase_shows_as_under_way() -> None:
    line = progress_line(ReconciliationProgress())
    assert f"1/{len(PHASES)} {PHASES[0]}" in line and "0 checked" in line
