"""The gunicorn worker ``rulesvc serve`` runs: gunicorn's threaded worker, reading every request whole
before a thread takes it (SPEC §7.1: slow or idle clients never hold a worker).

gunicorn's ``gthread`` worker hands a connection to a thread as soon as its first bytes arrive; the
thread then blocks reading the rest, so ten clients sending a body one byte every few seconds (or
their headers that slowly) occupy every thread and the service stops answering. Here the worker's own
event loop, which already waits on every idle kept-alive connection, also receives each request's
bytes: only a request whose head and body are complete (by its ``Content-Length`` or its chunked
framing, RFC 9112 §6) reaches a thread, which then parses it from memory and never waits on the
client. A client that does not finish its head within :data:`HEAD_READ_TIMEOUT_SECONDS` or its body
within :data:`BODY_READ_TIMEOUT_SECONDS` gets a JSON 408 and is disconnected; one that announces a
body larger than any endpoint takes gets its 413 without a thread being involved. Everything
gunicorn itself checks (request line, header sizes and counts, framing conflicts) is still checked
by gunicorn's parser: whatever this reader cannot frame it passes on as it is, for the parser to refuse.

TLS connections are served as gunicorn serves them (the service runs behind a TLS-terminating proxy
or on loopback).
"""

from __future__ import annotations

import errno
import json
import selectors
import time
from functools import partial
from typing import Any, NamedTuple

from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

# A new connection (or a kept-alive one that became readable) has this long to send a whole request head,
HEAD_READ_TIMEOUT_SECONDS = 10.0
# and then this long for its body: 16 MiB (the batch maximum) at 1 MB/s, a slow but honest client.
BODY_READ_TIMEOUT_SECONDS = 20.0
# A thread writing an answer to a client that does not read it gives up after this long (the
# connection is closed): a client cannot hold a thread by not reading, only for this long.
SEND_TIMEOUT_SECONDS = 10.0
# gunicorn's own limits (REQUEST_LIMITS in cli/serve.py: a line or header of 8190 bytes, 100 headers)
# bound a head; one still not finished past this is answered 431 here, never handed on unfinished.
MAX_HEAD_BYTES = 8190 + 100 * (8190 + 2) + 4
# A chunk-size line (hex size and extensions) at most as long as gunicorn takes a header line.
MAX_CHUNK_LINE_BYTES = 8190 + 2
# What one worker holds of requests over SMALL_REQUEST_BYTES, arriving or waiting for a thread, all
# connections together (each counted at the size its head announces): past it such a request is a
# 503. Smaller requests are bounded by the connection count alone, so filling the budget with large
# announced bodies never shuts out a decision or /healthz.
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
SMALL_REQUEST_BYTES = 64 * 1024
RECEIVE_BYTES = 256 * 1024

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Refusal(NamedTuple):
    """An answer the worker gives itself to a request it will not hand on."""

    status: int
    reason: str
    message: str


