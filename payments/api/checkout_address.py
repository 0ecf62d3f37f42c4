"""Where the checkout page is served: its route's path, and its address on a request's host (3-D
Secure's return_url, named by init)."""

from __future__ import annotations

from starlette.requests import Request

PAGE_PATH = "/checkout"


def page_url(request: Request) -> str:
    """The checkout page's address on the host the request came to. Not `request.url_for`, which
    tries every route of the app in turn (0.44 ms an init)."""
    base = request.base_url
    return str(base.replace(path=base.path.rstrip("/") + PAGE_PATH))
