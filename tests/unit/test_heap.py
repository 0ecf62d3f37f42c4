"""The API and the worker freeze what start-up built out of the garbage collector's scans, and
collect their young generation less often than Python's default."""

import gc
from collections.abc import Iterator

import pytest

from payments.config.heap import YOUNG_GENERATION_THRESHOLD, tune_collector


@pytest.fixture
def untuned() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with its usual collector
    gc.set_threshold(*thresholds)


def test_start_up_objects_leave_the_collectors_scans(untuned: None) -> None:
    tracked = len(gc.get_objects())
    tune_collector()
    assert gc.get_freeze_count() >= tracked * 0.9  # what start-up built, less what the collection freed
    assert len(gc.get_objects()) < tracked * 0.1  # a full collection now scans only what came after


def test_the_young_generation_is_collected_after_its_threshold_not_pythons_700(untuned: None) -> None:
    gc.set_threshold(700, 10, 10)
    tune_collector()
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)
    collections = gc.get_stats()[0]["collections"]
    kept = [[i] for i in range(YOUNG_GENERATION_THRESHOLD // 2)]  # tracked containers, alive together
    assert gc.get_stats()[0]["collections"] == collections  # at 700, this would have collected several times
    assert len(kept) == YOUNG_GENERATION_THRESHOLD // 2
