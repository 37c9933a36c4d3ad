"""A tiny real HTTP server on a free loopback port whose answers a test scripts byte by
byte: trickling, gzip bombs, redirects, odd headers. Used to prove the clients survive
servers that misbehave."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Script = Callable[["Handler", Seen], None]


@dataclass
class HostileServer:
    url: str
    stop: threading.Event
    seen: list[Seen] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
        self.server.record.seen.append(seen)
        # A client that gives up mid-answer is exactly what the tests want.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.server.script(self, seen)
        self.close_connection = True

    do_GET = do_POST = do_PUT = _handle

    # --- building blocks for scripts ---

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def trickle(self, status: int, headers: dict[str, str], every_s: float) -> None:
        """Headers, then one byte of body every `every_s` until the client hangs up or
        the test ends."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.flush()
        for _ in range(1000):
            if self.server.record.stop.wait(every_s):
                return
            self.wfile.write(b" ")
            self.wfile.flush()

    def trickle_headers(self, every_s: float) -> None:
        """The status line and headers themselves, one byte at a time."""
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000:
            if self.server.record.stop.wait(every_s):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def stream_gzip(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in chunks:
            if self.server.record.stop.is_set():
                return
            self.wfile.write(chunk)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: Script
    record: HostileServer


@contextmanager
def hostile_server(script: Script) -> Iterator[HostileServer]:
    server = _Server(("127.0.0.1", 0), Handler)
    server.script = script
    host, port = server.server_address[:2]
    server.record = HostileServer(url=f"http://{host!s}:{port}", stop=threading.Event())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.record
    finally:
        server.record.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def gzip_bomb_chunks(inflated_bytes: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A gzip stream of `inflated_bytes` zeros, produced as it is sent (1 GiB of zeros is
    about 1 MB compressed)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    for _ in range(inflated_bytes // chunk):
        out = compressor.compress(zeros)
        if out:
            yield out
    yield compressor.flush()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def connection_refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"
