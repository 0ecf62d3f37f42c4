"""`payments demo`: fills a running stack, through its public API, with merchants, users, payments
in every state and a payout, and writes their ids and tokens to `.devstack/demo.env`, so that
every README example runs as pasted after `source .devstack/demo.env`.

Running it again changes nothing: it reuses the parties of `demo.env` while the stack still knows
them, and every payment, refund and payout has a fixed idempotency key, so each call is a replay.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from payments.api.auth import Role, mint_token
from payments.config.settings import Settings

DEMO_ENV = "demo.env"
# What `demo.env` exports (the README's examples use these names).
EXPORTED = (
    "MERCHANT_ID",
    "OTHER_MERCHANT_ID",
    "USER_ID",
    "OTHER_USER_ID",
    "TX_ID",
    "AUTHORIZED_TX_ID",
    "PARTIALLY_REFUNDED_TX_ID",
    "REFUNDED_TX_ID",
    "CANCELED_TX_ID",
    "FAILED_TX_ID",
    "DECLINED_TX_ID",
    "REQUIRES_ACTION_TX_ID",
    "PAYOUT_ID",
    "TOKEN",
    "USER_TOKEN",
    "MERCHANT_TOKEN",
    "OTHER_USER_TOKEN",
)
T = TypeVar("T")
WAIT_SECONDS = 60.0  # for a Stripe account to open, for a payout's transfer


class DemoFailed(RuntimeError):
    """The stack answered something the demo did not expect (its message says what)."""


def _answer(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        request = response.request
        raise DemoFailed(f"{request.method} {request.url.path} answered {response.status_code}: {response.text}")
    body: dict[str, Any] = response.json()
    return body


@dataclass
class _Stack:
    """The API as the demo's parties: each call with the token of the one who makes it."""

    client: httpx.Client
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, sub: str, role: Role) -> str:
        return self.tokens.setdefault(sub, mint_token(self.settings, sub, role))

    def send(self, who: Party, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, headers={"Authorization": f"Bearer {self.token(*who)}"}, **kwargs)

    def call(self, who: Party, method: str, path: str, *expected: int, **kwargs: Any) -> dict[str, Any]:
        return _answer(self.send(who, method, path, **kwargs), *expected)


Party = tuple[str, Role]
OPERATOR: Party = ("op_demo", "operator")


