"""A local HTTP sink that apprise ``json://`` URLs deliver to: the demo's and tests' "phone".

Standard library only. Every POST body is kept (parsed JSON) with its path; readers wait on
a condition. Responses close the connection (a keep-alive request would stall ~40 ms each).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivered:
    path: str
    body: dict[str, Any]


class HttpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, fail_paths: tuple[str, ...] = ()) -> None:
        self.received: list[Delivered] = []
        self.fail_paths = fail_paths
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                failing = any(self.path.startswith(p) for p in sink.fail_paths)
                if not failing:
                    with sink._cond:
                        sink.received.append(Delivered(self.path, body))
                        sink._cond.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host, self.port = str(self._server.server_address[0]), int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-sink", daemon=True)

    def url(self, path: str = "") -> str:
        """The apprise URL that delivers here (``json://host:port/path``)."""
        return f"json://{self.host}:{self.port}/{path.lstrip('/')}"

    def start(self) -> HttpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float) -> list[Delivered]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)
