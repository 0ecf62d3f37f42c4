"""The API and the worker freeze what start-up built out of the garbage collector's scans."""

import gc
from collections.abc import Iterator

import pytest

from payments.config.heap import freeze_startup_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with its usual collector


def test_start_up_objects_leave_the_collectors_scans(unfrozen: None) -> None:
    tracked = len(gc.get_objects())
    freeze_startup_objects()
    assert gc.get_freeze_count() >= tracked * 0.9  # what start-up built, less what the collection freed
    assert len(gc.get_objects()) < tracked * 0.1  # a full collection now scans only what came after
