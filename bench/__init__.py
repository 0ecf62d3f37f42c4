"""Benchmarks (`make bench`): measured figures, never timed assertions in tests."""
