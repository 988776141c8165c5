"""The three routes as a Flask app; with debug on, wrapped in the Werkzeug debugger.

``debug=True`` is what ``flask run --debug`` serves: the app in debug mode inside
Werkzeug's DebuggedApplication (interactive traceback pages). Served in a thread.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, request
from werkzeug.debug import DebuggedApplication

from tests.targets.webapp import serve_app

ITEMS = {1: "shoes", 2: "socks"}


def make_app(debug: bool) -> Any:
    app = Flask("acme")
    app.debug = debug

    @app.route("/")
    def index() -> str:
        return "<!doctype html><title>Acme</title><h1>Acme shop</h1>"

    @app.route("/items/<item_id>")
    def item(item_id: str) -> str:
        return ITEMS[int(item_id)]  # a non-numeric id raises ValueError

    @app.route("/search")
    def search() -> str:
        return f"page {int(request.args['page'])}"  # a missing page raises (a 400 in Flask)

    app.logger.disabled = True  # the errors are the point: keep them off the test output
    served = DebuggedApplication(app, evalex=True) if debug else app

    def quiet(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.errors"] = io.StringIO()  # where the debugger prints each traceback
        return served(environ, start_response)

    return quiet


@contextmanager
def serve(debug: bool) -> Iterator[str]:
    with serve_app(make_app(debug)) as url:
        yield url
