"""A transient Stripe failure reaches the workflow history as what Stripe answered: its type,
code, HTTP status and request id."""

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from payments.activities.metrics import REGISTRY
from payments.workflows.payment import workflow_id
from tests.integration.conftest import Parties
from tests.services import fresh_key


def _retries(activity_type: str) -> float:
    """The worker's payments_activity_retries_total (the tests' worker runs in this process)."""
    return REGISTRY.get_sample_value("payments_activity_retries_total", {"activity": activity_type}) or 0.0


async def test_a_stripe_500_on_authorize_is_in_the_history_with_its_request_id(
    parties: Parties, emulator_control, temporal_client: Client
) -> None:
    fault = {"action": "error", "path": "/v1/payment_intents", "times": 1}
    assert emulator_control("POST", "/faults", json=fault).status_code == 201
    retries_before = _retries("authorize_payment")
    key = fresh_key()
    assert (await parties.init(700, key=key)).json()["status"] == "authorized"
    assert _retries("authorize_payment") == retries_before + 1  # the operators' metric saw the retry
    history = await temporal_client.get_workflow_handle(workflow_id(parties.user_id, key)).fetch_history()
    # The first attempt ran in the workflow task: its failure is on its marker...
    (first_attempt,) = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.HasField("failure")
    ]
    # ...and the retry ran as an activity task, where the Temporal UI shows a pending call's attempts.
    (retry,) = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert retry.activity_type.name == "authorize_payment"
    failure = await temporal_client.data_converter.decode_failure(first_attempt.failure)
    assert isinstance(failure, ApplicationError) and failure.type == "StripeUnavailable", failure
    assert failure.details[0]["http_status"] == 500 and failure.details[0]["request_id"].startswith("req_")
    assert "recursion" not in str(failure)
