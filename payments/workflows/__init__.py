"""Temporal workflows: deterministic orchestration of money movements, no I/O."""
