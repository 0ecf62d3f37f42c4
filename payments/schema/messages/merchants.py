"""Merchants and their Stripe connected accounts."""

from dataclasses import dataclass


@dataclass(frozen=True)
class NewMerchant:
    merchant_id: str
    name: str
    payout_schedule: str
    fee_bps: int
    currency: str
    payout_account: str | None = None


@dataclass(frozen=True)
class ConnectedAccountRequest:
    merchant_id: str
    currency: str


@dataclass(frozen=True)
class PayoutAccount:
    merchant_id: str
    account_id: str
