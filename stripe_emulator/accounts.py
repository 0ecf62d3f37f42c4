"""Connected accounts (`acct_…`): where merchant payouts are transferred."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import lister, retriever
from stripe_emulator.objects import build
from stripe_emulator.store import Obj


def new_account(params: dict[str, Any]) -> Obj:
    """An account ready to receive transfers (onboarding is instant here)."""
    account = build(
        "account",
        "acct",
        type=params.get("type", "express"),
        country=params.get("country", "US"),
        email=params.get("email"),
        default_currency=params.get("default_currency", "usd"),
        metadata=params.get("metadata", {}),
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
    )
    account["external_accounts"]["url"] = f"/v1/accounts/{account['id']}/external_accounts"
    return account


async def create(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    account = new_account(params)
    emu.store.put(account)
    emu.emit("account.updated", account)
    return account


retrieve = retriever("account", "account")
list_all = lister("account", "/v1/accounts")
