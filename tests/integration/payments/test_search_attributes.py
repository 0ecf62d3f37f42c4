"""An operator finds a payment in Temporal by its tx_id, and a refunded one by its status."""

from temporalio.client import Client

from tests.integration.conftest import Parties
from tests.services import eventually


async def workflow_ids(temporal: Client, query: str) -> set[str]:
    return {execution.id async for execution in temporal.list_workflows(query)}


async def test_tx_id_finds_the_payment_and_a_full_refund_is_found_as_refunded(
    parties: Parties, temporal_client: Client
) -> None:
    tx = await parties.captured(800)
    by_tx = f'TxId="{tx["id"]}"'
    found = await eventually(lambda: workflow_ids(temporal_client, by_tx), bool, "the payment by TxId")
    assert found == {f"payment:{tx['user_id']}:{tx['idempotency_key']}"}

    assert (await parties.refund(tx["id"], 300)).status_code == 201
    partial = f'{by_tx} AND PaymentStatus="partially_refunded"'
    assert await eventually(lambda: workflow_ids(temporal_client, partial), bool, "the partial refund")
    assert (await parties.refund(tx["id"])).status_code == 201
    refunded = f'{by_tx} AND PaymentStatus="refunded"'
    found = await eventually(lambda: workflow_ids(temporal_client, refunded), bool, "the refunded payment")
    assert all(workflow_id.startswith(f"refund:{tx['id']}:") for workflow_id in found)
