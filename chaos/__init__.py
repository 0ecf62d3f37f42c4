"""Seeded fault runs of the payment saga (`make chaos`): workload, fault schedule, invariant checks."""
