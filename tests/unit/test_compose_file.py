from pathlib import Path

import yaml

from workers.devstack.temporal import search_attribute_flags
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

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


def test_every_search_attribute_the_code_sets_is_registered_by_compose_and_listed_in_the_readme() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    registration = " ".join(services["temporal-search-attributes"]["command"]).split()
    created = {registration[i + 1]: registration[i + 3] for i, flag in enumerate(registration) if flag == "--name"}
    flags = search_attribute_flags()
    assert created == dict(flag.split("=") for flag in flags[1::2])
    readme = (COMPOSE.parent / "README.md").read_text()
    assert all(f"`{key.name}`" in readme for key in SEARCH_ATTRIBUTES)
