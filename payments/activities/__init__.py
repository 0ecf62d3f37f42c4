"""Temporal activities: each does one I/O thing (Stripe, PostgreSQL, Redis) and is safe to retry."""
