"""What each API request costs the API process before our code runs: the HTTP parser and event loop
uvicorn serves with, no dependency run through the threadpool (a thread hop per request), and no
search of the routes for an address."""

import inspect

import pytest
import uvicorn
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute

from payments.api.app import UVICORN_OPTIONS, create_app
from payments.api.checkout_address import page_url
from payments.config.settings import Settings


def _calls(dependant: Dependant) -> list[object]:
    calls = []
    for sub in dependant.dependencies:
        calls += [sub.call, *_calls(sub)]
    return calls


def _runs_on_the_loop(call: object) -> bool:
    """What FastAPI awaits itself; anything else it runs in the threadpool."""
    own = call if inspect.isfunction(call) else getattr(type(call), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(own) or inspect.isasyncgenfunction(own)


def _api_routes(routes: list[BaseRoute]) -> list[APIRoute]:
    """Every route, those of included routers too (FastAPI keeps those under the router)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif router := getattr(route, "original_router", None):
            found += _api_routes(router.routes)
    return found


def test_no_route_dependency_runs_in_the_threadpool() -> None:
    app = create_app(Settings(_env_file=None, env="development"))  # type: ignore[call-arg]
    routes = _api_routes(app.routes)
    in_threads = {
        f"{route.path}: {getattr(call, '__name__', call)}"
        for route in routes
        for call in _calls(route.dependant)
        if not _runs_on_the_loop(call)
    }
    assert len(routes) > 30 and not in_threads, in_threads


async def _app(scope: object, receive: object, send: object) -> None:
    """A stand-in ASGI app: the test is about the server around it."""


def test_uvicorn_serves_with_the_c_parser_and_uvloop() -> None:
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = uvicorn.Config(_app, **UVICORN_OPTIONS)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    loop_factory = config.get_loop_factory()
    assert loop_factory is not None
    loop = loop_factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("scheme", "host", "root_path"),
    [("http", "127.0.0.1:8000", ""), ("https", "pay.example.com", ""), ("https", "pay.example.com", "/api")],
)
def test_the_checkout_return_url_is_the_routes_own_address_without_searching_the_routes(
    scheme: str, host: str, root_path: str
) -> None:
    """Init names 3-D Secure's return_url, the checkout page, without `url_for`'s search of every
    route; it must be the very address `url_for` gives."""
    app = create_app(Settings(_env_file=None, env="development"))  # type: ignore[call-arg]
    scope = {
        "type": "http",
        "app": app,
        "router": app.router,
        "scheme": scheme,
        "server": ("10.0.0.1", 443),
        "path": f"{root_path}/payments/init",
        "root_path": root_path,
        "headers": [(b"host", host.encode())],
        "query_string": b"",
    }
    request = Request(scope)
    assert page_url(request) == str(request.url_for("checkout_page"))
    assert page_url(request).startswith(f"{scheme}://{host}{root_path}/")
