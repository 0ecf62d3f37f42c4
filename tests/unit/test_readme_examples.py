"""The README's shell examples paste into a shell as they are: no placeholder a shell reads as a
redirection, and no variable but those `.devstack/env`, `.devstack/demo.env` or an earlier example
defines (tests/integration/test_newcomer_path.py runs the tour against a real stack)."""

import re

from devstack.local import env_file_text
from payments.cli.demo import EXPORTED
from payments.config.settings import Settings
from tests.readme_examples import shell_blocks

USED = re.compile(r"\$\{?([A-Za-z_]\w*)")
ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=", re.MULTILINE)
THE_SHELLS_OWN = {"RANDOM", "HOME", "PATH"}


def test_no_example_holds_a_placeholder_in_angle_brackets() -> None:
    for block in shell_blocks():
        assert not re.search(r"<[^<>\n]*>", block), block


def test_the_tour_starts_from_the_two_env_files_and_holds_no_ellipsis() -> None:
    tour = shell_blocks("Explore a running stack")
    assert tour[0].splitlines()[:2] == [
        "source .devstack/env",
        ".venv/bin/payments demo && source .devstack/demo.env",
    ]
    assert not [block for block in tour if "…" in block]


def test_every_variable_an_example_uses_is_defined_by_the_env_files_or_an_example() -> None:
    dev_env = env_file_text(Settings(temporal_address=None, stripe_api_key=None, worker_metrics_port=9464), "token")
    blocks = shell_blocks()
    defined = set(ASSIGNED.findall(dev_env)) | set(EXPORTED) | THE_SHELLS_OWN
    defined |= {name for block in blocks for name in ASSIGNED.findall(block)}
    used = {name for block in blocks for name in USED.findall(block)}
    assert used - defined == set()
    assert {"API", "TOKEN", "USER_TOKEN", "MERCHANT_TOKEN", "TX_ID", "REDIS_URL", "CODEC_ENDPOINT"} <= used


def test_no_example_makes_a_digit_run_the_card_guard_would_refuse() -> None:
    # A key from a nanosecond clock is 19 digits: Luhn-valid one time in ten, so refused as a card.
    for block in shell_blocks():
        assert "%N" not in block and "%s%" not in block, block
