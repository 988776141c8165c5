"""The three routes as a FastAPI app (Starlette underneath), served by uvicorn in a thread.

``FastAPI(debug=True)`` makes Starlette's ServerErrorMiddleware answer an exception with
its traceback: an HTML page when the request accepts text/html, plain text otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from tests.targets.frameworks import serve_asgi

ITEMS = {1: "shoes", 2: "socks"}


def make_app(debug: bool) -> FastAPI:
    app = FastAPI(debug=debug, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return "<!doctype html><title>Acme</title><h1>Acme shop</h1>"

    @app.get("/items/{item_id}", response_class=PlainTextResponse)
    def item(item_id: str) -> str:
        return ITEMS[int(item_id)]  # a non-numeric id raises ValueError

    @app.get("/search", response_class=PlainTextResponse)
    def search(request: Request) -> str:
        return f"page {int(request.query_params['page'])}"  # a missing page raises KeyError

    return app


@contextmanager
def serve(debug: bool) -> Iterator[str]:
    with serve_asgi(make_app(debug)) as url:
        yield url
