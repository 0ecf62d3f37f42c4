"""The background pollers' loop (payments/workers/polling.py): a full batch means more is waiting
and the next runs at once; a batch that was not full took all there was, and the loop idles."""

import asyncio

import pytest

from payments.workers.polling import poll_until_stopped


@pytest.mark.parametrize(("full", "batches"), [(5, [5, 5, 3]), (1, [5, 5, 3, 0])])
async def test_only_a_full_batch_is_followed_at_once(full: int, batches: list[int]) -> None:
    stop = asyncio.Event()
    sizes = iter([5, 5, 3, 0])
    done: list[int] = []

    async def batch() -> int:
        done.append(next(sizes))
        if done[-1] == 3:
            asyncio.get_running_loop().call_soon(stop.set)  # runs only once the loop waits
        return done[-1]

    # An hour's idle wait: the loop ends here only if it ran the full batches back to back.
    await poll_until_stopped(batch, stop, 3600, (), "test", full=full)
    assert done == batches
