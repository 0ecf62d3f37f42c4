"""What the processes leave in their logs: outcomes as one line, no start-up noise."""

import json
import subprocess
import sys
from pathlib import Path

from payments.config.settings import Settings
from tests.integration.conftest import Parties, command_env


async def test_a_declined_card_is_one_info_line_without_a_traceback(parties: Parties, log_file: Path) -> None:
    init = await parties.init(card="pm_card_chargeDeclinedInsufficientFunds")
    assert init.json()["status"] == "declined"  # the activity's failure was logged before the workflow saw it
    mine = [json.loads(line) for line in log_file.read_text().splitlines() if parties.user_id in line]
    declines = [entry for entry in mine if "CardDeclined" in entry["event"]]
    assert [entry["level"] for entry in declines] == ["info"], declines
    assert not [entry for entry in mine if "exception" in entry]


def test_migrate_prints_no_alembic_plugin_setup(stack_settings: Settings) -> None:
    migrate = subprocess.run(
        [sys.executable, "-m", "payments", "migrate"],
        env=command_env(stack_settings),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "database migrated to head" in migrate.stdout
    assert "setup plugin" not in migrate.stderr, migrate.stderr
