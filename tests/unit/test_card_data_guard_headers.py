"""Which headers the card guard reads (the guard as a function; the integration tests drive the API)."""

import pytest

from payments.api.card_data import inspect_request
from payments.api.errors import CardDataRejected

PAN = "4242424242424242"


def _inspect(*headers: tuple[bytes, bytes]) -> None:
    inspect_request({"path": "/healthz", "query_string": b"", "headers": list(headers)}, b"", "whsec_x")


def test_a_trace_context_whose_span_id_looks_like_a_card_number_passes() -> None:
    """A span id is 16 random hex characters: about once in a thousand a Luhn-valid digit run."""
    _inspect((b"traceparent", f"00-{'ab' * 16}-{PAN}-01".encode()))


def test_a_stripe_signature_whose_digest_starts_like_a_card_number_passes() -> None:
    """A signature is 64 random hex characters after `v1=`: now and then a Luhn-valid digit run at
    one end (the guard keeps those), which refused a genuine webhook."""
    _inspect((b"stripe-signature", f"t=1796549146,v1={PAN}{'ab' * 24},v0={'cd' * 32}".encode()))


@pytest.mark.parametrize(
    "header",
    [
        (b"traceparent", f"00-{PAN}".encode()),
        (b"tracestate", f"vendor={PAN}".encode()),
        (b"stripe-signature", f"t=1796549146,v1={PAN}".encode()),
        (b"x-note", PAN.encode()),
    ],
    ids=["malformed-traceparent", "tracestate", "malformed-stripe-signature", "any-other-header"],
)
def test_a_card_number_in_any_other_header_is_refused(header: tuple[bytes, bytes]) -> None:
    with pytest.raises(CardDataRejected):
        _inspect(header)
