from stripe_emulator.wire import parse_form


def test_nested_keys_lists_and_filters_are_decoded() -> None:
    body = (
        "amount=1000&metadata[tx_id]=tx_1&metadata[user]=u&expand[]=latest_charge&expand[]=customer"
        "&created[gte]=10&created[lt]=20&payment_method_types[]=card"
    )
    assert parse_form(body) == {
        "amount": "1000",
        "metadata": {"tx_id": "tx_1", "user": "u"},
        "expand": ["latest_charge", "customer"],
        "created": {"gte": "10", "lt": "20"},
        "payment_method_types": ["card"],
    }


def test_empty_values_are_kept() -> None:
    assert parse_form("description=&a=1") == {"description": "", "a": "1"}


def test_indexed_arrays_as_the_sdk_sends_them_become_lists() -> None:
    assert parse_form("expand[0]=latest_charge&expand[1]=customer&items[0][price]=p1") == {
        "expand": ["latest_charge", "customer"],
        "items": [{"price": "p1"}],
    }
