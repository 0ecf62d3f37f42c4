"""The sandbox (the tests' workflow runner) imports the workflow modules for every run: their
bytecode must exist, even where PYTHONDONTWRITEBYTECODE keeps Python from writing it (then every
run compiled them anew)."""

import importlib.util
from pathlib import Path

import workflows.payment
from workers.registry import sandboxed_workflow_runner


def test_the_sandbox_writes_the_workflows_bytecode_before_it_runs_them() -> None:
    cached = Path(importlib.util.cache_from_source(workflows.payment.__file__))
    cached.unlink(missing_ok=True)
    sandboxed_workflow_runner()
    assert cached.exists() and cached.stat().st_mtime >= Path(workflows.payment.__file__).stat().st_mtime
