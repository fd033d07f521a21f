"""The carrier as a Flask app on a real HTTP server, in a thread of its own."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from carrier import control, rest, softphone
from carrier.engine import Engine
from carrier.state import API_VERSION, CarrierState

DESK_URL = "http://127.0.0.1:8000/desk/"


class QuietPolling(WSGIRequestHandler):
    """Logs requests as werkzeug does, except the dev phone's own reads (its poll each second) that succeed."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if str(code).isdigit() else 0
        if self.command == "GET" and self.path.startswith("/_carrier/") and 0 < status < 400:
            return
        super().log_request(code, size)


def create_carrier_app(state: CarrierState, engine: Engine, desk_url: str = DESK_URL) -> Flask:
    app = Flask(__name__)
    app.config["CARRIER_DESK_URL"] = desk_url
    app.extensions["carrier.state"] = state
    app.extensions["carrier.engine"] = engine
    app.register_blueprint(rest.blueprint())
    app.register_blueprint(control.bp)
    app.register_blueprint(softphone.bp)

    @app.before_request
    def _name_urls() -> None:
        # Every URL a REST or control request gives (form or JSON, inline TwiML too) is one the carrier may call.
        if request.method in ("POST", "PUT"):
            body = request.get_json(silent=True) if request.is_json else None
            engine.webhooks.named.name_values([*request.form.items(),
                                               *(body.items() if isinstance(body, dict) else ())])

    @app.errorhandler(404)
    @app.errorhandler(405)
    def _not_routed(exc: HTTPException) -> Any:
        return rest.twilio_http_error(exc) if request.path.startswith(f"/{API_VERSION}/") else exc

    return app


class CarrierServer:
    """Starts the carrier on host:port (0 picks a free port) and stops it, with its calls."""

    # Called with each server as it stops (after its calls): how tests see every request it sent, named or not.
    on_stop: ClassVar[list[Callable[[CarrierServer], None]]] = []

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, scale: float = 1.0, numbers: tuple[str, ...] = (), quiet: bool = True,
                 phones_file: Path | None = None, desk_url: str = DESK_URL) -> None:
        if quiet:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.state = CarrierState(account_sid or "AC" + secrets.token_hex(16), auth_token or secrets.token_hex(16),
                                  phones_file=phones_file)
        self.state.load_phones()
        self._server: BaseWSGIServer = make_server(host, port, None, threaded=True,  # type: ignore[arg-type]
                                                   request_handler=QuietPolling)
        self.url = f"http://{host}:{self._server.server_port}"
        self.engine = Engine(self.state, self.url, scale)
        self._server.app = create_carrier_app(self.state, self.engine, desk_url)
        for number in numbers:
            self.state.add_number(number)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="carrier-http",
                                        daemon=True)

    @property
    def desk_url(self) -> str:
        """The agent desk: the dev phone links to it, and its browser phone alone may use /_carrier/clients/."""
        return self._server.app.config["CARRIER_DESK_URL"]

    @desk_url.setter
    def desk_url(self, url: str) -> None:
        self._server.app.config["CARRIER_DESK_URL"] = url

    def start(self) -> CarrierServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.engine.stop()
        self._server.shutdown()
        self._server.server_close()
        for watcher in self.on_stop:
            watcher(self)

    def __enter__(self) -> CarrierServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
