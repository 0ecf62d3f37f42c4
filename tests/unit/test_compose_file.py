from pathlib import Path

import yaml

COMPOSE = Path(__file__).parents[2] / "temporal-dev.yml"


def test_compose_file_parses_and_names_every_service() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"temporal", "temporal-ui", "postgresql", "redis", "api", "worker", "stripe-emulator"} <= set(services)


def test_every_image_is_pinned() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name} uses an unpinned image {image!r}"


def test_temporal_runs_on_postgresql_and_the_ui_decodes_through_our_codec() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["temporal"]["environment"]["DB"].startswith("postgres")
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")
