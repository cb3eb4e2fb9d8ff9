"""How the serving worker frames a request before a thread takes it (cli/worker.py): whole requests
only, however their bytes are split, and anything it cannot frame handed on for gunicorn to refuse."""

from __future__ import annotations

import pytest

from cli.worker import MAX_CHUNK_LINE_BYTES, MAX_HEAD_BYTES, RequestFraming

BODY = b'{"facts": {"order": {"amount": "100.00"}}}'
LENGTH = b"POST /v1/decisions/recovery.contact HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
CHUNKED = (b"POST /v1/decisions/recovery.contact HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\n" + BODY[:5] + b"\r\n" + b"%x;name=value\r\n" % (len(BODY) - 5) + BODY[5:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n")


def framed(request: bytes, split: int, max_body: int = 1024) -> RequestFraming:
    framing = RequestFraming(max_body)
    for start in range(0, len(request), split):
        assert framing.end is None, "whole before its last byte"
        framing.feed(request[start:start + split])
    return framing


@pytest.mark.parametrize("request_bytes", [LENGTH, CHUNKED, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
@pytest.mark.parametrize("split", [1, 2, 3, 7, 64, 100_000])
def test_a_request_is_whole_exactly_at_its_last_byte(request_bytes, split):
    framing = framed(request_bytes, split)
    assert framing.end == len(request_bytes)


def test_a_pipelined_request_after_it_is_not_part_of_it():
    framing = RequestFraming(1024)
    framing.feed(LENGTH + LENGTH[:30])
    assert framing.end == len(LENGTH)


def test_expect_continue_is_noticed_on_http_1_1_only():
    framing = RequestFraming(1024)
    framing.feed(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
    assert framing.expects_continue and framing.end is None
    old = RequestFraming(1024)
    old.feed(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    assert not old.expects_continue


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",         # two lengths
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",  # both framings
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",                 # not a hex size
])
def test_framing_it_cannot_trust_goes_to_the_parser_at_once(head):
    framing = RequestFraming(1024)
    framing.feed(head)
    assert framing.end is not None and framing.refusal is None


CHUNKED_HEAD = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", 413),            # announced too large
    (CHUNKED_HEAD + b"2000000\r\nabc", 413),                                # one chunk announced too large
    (CHUNKED_HEAD + (b"100\r\n" + b"x" * 256 + b"\r\n") * 50, 413),         # chunks adding up past it
    (b"GET / HTTP/1.1\r\nX: " + b"x" * MAX_HEAD_BYTES, 431),                # a head that never ends
    (CHUNKED_HEAD + b"1;" + b"a" * MAX_CHUNK_LINE_BYTES, 400),                # a chunk line that never ends
    (CHUNKED_HEAD + b"0\r\nX: " + b"x" * MAX_HEAD_BYTES, 431),              # trailers that never end
])
def test_what_would_make_a_thread_wait_is_answered_by_the_worker_itself(request_bytes, status):
    """Never handed on unfinished: gunicorn's parser would wait on the socket for the rest (its own
    limits are looser than these), holding a thread."""
    framing = RequestFraming(1024)
    for start in range(0, len(request_bytes), 4096):
        framing.feed(request_bytes[start:start + 4096])
    assert framing.end is None and framing.refusal is not None and framing.refusal.status == status
