"""A one-file Django project served by Django's own development server class.

Run as ``python -m tests.targets.frameworks.django_site [--debug]``: it binds an ephemeral
127.0.0.1 port, prints ``LISTENING <port>`` and serves until terminated. Django's settings
are process-wide, hence one process per DEBUG value. (Django ships no type hints, hence
the ignores.)
"""

from __future__ import annotations

import sys

import django  # type: ignore[import-untyped]
from django.conf import settings  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.urls import path  # type: ignore[import-untyped]

ITEMS = {1: "shoes", 2: "socks"}


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<!doctype html><title>Acme</title><h1>Acme shop</h1>")


def item(request: HttpRequest, item_id: str) -> HttpResponse:
    return HttpResponse(ITEMS[int(item_id)])  # a non-numeric id raises ValueError


def search(request: HttpRequest) -> HttpResponse:
    page = int(request.GET["page"])  # a missing page raises MultiValueDictKeyError
    return HttpResponse(f"page {page}")


urlpatterns = [
    path("", index, name="index"),
    path("items/<str:item_id>", item, name="item"),
    path("search", search, name="search"),
]


def main(argv: list[str]) -> None:
    from tests.targets.frameworks import announce

    settings.configure(
        DEBUG="--debug" in argv,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        SECRET_KEY="prodready-test-only-not-a-secret",
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        LOGGING_CONFIG=None,  # no tracebacks on the test run's stderr
    )
    django.setup()
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # type: ignore[import-untyped]
    from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]

    class Quiet(WSGIRequestHandler):  # type: ignore[misc]
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(get_wsgi_application())
    announce(server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
