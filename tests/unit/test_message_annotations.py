"""The messages' annotations are types, not strings: the Temporal SDK reads a dataclass's type hints
on every conversion, and a string annotation is parsed and evaluated again each time."""

import dataclasses
import inspect

from payments.schema import messages


def test_every_message_field_is_annotated_with_a_type_not_a_string() -> None:
    classes = [c for _, c in inspect.getmembers(messages, inspect.isclass) if dataclasses.is_dataclass(c)]
    strings = [f"{c.__name__}.{f.name}" for c in classes for f in dataclasses.fields(c) if isinstance(f.type, str)]
    assert len(classes) > 20 and not strings, strings
