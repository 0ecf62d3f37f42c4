import pytest
from pydantic import ValidationError

from payments.api.client_address import client_address
from payments.config.settings import Settings

PROXIES = Settings.model_validate({"trusted_proxies": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]}).trusted_proxies


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {"client": (peer, 40000), "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded]}


def test_a_peer_that_is_no_trusted_proxy_is_the_caller_whatever_it_forwards() -> None:
    assert client_address(scope("203.0.113.5", "198.51.100.1"), PROXIES) == "203.0.113.5"
    assert client_address(scope("203.0.113.5"), []) == "203.0.113.5"


@pytest.mark.parametrize(
    ("forwarded", "caller"),
    [
        (["198.51.100.1"], "198.51.100.1"),
        (["6.6.6.6, 198.51.100.1, 10.1.2.3"], "198.51.100.1"),  # the left part is the client's own claim
        (["6.6.6.6", "198.51.100.1,192.0.2.7"], "198.51.100.1"),  # several headers are one list
        (["2001:db8::1, 2001:4860::8888"], "2001:4860::8888"),
        (["10.9.9.9, 10.1.1.1"], "10.9.9.9"),  # only proxies: the farthest one
        ([], "10.0.0.1"),
    ],
)
def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_caller(forwarded: list[str], caller: str) -> None:
    assert client_address(scope("10.0.0.1", *forwarded), PROXIES) == caller


@pytest.mark.parametrize("spec", ["10.0.0.0/33", "proxy.internal", "10.0.0.1/8"])
def test_a_malformed_proxy_setting_is_refused(spec: str) -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings.model_validate({"trusted_proxies": [spec]})
