import re
from pathlib import Path

import yaml
from temporalio.common import SearchAttributeKey

from devstack.temporal import SA_TYPE_NAMES, search_attribute_flags
from payments.workflows import search_attributes
from payments.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

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


def _readme_search_attributes() -> dict[str, str]:
    """The README's table of search attributes: each name with its type."""
    table = (COMPOSE.parent / "README.md").read_text().split("| attribute | type | on |\n")[1].split("\n\n")[0]
    listed: dict[str, str] = {}
    for row in table.splitlines()[1:]:
        names, kind = row.split("|")[1:3]
        listed |= {name: kind.strip() for name in re.findall(r"`(\w+)`", names)}
    return listed


def test_the_code_compose_the_dev_server_and_the_readme_agree_on_every_search_attribute_and_its_type() -> None:
    code = {key.name: SA_TYPE_NAMES[int(key.indexed_value_type)] for key in SEARCH_ATTRIBUTES}
    # ALL holds every key the module defines but Temporal's own, and no other module defines one.
    defined = {value.name for value in vars(search_attributes).values() if isinstance(value, SearchAttributeKey)}
    assert defined - set(code) == {"TemporalScheduledStartTime"}
    for source in Path(__file__).parents[2].glob("[!.]*/**/*.py"):
        if source.name != "search_attributes.py" and "tests" not in source.parts:
            assert "SearchAttributeKey.for_" not in source.read_text(), source

    services = yaml.safe_load(COMPOSE.read_text())["services"]
    registration = " ".join(services["temporal-search-attributes"]["command"]).split()
    created = {registration[i + 1]: registration[i + 3] for i, flag in enumerate(registration) if flag == "--name"}
    assert created == code
    flags = search_attribute_flags()
    assert dict(flag.split("=") for flag in flags[1::2]) == code
    assert _readme_search_attributes() == code