def _until(probe: Callable[[], T], done: Callable[[T], object], what: str) -> T:
    """What `probe` answers once `done` holds; DemoFailed after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not done(answer := probe()):
        if time.monotonic() > deadline:
            raise DemoFailed(f"{what}: still {answer} after {WAIT_SECONDS:.0f} s")
        time.sleep(0.5)  # the work goes on in its workflow; polled with a deadline
    return answer


def _previous(path: Path) -> dict[str, str]:
    """The names `demo.env` exported last time (none if there is no such file)."""
    if not path.exists():
        return {}
    names = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            names[name] = shlex.split(value)[0] if value else ""
    return names


def _parties(stack: _Stack, previous: dict[str, str]) -> dict[str, str]:
    """Two merchants and two users: last run's while this stack still has its merchants (the
    users were made in the same run), else new ones."""
    known = ("MERCHANT_ID", "OTHER_MERCHANT_ID", "USER_ID", "OTHER_USER_ID")
    if all(previous.get(name) for name in known) and all(
        stack.send(OPERATOR, "GET", f"/merchants/{previous[name]}").status_code == 200
        for name in ("MERCHANT_ID", "OTHER_MERCHANT_ID")
    ):
        return {name: previous[name] for name in known}
    parties = {}
    for name, shop in {"MERCHANT_ID": "Corner Shop", "OTHER_MERCHANT_ID": "Book Nook"}.items():
        # 202: its onboarding workflow goes on; a payout needs the row and the Stripe account it writes.
        created = stack.call(OPERATOR, "POST", "/merchants", 201, 202, json={"name": shop, "currency": "usd"})
        merchant = partial(stack.send, OPERATOR, "GET", f"/merchants/{created['id']}")
        _until(merchant, lambda answer: answer.status_code == 200 and answer.json()["payout_account"], shop)
        parties[name] = str(created["id"])
    for name, person in {"USER_ID": "Ada Lovelace", "OTHER_USER_ID": "Grace Hopper"}.items():
        parties[name] = str(stack.call(OPERATOR, "POST", "/users", 201, json={"name": person})["id"])
    return parties


def _payments(stack: _Stack, ids: dict[str, str]) -> dict[str, str]:
    """One payment in each state a payment can rest in, each under a fixed key (a rerun replays)."""
    user, merchant = ids["USER_ID"], ids["MERCHANT_ID"]
    as_merchant: Party = (merchant, "merchant")

    def authorized(key: str, amount: int, card: str = "pm_card_visa", payer: str = user, payee: str = merchant) -> str:
        body = {"user_id": payer, "merchant_id": payee, "amount": amount, "currency": "usd", "card_token": card}
        as_payer: Party = (payer, "user")
        answer = stack.call(as_payer, "POST", "/payments/init", 200, 201, json=body | {"idempotency_key": key})
        return str(answer["id"])

    def captured(tx_id: str) -> str:
        answer = stack.call(OPERATOR, "POST", "/payments/confirm", 200, json={"tx_id": tx_id})
        return str(answer["id"])

    def refunded(tx_id: str, amount: int | None = None) -> str:
        body = {"idempotency_key": "demo-refund", "reason": "requested_by_customer"}
        part = {"amount": amount} if amount else {}
        stack.call(as_merchant, "POST", f"/payments/{tx_id}/refunds", 200, 201, json=body | part)
        return tx_id

    def canceled(tx_id: str) -> str:
        return str(stack.call(OPERATOR, "POST", f"/payments/{tx_id}/cancel", 200)["id"])

    other = {"payer": ids["OTHER_USER_ID"], "payee": ids["OTHER_MERCHANT_ID"]}
    captured(authorized("demo-books", 3200, **other))
    return {
        "TX_ID": captured(authorized("demo-confirmed", 4200)),
        "AUTHORIZED_TX_ID": authorized("demo-authorized", 2500),
        "PARTIALLY_REFUNDED_TX_ID": refunded(captured(authorized("demo-partially-refunded", 3000)), 1000),
        "REFUNDED_TX_ID": refunded(captured(authorized("demo-refunded", 1800))),
        "CANCELED_TX_ID": canceled(authorized("demo-canceled", 1500)),
        "FAILED_TX_ID": canceled(authorized("demo-declined", 990, "pm_card_chargeDeclined")),  # given up
        "DECLINED_TX_ID": authorized("demo-declined-open", 1290, "pm_card_chargeDeclined"),
        "REQUIRES_ACTION_TX_ID": authorized("demo-3ds", 2100, "pm_card_authenticationRequired"),
    }


def _payout(stack: _Stack, merchant: str) -> str:
    """A payout of part of the balance (the rest stays for the README's own), asked for again until
    paid: the same key answers the same payout as it is now."""
    as_merchant: Party = (merchant, "merchant")
    body = {"merchant_id": merchant, "amount": 2000, "idempotency_key": "demo-payout"}
    schedule = partial(stack.call, as_merchant, "POST", "/payouts/schedule", 202, json=body)
    payout = _until(schedule, lambda answer: answer["status"] != "in_transit", "the demo's payout")
    if payout["status"] != "paid":
        raise DemoFailed(f"payout {payout['id']} is {payout['status']}: {payout['failure_code']}")
    return str(payout["id"])


def run_demo(settings: Settings) -> Path:
    """Fill the stack at `settings.api_url`; the path of the `demo.env` written."""
    path = Path(settings.devstack_dir) / DEMO_ENV
    with httpx.Client(base_url=settings.api_url, timeout=60) as client:
        stack = _Stack(client, settings)
        made = _parties(stack, _previous(path))
        made |= _payments(stack, made)
        made["PAYOUT_ID"] = _payout(stack, made["MERCHANT_ID"])
    made |= {
        "TOKEN": stack.token(*OPERATOR),
        "USER_TOKEN": stack.token(made["USER_ID"], "user"),
        "MERCHANT_TOKEN": stack.token(made["MERCHANT_ID"], "merchant"),
        "OTHER_USER_TOKEN": stack.token(made["OTHER_USER_ID"], "user"),
    }
    lines = [f"export {name}={shlex.quote(made[name])}" for name in EXPORTED]
    hours = settings.token_ttl.total_seconds() / 3600
    header = f"# Written by `payments demo`: ids on this stack, tokens for {hours:g} h (run it again for new ones)"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # it holds tokens
    path.write_text("\n".join([header, *lines, ""]))
    return path
