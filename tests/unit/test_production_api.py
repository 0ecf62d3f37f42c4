"""The API built on production settings: no public docs unless published, HSTS on every answer."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from payments.api.app import create_app
from payments.api.services import Services
from payments.config.settings import Settings
from tests.unit.test_development_secrets import OWN

DOCS = ["/docs", "/redoc", "/openapi.json"]


def client(**values: Any) -> TestClient:
    """No lifespan (`with`): nothing is connected. The services are made but reach nothing: the
    address rate limit, which runs before any route, falls back to its in-process buckets."""
    nowhere = {"allowed_hosts": ["testserver"], "redis_url": "rediss://127.0.0.1:1/0"}
    settings = Settings(_env_file=None, **(OWN | nowhere | values))  # type: ignore[call-arg]
    app = create_app(settings)
    app.state.services = Services.start(settings)
    return TestClient(app)


@pytest.mark.parametrize("page", DOCS)
def test_production_does_not_publish_the_docs(page: str) -> None:
    assert client().get(page).status_code == 404


@pytest.mark.parametrize("page", DOCS)
def test_published_docs_are_revalidated_not_stored_forever(page: str) -> None:
    response = client(publish_api_docs=True).get(page)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


def test_production_sends_hsts_on_plain_http_behind_its_proxy() -> None:
    response = client().get("/no-such-route")
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert response.headers["cache-control"] == "no-store"


def test_development_publishes_the_docs_and_sends_hsts_only_over_tls() -> None:
    development = client(env="development")
    assert development.get("/docs").status_code == 200
    assert "strict-transport-security" not in development.get("/docs").headers