class RequestFraming:
    """Where the first HTTP/1.x request in the bytes received so far ends.

    Fed the bytes as they arrive; :attr:`end` is the index just past the request once it is whole, or
    once the bytes at hand show a framing error gunicorn's parser refuses without reading more (two
    lengths, a length that is not a number, a chunk size that is not hex). :attr:`refusal` is set for
    what must never reach a thread: a head, chunk line or trailer past the limits, a body past the
    maximum. Scanning is incremental: each byte is looked at a bounded number of times however it is split.
    """

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.buffer = bytearray()
        self.head_end: int | None = None
        self.end: int | None = None
        self.refusal: Refusal | None = None
        self.expects_continue = False
        self.announced = 0  # the whole request's size, as far as its head says (Content-Length)
        self._content_length = 0
        self._chunk_cursor: int | None = None  # the next chunk-size line of a chunked body
        self._head_scanned = 0
        self._trailer_scanned: int | None = None

    @property
    def done(self) -> bool:
        return self.end is not None or self.refusal is not None

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if not self.done:
            self._advance()

    def _advance(self) -> None:
        if self.head_end is None:
            start = max(self._head_scanned - 3, 0)
            blank_line = self.buffer.find(b"\r\n\r\n", start)
            self._head_scanned = len(self.buffer)
            if blank_line < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self.refusal = Refusal(431, "Request Header Fields Too Large", "the request head is too long")
                return
            self.head_end = blank_line + 4
            self._read_head(bytes(self.buffer[:blank_line]))
            if self.done:
                return
        if self._chunk_cursor is not None:
            self._advance_chunks()
        elif len(self.buffer) >= self.head_end + self._content_length:
            self.end = self.head_end + self._content_length

    def _read_head(self, head: bytes) -> None:
        """The framing fields of the head; a framing error the parser sees at once sets ``end`` now."""
        lines = head.split(b"\r\n")
        version = lines[0].rsplit(b" ", 1)[-1].strip().upper()
        lengths: set[bytes] = set()
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                lengths.add(value)
            elif name == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
            elif name == b"expect" and value.lower() == b"100-continue" and version != b"HTTP/1.0":
                self.expects_continue = True
        if len(lengths) > 1 or (lengths and chunked):
            self.end = self.head_end  # conflicting framing: the parser refuses the head
        elif chunked:
            self._chunk_cursor = self.head_end
        elif lengths:
            length = lengths.pop()
            if not length.isdigit():
                self.end = self.head_end
            elif int(length) > self.max_body_bytes:
                self.refusal = Refusal(413, "Content Too Large", f"a request body is at most {self.max_body_bytes} bytes")
            else:
                self._content_length = int(length)
                self.announced = self.head_end + self._content_length

    def _advance_chunks(self) -> None:
        cursor = self._chunk_cursor
        while True:
            if self._trailer_scanned is not None:
                self._advance_trailers()
                return
            line_end = self.buffer.find(b"\r\n", cursor, cursor + MAX_CHUNK_LINE_BYTES)
            if line_end < 0:
                if len(self.buffer) - cursor >= MAX_CHUNK_LINE_BYTES:
                    self.refusal = Refusal(400, "Bad Request", "a chunk size line is too long")
                self._chunk_cursor = cursor
                return
            size_text = bytes(self.buffer[cursor:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                self.end = len(self.buffer)  # the parser refuses the size line it has
                return
            next_line = line_end + 2 + size + 2
            if next_line - self.head_end > self.max_body_bytes + MAX_CHUNK_LINE_BYTES:
                self.refusal = Refusal(413, "Content Too Large", f"a request body is at most {self.max_body_bytes} bytes")
                return
            if size == 0:  # the last chunk, then trailer fields up to a blank line
                self._chunk_cursor = self._trailer_scanned = line_end + 2
                self._advance_trailers()
                return
            if next_line > len(self.buffer):
                self._chunk_cursor = cursor
                return
            cursor = next_line

    def _advance_trailers(self) -> None:
        trailers = self._chunk_cursor
        if self.buffer[trailers:trailers + 2] == b"\r\n":
            self.end = trailers + 2
            return
        blank_line = self.buffer.find(b"\r\n\r\n", max(self._trailer_scanned - 3, trailers))
        self._trailer_scanned = len(self.buffer)
        if blank_line >= 0:
            self.end = blank_line + 4
        elif len(self.buffer) - trailers > MAX_HEAD_BYTES:
            self.refusal = Refusal(431, "Request Header Fields Too Large", "the request's trailer fields are too long")


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers (a malformed request, a line or header past the limits, a worker
    stopped mid-request) in the service's JSON error shape instead of gunicorn's HTML page."""
    from api.errors import error_body, http_error_code  # loaded with the app by then; not before it (metrics)

    body = json.dumps(error_body(http_error_code(status_int), mesg or reason), ensure_ascii=False).encode("utf-8")
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


class WholeRequestWorker(ThreadWorker):
    """gunicorn's threaded worker, answering its own errors in JSON and dispatching whole requests only."""

    def init_process(self) -> None:
        from api.bodies import MAX_BATCH_BODY_BYTES  # the largest body any endpoint takes

        util.write_error = write_json_error  # the one function gunicorn's error handling writes with
        self.max_body_bytes = MAX_BATCH_BODY_BYTES
        self.reading: dict[TConn, tuple[RequestFraming, float]] = {}  # in arrival order: oldest first
        self.held: dict[TConn, int] = {}  # bytes a large request counts against MAX_BUFFERED_BYTES
        self.held_bytes = 0
        super().init_process()

    def accept(self, listener: Any) -> None:
        super().accept(listener)
        if self.nr_conns >= self.worker_connections:
            # Every slot taken: the oldest connection that has sent nothing yet makes room, so idle
            # sockets alone never stop this worker from accepting the next client.
            idle = next((conn for conn, (framing, _) in self.reading.items() if not framing.buffer), None)
            if idle is not None:
                self._drop(idle)

    # Every way a connection reaches the thread pool (new, kept alive and readable, bytes left over from a
    # pipelined request) goes through enqueue_req: here it first waits in the event loop for a whole request.
    def enqueue_req(self, conn: TConn) -> None:
        if self.cfg.is_ssl:
            super().enqueue_req(conn)
            return
        conn.init()
        conn.sock.setblocking(False)
        framing = RequestFraming(self.max_body_bytes)
        self.reading[conn] = (framing, time.monotonic() + HEAD_READ_TIMEOUT_SECONDS)
        leftover = conn.parser.unreader.take_buffered()
        if leftover:
            self._take(conn, framing, leftover)
        # A kept-alive connection is here because it became readable: most requests are whole already,
        # and reading now saves a round through the poller.
        if conn in self.reading and self._receive(conn) and conn in self.reading:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: TConn, _sock: Any) -> None:
        self._receive(conn)

    def _receive(self, conn: TConn) -> bool:
        """Take what the socket holds; False when the connection is gone."""
        framing, _ = self.reading[conn]
        try:
            data = conn.sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""
        if not data:  # the client went away before finishing its request
            self._drop(conn)
            return False
        self._take(conn, framing, data)
        return True

    def _take(self, conn: TConn, framing: RequestFraming, data: bytes) -> None:
        had_head = framing.head_end is not None
        framing.feed(data)
        if framing.refusal is not None:
            self._refuse(conn, *framing.refusal)
            return
        if not self._hold(conn, max(len(framing.buffer), framing.announced)):
            self._refuse(conn, 503, "Service Unavailable", "too many large requests are arriving at once; retry shortly")
        elif framing.end is not None:
            self._dispatch(conn, framing)
        elif framing.head_end is not None and not had_head:
            self.reading[conn] = (framing, time.monotonic() + BODY_READ_TIMEOUT_SECONDS)
            if framing.expects_continue:  # the client waits for this before it sends its body
                try:
                    util.write_nonblock(conn.sock, CONTINUE)
                except OSError:
                    self._drop(conn)

    def _hold(self, conn: TConn, size: int) -> bool:
        """Count a large request's bytes against the worker's budget; False when they do not fit."""
        if size <= SMALL_REQUEST_BYTES:
            return True
        more = size - self.held.get(conn, 0)
        if more > 0 and self.held_bytes + more > MAX_BUFFERED_BYTES:
            return False
        self.held[conn] = self.held.get(conn, 0) + max(more, 0)
        self.held_bytes += max(more, 0)
        return True

    def _release(self, conn: TConn) -> None:
        self.held_bytes -= self.held.pop(conn, 0)

    def _stop_reading(self, conn: TConn) -> None:
        self.reading.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass  # never registered: the whole request was already buffered

    def _dispatch(self, conn: TConn, framing: RequestFraming) -> None:
        self._stop_reading(conn)
        conn.parser.unreader.unread(bytes(framing.buffer))
        conn.data_ready = True
        super().enqueue_req(conn)  # its bytes stay counted until its thread is done with it

    def finish_request(self, conn: TConn, fs: Any) -> None:
        self._release(conn)
        super().finish_request(conn, fs)

    def _drop(self, conn: TConn) -> None:
        self._stop_reading(conn)
        self._release(conn)
        self.nr_conns -= 1
        conn.close()

    def _refuse(self, conn: TConn, status: int, reason: str, message: str) -> None:
        try:
            write_json_error(conn.sock, status, reason, message)
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EAGAIN):
                self.log.debug("could not answer %s: %s", status, error)
        self._drop(conn)

    def murder_pending(self) -> None:
        """Called by gunicorn's loop about once a second: also ends requests that arrive too slowly."""
        super().murder_pending()
        now = time.monotonic()
        for conn, (framing, deadline) in list(self.reading.items()):
            if not framing.buffer and (now >= deadline or not self.alive):
                self._drop(conn)  # idle: nothing to answer
            elif not self.alive:  # stopping: a request still arriving is not waited for
                self._refuse(conn, 503, "Service Unavailable", "the server is stopping; retry")
            elif now >= deadline:
                part = "head" if framing.head_end is None else "body"
                self._refuse(conn, 408, "Request Timeout", f"the request {part} did not arrive in time")

    def handle_request(self, req: Any, conn: TConn) -> bool:
        if not self.cfg.is_ssl:
            # The body is here already: it was asked for (100 Continue) while the request was read.
            req._expected_100_continue = False
            # Writing the answer (and anything the application still reads) may wait this long, no longer.
            conn.sock.settimeout(SEND_TIMEOUT_SECONDS)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:  # one line, not gunicorn's "socket error" traceback: the client's doing
            self.log.info("closed a connection from %s: it read no answer for %s s", conn.client, SEND_TIMEOUT_SECONDS)
            raise StopIteration from None
