"""The incremental SSE codec: same events whatever the chunking (WHATWG SSE parsing rules)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from translators.sse import SSEDecoder, SSEEvent, encode_event

STREAM = (
    b": keep-alive\r\n\r\n"
    b'event: message_start\r\ndata: {"type":"message_start"}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"data:no-space\n\n"
    b"event: ping\ndata: {}\n\n"
    b'data: {"t":"caf\xc3\xa9 \xe2\x82\xac"}\r\r'
    b"event: empty\n\n"
    b"data: [DONE]"
)
EXPECTED = [
    SSEEvent("message_start", b'{"type":"message_start"}'),
    SSEEvent(None, b"line one\nline two"),
    SSEEvent(None, b"no-space"),
    SSEEvent("ping", b"{}"),
    SSEEvent(None, '{"t":"café €"}'.encode()),
    SSEEvent(None, b"[DONE]"),
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    prev = 0
    for cut in sorted(set(cuts)):
        out += dec.feed(data[prev:cut])
        prev = cut
    out += dec.feed(data[prev:])
    return out + dec.close()


def test_whole_stream():
    assert decode_in_pieces(STREAM, []) == EXPECTED


def test_byte_by_byte():
    assert decode_in_pieces(STREAM, list(range(len(STREAM)))) == EXPECTED


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_random_splits_give_same_events(cuts):
    assert decode_in_pieces(STREAM, cuts) == EXPECTED


def test_comments_counted_and_trailing_event_needs_close():
    dec = SSEDecoder()
    assert dec.feed(b": ping\n\ndata: x") == []
    assert dec.comments == 1
    assert dec.close() == [SSEEvent(None, b"x")]
    assert dec.close() == []


def test_crlf_split_across_chunks_is_one_line_end():
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\n\r") == []
    assert dec.feed(b"\ndata: b\n\n") == [SSEEvent(None, b"a"), SSEEvent(None, b"b")]


def test_encode_roundtrip():
    frames = encode_event(b'{"a":1}', "content_block_delta") + encode_event(b"[DONE]")
    assert frames == b'event: content_block_delta\ndata: {"a":1}\n\ndata: [DONE]\n\n'
    assert decode_in_pieces(frames, [5, 17]) == [SSEEvent("content_block_delta", b'{"a":1}'), SSEEvent(None, b"[DONE]")]
