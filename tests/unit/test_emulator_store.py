"""The emulator's store keeps history loaded in bulk as its JSON: what lists and expansions read
of it is parsed for them and stays JSON; what a handler gets is the stored object, and a change it
puts is kept, whether the object came in bulk or one at a time."""

from pathlib import Path
from typing import Any

import orjson

from stripe_emulator.expand import expand
from stripe_emulator.listing import list_objects
from stripe_emulator.store import Store


def _intent(number: int) -> dict[str, object]:
    return {"id": f"pi_{number}", "object": "payment_intent", "created": 1_000 + number, "status": "succeeded"}


def _answer(page: dict[str, Any]) -> Any:
    """The page as the emulator's wire sends it."""
    return orjson.loads(orjson.dumps(page))


def test_history_is_kept_as_json_until_a_handler_gets_it() -> None:
    store = Store()
    store.put_many([_intent(1), _intent(2)])
    assert store.peek("pi_1") == _intent(1)
    peeked = store.peek("pi_1")
    assert peeked is not None
    peeked["status"] = "canceled"  # a reader's copy: the store is untouched
    assert store.peek("pi_1") == _intent(1)
    assert isinstance(store._objects["pi_1"], bytes)

    got = store.get("pi_1")
    assert got is not None and got is store.get("pi_1")  # the stored object from now on
    got["status"] = "canceled"
    assert store.peek("pi_1") == _intent(1) | {"status": "canceled"}


def test_a_list_filters_by_creation_time_as_put_last_said() -> None:
    store = Store()
    store.put_many([_intent(n) for n in range(5)])
    changed = store.get("pi_0")
    assert changed is not None
    store.put(changed | {"created": 1_003})  # a test moving an object in time
    page = _answer(list_objects(store, "payment_intent", "/v1/payment_intents", {"created": {"gte": 1_003}}))
    assert [o["id"] for o in page["data"]] == ["pi_4", "pi_3", "pi_0"]  # newest first: by creation order
    assert isinstance(store._objects["pi_4"], bytes)  # listed, still JSON


def test_a_list_filters_by_type_without_reading_and_sends_history_as_kept() -> None:
    store = Store()
    events = [{"id": f"evt_{n}", "object": "event", "created": 1_000 + n, "type": t} for n, t in enumerate("abab")]
    store.put_many(events)
    page = list_objects(store, "event", "/v1/events", {}, types={"b"})
    assert all(isinstance(o, orjson.Fragment) for o in page["data"])  # never parsed: nothing expands them
    assert _answer(page)["data"] == [events[3], events[1]]
    expanding = list_objects(store, "event", "/v1/events", {"expand": ["data.x"]}, types={"b"})
    assert expanding["data"] == [events[3], events[1]]  # parsed, for the expansion to walk


def test_history_survives_a_restart_from_the_state_file(tmp_path: Path) -> None:
    Store(tmp_path / "state.sqlite3").put_many([_intent(1)])
    reopened = Store(tmp_path / "state.sqlite3")
    assert reopened.get("pi_1") == _intent(1)
    assert reopened.ids_of("payment_intent") == ["pi_1"]


def test_an_expanded_field_of_history_is_its_stored_json_and_reads_as_the_object() -> None:
    store = Store()
    charge = {"id": "ch_1", "object": "charge", "created": 1_001, "metadata": {"tx_id": "tx_1"}}
    store.put_many([charge, {"id": "txn_1", "object": "balance_transaction", "created": 1_001, "source": "ch_1"}])
    page = list_objects(store, "balance_transaction", "/v1/balance_transactions", {"expand": ["data.source"]})
    answer = _answer(expand(store, page, ["data.source"]))
    assert answer["data"][0]["source"] == charge
    assert isinstance(store._objects["ch_1"], bytes)  # never parsed to be embedded
