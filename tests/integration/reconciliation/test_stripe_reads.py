"""Reconciliation's reads of Stripe keep within their budget of requests a second: Stripe refuses
an account past its rate limit, and live payments share it."""

import asyncio
import time

import stripe

from payments.activities.stripe_reads import StripeReads


async def test_reads_wait_for_their_budget_and_a_missing_object_is_none(stripe_sdk: stripe.StripeClient) -> None:
    """15 reads at 5 a second: the first 5 at once, the last one 2 seconds later at the soonest."""
    reads = StripeReads(stripe_sdk, per_second=5)
    began = time.monotonic()

    found = await asyncio.gather(*(reads.retrieve("payment_intent", f"pi_missing{i}") for i in range(15)))

    assert found == [None] * 15
    assert time.monotonic() - began >= 1.9


async def test_reads_within_a_share_keep_to_that_share_of_the_budget(stripe_sdk: stripe.StripeClient) -> None:
    """An activity reading one of a run's four slices: 15 reads at a quarter of 20 a second take
    2 seconds at the soonest, where the whole budget would have allowed them at once."""
    reads = StripeReads(stripe_sdk, per_second=20)
    began = time.monotonic()

    with reads.share(0.25):
        found = await asyncio.gather(*(reads.retrieve("payment_intent", f"pi_missing{i}") for i in range(15)))

    assert found == [None] * 15
    assert time.monotonic() - began >= 1.9
