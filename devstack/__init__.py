"""The local stack from PyPI wheels: PostgreSQL, Redis, Temporal dev server, Stripe emulator."""
