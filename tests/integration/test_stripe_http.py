"""Our Stripe HTTP client reports a failure while it reads an answer's body as the SDK's
APIConnectionError, as it does a failure before the answer: an API route that answers Stripe's
unavailability (a timeline, a saved card) must not turn it into a 500, and the worker's activities
map it to a retryable StripeUnavailable. A real socket, an answer cut short."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import stripe

from payments.config.stripe_client import EMULATOR_KEY, StripeHTTP

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"id": "pi_'


@asynccontextmanager
async def _answer_cut_short(then_close: bool) -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD)
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await asyncio.Event().wait()  # silent until the client gives up

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize("then_close", [True, False], ids=["connection lost", "read timed out"])
async def test_an_answer_cut_short_is_an_api_connection_error(then_close: bool) -> None:
    async with _answer_cut_short(then_close) as base:
        http = StripeHTTP(timeout_seconds=0.5)
        client = stripe.StripeClient(
            EMULATOR_KEY, base_addresses={"api": base}, max_network_retries=0, http_client=http
        )
        try:
            with pytest.raises(stripe.APIConnectionError, match="reading Stripe's answer"):
                await client.v1.payment_intents.retrieve_async("pi_1")
        finally:
            await http.close_async()
