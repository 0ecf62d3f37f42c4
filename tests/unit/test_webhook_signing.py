"""Merchant webhook signatures, and which secrets sign across a rotation (the 24 h overlap on an
injected clock): both while the old one has not expired, then only the new one."""

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from payments.activities.merchant_webhook_records import kept_answer, signing_secrets
from payments.config.keyring import Keyring, new_key_spec
from payments.config.merchant_webhook_signing import new_secret, signature_header, verify
from payments.config.settings import Settings
from payments.schema.tables import WebhookEndpoint

BODY = b'{"id":"1","type":"payment.confirmed"}'


def test_each_active_secret_adds_a_v1_a_merchant_checks_with_hmac() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header(BODY, [new, old], 1_700_000_000)
    t, *v1s = header.split(",")
    assert t == "t=1700000000" and len(v1s) == 2
    for secret in (old, new):  # the README's check, with the standard library
        expected = hmac.new(secret.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
        assert f"v1={expected}" in v1s
        assert verify(header, BODY, secret, now=1_700_000_100)


def test_a_wrong_secret_an_altered_body_or_an_old_timestamp_does_not_verify() -> None:
    secret = new_secret()
    header = signature_header(BODY, [secret], 1_700_000_000)
    assert not verify(header, BODY, new_secret(), now=1_700_000_000)
    assert not verify(header, BODY + b" ", secret, now=1_700_000_000)
    assert not verify(header, BODY, secret, now=1_700_000_000 + 301)
    assert not verify("v1=abc", BODY, secret, now=1_700_000_000)


def _rotated_endpoint(keyring: Keyring, rotated_at: datetime, old: str, new: str) -> WebhookEndpoint:
    endpoint_id = "we_" + "0" * 32
    current, previous = (keyring.seal(s.encode(), endpoint_id.encode()) for s in (new, old))
    overlap = Settings(_env_file=None).webhook_secret_overlap  # type: ignore[call-arg]
    return WebhookEndpoint(
        id=endpoint_id,
        secret=current.blob,
        secret_key_id=current.key_id,
        previous_secret=previous.blob,
        previous_secret_key_id=previous.key_id,
        previous_secret_expires_at=rotated_at + overlap,
    )


def test_after_a_rotation_both_secrets_sign_for_24_hours_then_only_the_new_one() -> None:
    keyring = Keyring.from_spec(new_key_spec("k1"))
    rotated_at, old, new = datetime(2026, 11, 24, 12, tzinfo=UTC), new_secret(), new_secret()
    endpoint = _rotated_endpoint(keyring, rotated_at, old, new)
    assert signing_secrets(keyring, endpoint, rotated_at) == [new, old]
    assert signing_secrets(keyring, endpoint, rotated_at + timedelta(hours=23, minutes=59)) == [new, old]
    assert signing_secrets(keyring, endpoint, rotated_at + timedelta(hours=24)) == [new]
    assert signing_secrets(keyring, endpoint, rotated_at + timedelta(days=3)) == [new]


def test_a_kept_answer_is_one_kilobyte_without_nul_or_card_numbers() -> None:
    assert kept_answer(b"x" * 5000) == "x" * 1024
    assert kept_answer(b"ok\x00") == "ok\ufffd"
    assert "4242" not in kept_answer(b"echo 4242 4242 4242 4242")


def test_the_readme_s_verification_helper_checks_our_signatures() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("import hashlib, hmac, time")
    namespace: dict[str, Any] = {}
    exec(readme[start : readme.index("```", start)], namespace)  # noqa: S102 (our own README's snippet)
    secret, body = new_secret(), b'{"id":"9"}'
    header = signature_header(body, [new_secret(), secret], int(time.time()))
    assert namespace["verified"](secret, header, body)
    assert not namespace["verified"](new_secret(), header, body)
    assert not namespace["verified"](secret, header, body + b"x")
