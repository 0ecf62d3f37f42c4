"""`payments backup`: the Barman commands it names, and a restore that never lands on data."""

from datetime import UTC, datetime
from pathlib import Path

from payments.cli import backups
from payments.config.settings import Settings


def test_restore_to_a_time_replays_the_streamed_wal_up_to_it_then_promotes(tmp_path: Path) -> None:
    settings = Settings(devstack_dir=str(tmp_path / "stack"))
    moment = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    argv = backups.restore_command(settings, tmp_path / "new", moment, "20261205T050000")
    assert argv[1:3] == ["--config", str(tmp_path / "stack" / "barman" / "barman.conf")]
    assert argv[3:] == [
        "recover",
        "--no-get-wal",
        "--partial-wal",
        "--target-time",
        "2026-12-05T06:00:00+00:00",
        "--target-action",
        "promote",
        "payments",
        "20261205T050000",
        str(tmp_path / "new"),
    ]


def test_an_operators_barman_configuration_and_server_are_used_as_given(tmp_path: Path) -> None:
    settings = Settings(barman_config="/etc/barman.conf", barman_server="pg-main")
    argv = backups.restore_command(settings, tmp_path, None)
    assert argv[1:3] == ["--config", "/etc/barman.conf"] and argv[-3:] == ["pg-main", "latest", str(tmp_path)]
    assert "--target-time" not in argv  # to the last commit received


def test_restore_refuses_a_directory_that_holds_anything(tmp_path: Path) -> None:
    (tmp_path / "PG_VERSION").write_text("18\n")
    assert backups.restore(Settings(), tmp_path, None, "latest") == 2
    assert [p.name for p in tmp_path.iterdir()] == ["PG_VERSION"]
