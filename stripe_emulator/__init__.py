"""A local Stripe that speaks Stripe's wire protocol, so the official SDK runs against it unchanged."""
