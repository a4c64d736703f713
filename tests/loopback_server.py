"""A real HTTP server on 127.0.0.1 that stands in for a model release host, and can misbehave."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@dataclass
class Served:
    """What the loopback server holds and how it misbehaves; it records every request."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: int | None = None  # the next GET sends this many body bytes, then hangs up
    ignore_range: bool = False  # always answer 200 with the whole file
    fail_first: int = 0  # the first N requests get 503
    chunk_delay: float = 0.0  # seconds between 16 KB chunks, to make downloads overlap
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        served: Served = self.server.served  # type: ignore[attr-defined]
        with served.lock:
            served.requests.append((self.path, self.headers.get("Range")))
            failing = len(served.requests) <= served.fail_first
            cut, served.cut_after = served.cut_after, None
        body = served.files.get(self.path)
        if failing or body is None:
            self.send_error(503 if failing else 404)
            return
        start = self._range_start(served)
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self._send(body[start:], cut, served.chunk_delay)

    def _range_start(self, served: Served) -> int:
        header = self.headers.get("Range")
        if not header or served.ignore_range:
            return 0
        return int(header.removeprefix("bytes=").split("-")[0])

    def _send(self, payload: bytes, cut: int | None, delay: float) -> None:
        payload = payload if cut is None else payload[:cut]
        for i in range(0, len(payload), 16_384):
            self.wfile.write(payload[i:i + 16_384])
            time.sleep(delay)
        if cut is not None:  # hang up mid-file: the client sees EOF before Content-Length
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(files: dict[str, bytes]) -> Iterator[Served]:
    """Serve ``files`` (URL path -> body) on a free loopback port until the block ends."""
    served = Served(files=dict(files))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.served = served  # type: ignore[attr-defined]
    served.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()
