"""The garbage collector of the long-lived processes (the API, the worker, and the bench's
skeleton alike)."""

from __future__ import annotations

import gc

# Allocations (less deallocations) between two collections of the youngest generation; Python's
# default is 700. A page of 100 Stripe objects parsed from JSON is about 15,000 objects alive
# together: at 700, its survivors are promoted and rescanned by collection after collection, which
# tripled the cost of parsing it (600 pages of the reconciliation's two lists: 0.59 s of CPU with
# the startup objects frozen, 0.43 s at 7,000, 0.41 s with the collector off).
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_collector() -> None:
    """Move what start-up built (modules, classes, the SDKs' tables: about 190,000 objects in the
    worker) to the collector's permanent generation. Left there, they would be scanned by every
    full collection, about 45 ms with the event loop stopped, which a payment in flight waits out;
    frozen, a collection scans only what the requests themselves made. Then collect the young
    generation less often (YOUNG_GENERATION_THRESHOLD): cyclic garbage lives a little longer, and
    a collection still scans at most that many new objects."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
