"""Test helper: a tiny local stand-in for the Hugging Face Hub's file routes, on 127.0.0.1.

It answers ``HEAD`` and ``GET /{owner}/{repo}/resolve/{revision}/{path}`` like the Hub does for
a file (``X-Repo-Commit``, ``X-Linked-Etag`` = the LFS sha256 or the git blob sha1, ``X-Linked-
Size``, byte ranges for resumes), records every request, and can misbehave per file: ``status``
(404, 500 ...), ``head_delay`` (a slow server), ``chunk_delay`` (a slow transfer to kill or cancel
in the middle), ``body`` (bytes other than the advertised ones: a corrupt mirror).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ROUTE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
CHUNK = 1024 * 1024


def lfs_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


@dataclass
class HubFile:
    data: bytes
    lfs: bool = True  # LFS files carry their sha256 as ETag, small git files their blob sha1
    status: int = 200
    head_delay: float = 0.0
    chunk_delay: float = 0.0
    body: bytes | None = None  # what GET really sends, if not ``data``
    chunk: int = CHUNK  # bytes sent between two ``chunk_delay`` pauses
    ignore_range: bool = False  # answer a Range request with the whole file (some CDNs do)


@dataclass
class FakeHub:
    files: dict[str, HubFile] = field(default_factory=dict)  # "owner/repo/path" -> file
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def gets(self, name: str) -> list[str]:
        """The Range header of every GET of file ``name`` (``""``: the whole file)."""
        return [rng for method, path, rng in self.requests if method == "GET" and path.endswith("/" + name)]

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _file(self) -> HubFile | None:
                match = _ROUTE.match(self.path.split("?")[0])
                hub.requests.append((self.command, self.path, self.headers.get("Range", "")))
                entry = hub.files.get(f"{match['repo']}/{match['path']}") if match else None
                if entry is None or entry.status != 200:
                    self.send_response(404 if entry is None else entry.status)
                    self.send_header("Content-Length", "0")
                    self.send_header("X-Error-Code", "EntryNotFound" if entry is None else "")
                    self.end_headers()
                    return None
                return entry

            def _headers(self, entry: HubFile, status: int, length: int, first: int = 0) -> None:
                etag = lfs_sha256(entry.data) if entry.lfs else git_sha1(entry.data)
                self.send_response(status)
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("ETag", f'"{etag}"')
                if entry.lfs:
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(entry.data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(length))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {first}-{len(entry.data) - 1}/{len(entry.data)}")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802 - the http.server API
                entry = self._file()
                if entry is not None:
                    time.sleep(entry.head_delay)
                    self._headers(entry, 200, len(entry.data))

            def do_GET(self) -> None:  # noqa: N802
                entry = self._file()
                if entry is None:
                    return
                body = entry.body if entry.body is not None else entry.data
                first = int(re.match(r"bytes=(\d+)-", self.headers.get("Range", "bytes=0-"))[1])
                first = 0 if entry.ignore_range else first
                self._headers(entry, 206 if first else 200, len(body) - first, first)
                try:
                    for start in range(first, len(body), entry.chunk):
                        self.wfile.write(body[start:start + entry.chunk])
                        self.wfile.flush()
                        time.sleep(entry.chunk_delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed or cancelled: that is the point of some tests

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
