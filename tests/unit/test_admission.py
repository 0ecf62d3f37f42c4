"""The admission gate's arithmetic: a bound on what is in flight, freed on every way out."""

import pytest

from payments.api.admission import Admission
from payments.api.errors import ServiceUnavailable


def test_past_the_limit_is_refused_and_a_finished_one_frees_its_place() -> None:
    gate = Admission(limit=2)
    with gate.admit(), gate.admit():
        with pytest.raises(ServiceUnavailable) as refused, gate.admit():
            pass
        assert refused.value.headers == {"Retry-After": "1"}
        assert gate.in_flight == 2  # a refusal takes no place
    assert gate.in_flight == 0
    with gate.admit():
        assert gate.in_flight == 1


def test_a_failed_request_frees_its_place() -> None:
    gate = Admission(limit=1)
    with pytest.raises(RuntimeError), gate.admit():
        raise RuntimeError("Temporal said no")
    with gate.admit():
        assert gate.in_flight == 1
