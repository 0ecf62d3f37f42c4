"""The sandbox (the tests' workflow runner) imports the workflow modules for every run: their
bytecode must exist, even where PYTHONDONTWRITEBYTECODE keeps Python from writing it (then every
run compiled them anew)."""

import importlib.util
from pathlib import Path

from payments.workers.registry import sandboxed_workflow_runner
from payments.workflows import payment


def test_the_sandbox_writes_the_workflows_bytecode_before_it_runs_them() -> None:
    cached = Path(importlib.util.cache_from_source(payment.__file__))
    cached.unlink(missing_ok=True)
    sandboxed_workflow_runner()
    assert cached.exists() and cached.stat().st_mtime >= Path(payment.__file__).stat().st_mtime
