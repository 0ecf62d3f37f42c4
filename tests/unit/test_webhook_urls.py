"""Where a merchant webhook may point (server-side request forgery): outside development, https
to public addresses only, every address of the host checked."""

import pytest

from payments.config.merchant_webhook_urls import UnsafeWebhookUrl, check_webhook_url, forbidden_address
from payments.config.settings import Settings


def _development(settings: Settings) -> bool:
    return settings.env == "development"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://127.8.9.10:8443/hooks",
        "https://localhost/hooks",  # resolves to loopback
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",  # IPv4-mapped loopback
        "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "https://10.0.0.7/hooks",
        "https://192.168.1.1/hooks",
        "https://172.16.0.1/hooks",
        "https://0.0.0.0/hooks",
        "https://[fd00::1]/hooks",
        "http://93.184.215.14/hooks",  # public, but not https
        "ftp://93.184.215.14/hooks",
        "https://user:pass@93.184.215.14/hooks",
        "https:///hooks",
        "https://93.184.215.14:99999/hooks",
        "not a url",
    ],
)
async def test_outside_development_unsafe_urls_are_refused(url: str) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.env != "development"
    with pytest.raises(UnsafeWebhookUrl):
        await check_webhook_url(url, _development(settings))


async def test_outside_development_a_public_https_address_is_accepted() -> None:
    await check_webhook_url("https://93.184.215.14/hooks?shop=1", development=False)


async def test_development_allows_http_and_local_receivers() -> None:
    settings = Settings(_env_file=None, env="development")  # type: ignore[call-arg]
    await check_webhook_url("http://127.0.0.1:8787/", _development(settings))
    with pytest.raises(UnsafeWebhookUrl):
        await check_webhook_url("file:///etc/passwd", _development(settings))


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::808:808",  # NAT64 is refused whole: the translator picks what it reaches
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (RFC 8215) of 169.254.169.254
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::10.0.0.1",  # IPv4-compatible
        "::127.0.0.1",
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "fc00::1",
    ],
)
def test_mapped_and_translated_forms_of_private_addresses_are_refused(address: str) -> None:
    assert forbidden_address(address)


def test_every_forbidden_range_is_named() -> None:
    forbidden = ["127.0.0.1", "::1", "169.254.1.1", "fe80::1%eth0", "10.1.2.3", "0.0.0.0", "::", "224.0.0.1"]
    assert all(forbidden_address(a) for a in forbidden)
    public = ["93.184.215.14", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.215.14", "2002:5db8:d70e::1"]
    assert not any(forbidden_address(a) for a in public)
