"""Unit tests see the settings' defaults, not the PAYMENTS_* variables of the shell that runs them."""

import os

import pytest


@pytest.fixture(autouse=True)
def no_payments_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):  # pydantic-settings matches names case-insensitively
            monkeypatch.delenv(name)
