"""Servers for the memcached, Elasticsearch and MongoDB probes of network.*.

- memcached: the real Debian `memcached` 1.6 binary, open or with `-Y` (ASCII protocol
  authentication: every command before the credentials is `CLIENT_ERROR unauthenticated`).
- Elasticsearch (does not install from Debian here): a faithful Flask reproduction of
  Elasticsearch 8.13's GET /: the banner JSON (name, cluster_name, cluster_uuid, version,
  tagline "You Know, for Search", header X-elastic-product) with security off; with
  security on, 401 security_exception "missing authentication credentials for REST request
  [/]" with `WWW-Authenticate: Basic realm="security" charset="UTF-8"` and `ApiKey`.
- MongoDB (does not install from Debian here): a faithful reproduction of mongod 7.0's
  answer to an OP_MSG (opcode 2013, flagBits 0, one kind-0 section) running listDatabases
  on admin: without access control `{"databases": [{"name": ...}, ...], "ok": 1.0}`
  (nameOnly: names only); with `security.authorization: enabled` `{"ok": 0.0, "errmsg":
  "Command listDatabases requires authentication", "code": 13, "codeName":
  "Unauthorized"}`. Its own small BSON encoder, independent of the check's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.serving import make_server

from tests.targets.dbservers import wait_for_port
from tests.targets.webapp import serve_app
from tests.tls_certs import self_signed
from tests.tls_servers import free_ports


# -- memcached ------------------------------------------------------------------------------
@contextlib.contextmanager
def run_memcached(*, auth: bool = False) -> Iterator[str]:
    """A real memcached on 127.0.0.1 (TCP only); yields 'host:port'."""
    port = free_ports(1)[0]
    with tempfile.TemporaryDirectory(prefix="prodready-memcached-") as workdir:
        args = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "8", "-t", "1"]
        if auth:
            path = Path(workdir) / "auth"
            path.write_text("app:s3cret-memcached\n", encoding="utf-8")
            os.chmod(workdir, 0o755)  # memcached reads it as the user it runs as
            path.chmod(0o644)
            args += ["-Y", str(path)]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", port, process)
            yield f"127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# -- Elasticsearch --------------------------------------------------------------------------
ES_BANNER = {"name": "es-node-1", "cluster_name": "docker-cluster",
             "cluster_uuid": "Xk3q7m3GQ2aA1pUOQ9vQ5g",
             "version": {"number": "8.13.0", "build_flavor": "default", "build_type": "docker",
                         "build_hash": "09df99393193b2c53d92899662a8b8b3c55b45cd",
                         "build_date": "2024-03-22T03:35:46.757803203Z", "build_snapshot": False,
                         "lucene_version": "9.10.0", "minimum_wire_compatibility_version": "7.17.0",
                         "minimum_index_compatibility_version": "7.0.0"},
             "tagline": "You Know, for Search"}
ES_REALM = 'Basic realm="security" charset="UTF-8"'


def elasticsearch_app(security: bool) -> Flask:
    app = Flask("elasticsearch")

    @app.get("/")
    def root() -> Response:
        if not security:
            response = jsonify(ES_BANNER)
        else:
            cause = {"type": "security_exception",
                     "reason": "missing authentication credentials for REST request [/]",
                     "header": {"WWW-Authenticate": [ES_REALM, "ApiKey"]}}
            response = jsonify({"error": {"root_cause": [cause], **cause}, "status": 401})
            response.status_code = 401
            response.headers.add("WWW-Authenticate", ES_REALM)
            response.headers.add("WWW-Authenticate", "ApiKey")
        response.headers["X-elastic-product"] = "Elasticsearch"
        return response

    return app


@contextlib.contextmanager
def serve_elasticsearch(security: bool, tls: bool = False) -> Iterator[str]:
    """'host:port' of the reproduction; tls=True plays Elasticsearch 8's default (TLS on the
    HTTP port, a throwaway self-signed certificate): a plain-text request is dropped."""
    if not tls:
        with serve_app(elasticsearch_app(security)) as url:
            yield url.removeprefix("http://")
        return
    with tempfile.TemporaryDirectory(prefix="prodready-es-") as workdir:
        certfile, keyfile = self_signed().write(Path(workdir), "es")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server = make_server("127.0.0.1", 0, elasticsearch_app(security), threaded=True,
                             ssl_context=context)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        try:
            yield f"127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


# -- MongoDB --------------------------------------------------------------------------------
def _bson(document: dict[str, Any]) -> bytes:
    out = b""
    for key, value in document.items():
        name = key.encode() + b"\0"
        if isinstance(value, bool):
            out += b"\x08" + name + bytes([value])
        elif isinstance(value, float):
            out += b"\x01" + name + struct.pack("<d", value)
        elif isinstance(value, int):
            out += b"\x10" + name + struct.pack("<i", value)
        elif isinstance(value, str):
            data = value.encode() + b"\0"
            out += b"\x02" + name + struct.pack("<i", len(data)) + data
        elif isinstance(value, list):
            out += b"\x04" + name + _bson({str(i): v for i, v in enumerate(value)})
        else:
            out += b"\x03" + name + _bson(value)
    return struct.pack("<i", len(out) + 5) + out + b"\0"


MONGO_DATABASES = ["admin", "config", "local", "shop"]
MONGO_UNAUTHORIZED = {"ok": 0.0, "errmsg": "Command listDatabases requires authentication",
                      "code": 13, "codeName": "Unauthorized"}


class FakeMongo:
    """mongod 7.0's OP_MSG answer to listDatabases, with or without access control."""

    def __init__(self, authorization: bool) -> None:
        self.authorization = authorization
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError, struct.error):
                    data = conn.recv(4)
                    length = struct.unpack("<i", data)[0]
                    while len(data) < length:
                        data += conn.recv(length - len(data))
                    self.requests.append(data)
                    request_id, _, opcode = struct.unpack("<iii", data[4:16])
                    if opcode != 2013 or data[20] != 0:
                        continue  # mongod closes a connection it cannot parse
                    if b"\x10listDatabases\0" not in data:
                        answer: dict[str, Any] = {"ok": 0.0, "errmsg": "no such command",
                                                  "code": 59, "codeName": "CommandNotFound"}
                    elif self.authorization:
                        answer = MONGO_UNAUTHORIZED
                    else:
                        answer = {"databases": [{"name": n} for n in MONGO_DATABASES], "ok": 1.0}
                    body = struct.pack("<I", 0) + b"\0" + _bson(answer)
                    conn.sendall(struct.pack("<iiii", 16 + len(body), 7, request_id, 2013) + body)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        self.listener.close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def serve_mongodb(authorization: bool) -> Iterator[FakeMongo]:
    server = FakeMongo(authorization)
    try:
        yield server
    finally:
        server.close()
