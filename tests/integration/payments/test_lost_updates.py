"""An update answered NOT_FOUND: the workflow has closed (its row is the answer), or the server lost
the update while the workflow still runs (it holds updates no worker has accepted in memory and
drops them when a worker dies mid-task). A chaos run answered a confirm 409 "authorized" by
reading the second as the first; the API must tell them apart and ask for the request again."""

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from payments.api.temporal_calls import closed
from payments.workflows.payment import workflow_id
from tests.integration.conftest import Parties
from tests.services import fresh_key


async def test_a_lost_update_on_a_running_payment_is_not_read_as_a_closed_workflow(
    parties: Parties, temporal_client: Client
) -> None:
    key = fresh_key()
    tx = (await parties.init(600, key=key)).json()
    assert tx["status"] == "authorized"
    handle = temporal_client.get_workflow_handle(workflow_id(parties.user_id, key))

    with pytest.raises(RPCError) as lost:  # what the API's confirm met: NOT_FOUND from a running workflow
        await handle.get_update_handle(f"lost-{key}").result()
    assert lost.value.status == RPCStatusCode.NOT_FOUND
    assert not await closed(handle)

    confirmed = await parties.confirm(tx["id"])
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    await handle.result()
    assert await closed(handle)
    assert await closed(temporal_client.get_workflow_handle(f"payment:{parties.user_id}:never-started"))
