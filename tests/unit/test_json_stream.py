"""The streaming reader must yield exactly the elements json.loads sees, wherever chunks are cut."""

import io
import json
import re

import msgspec
import pytest

from workbench.loaders.json_stream import EventArrayReader, MalformedStream

TRICKY = [
    {"name": "a }, { b", "ph": "X"},
    {"name": "quote \" }, {", "args": {"nested": [{"x": 1}, {"y": "}, {"}]}},
    {"name": "unicode é ✓", "ph": "i"},
    {},
    {"name": "last"},
]


def read_all(document: bytes, chunk_size: int) -> tuple[list, bytes]:
    reader = EventArrayReader(io.BytesIO(document), chunk_size=chunk_size)
    elements = [e for batch in reader.batches(msgspec.json.decode) for e in batch]
    return elements, reader.remainder


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 16, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 1])
def test_elements_and_remainder_reconstruct_the_document(chunk_size, indent):
    document = json.dumps({"schemaVersion": 1, "traceEvents": TRICKY, "after": {"k": [1, 2]}}, indent=indent)
    elements, remainder = read_all(document.encode(), chunk_size)
    rest = json.loads(remainder)
    assert elements + rest["traceEvents"] == TRICKY
    assert rest["schemaVersion"] == 1 and rest["after"] == {"k": [1, 2]}


def test_an_element_over_many_chunks_is_decoded_a_few_times_not_once_a_chunk():
    """A 600 KB element of 50,000 objects (a `},{` in every chunk) read 1 KiB at a time: the cut inside it is
    decoded again once the bytes grew by a quarter (24 tries), not at each of its ~670 chunks (673 tries)."""
    big = {"name": "big", "args": {"list": [{"a": i} for i in range(50_000)]}}
    document = json.dumps({"traceEvents": [*TRICKY, big, *TRICKY]}).encode()
    tries = []

    def decode(data: bytes) -> list:
        tries.append(len(data))
        return msgspec.json.decode(data)

    reader = EventArrayReader(io.BytesIO(document), chunk_size=1 << 10)
    elements = [e for batch in reader.batches(decode) for e in batch]
    assert elements + json.loads(reader.remainder)["traceEvents"] == [*TRICKY, big, *TRICKY]
    assert len(document) > 600 << 10 and len(tries) < 40


def test_a_bare_array_document():
    elements, remainder = read_all(json.dumps(TRICKY).encode(), 5)
    assert elements + json.loads(remainder) == TRICKY


def test_non_json_yields_nothing_and_leaves_an_undecodable_remainder():
    elements, remainder = read_all(b"hello world", 4)
    assert elements == []
    with pytest.raises(json.JSONDecodeError):
        json.loads(remainder)


def test_only_the_top_level_array_is_streamed_even_behind_a_nested_one_larger_than_a_chunk():
    """Synthetic: an `otherData.traceEvents` of 2,000 events ahead of the real 5 (the issue's silently wrong report)."""
    nested = [{"name": f"fake {i}", "ph": "X"} for i in range(2000)]
    document = json.dumps({"otherData": {"traceEvents": nested}, "traceEvents": TRICKY}).encode()
    assert len(json.dumps(nested)) > 4096
    elements, remainder = read_all(document, 4096)
    rest = json.loads(remainder)
    assert elements + rest["traceEvents"] == TRICKY
    assert rest["otherData"]["traceEvents"] == nested


def test_a_second_top_level_array_is_cut_out_and_counted():
    document = json.dumps({"traceEvents": TRICKY}).encode()[:-1] + b', "traceEvents": [{"name": "dup"}]}'
    reader = EventArrayReader(io.BytesIO(document), chunk_size=16)
    elements = [e for batch in reader.batches(msgspec.json.decode) for e in batch]
    assert elements + json.loads(reader.remainder)["traceEvents"] == TRICKY
    assert reader.duplicates == 1


@pytest.mark.parametrize("document, message", [
    (b'{"traceEvents":[' + b"\0" * 100, "byte b'\\x00' at offset 16 cannot be in JSON"),
    (b'{"traceEvents":[   x', "byte b'x' cannot start an event"),
])
def test_the_first_impossible_byte_is_rejected(document, message):
    with pytest.raises(MalformedStream, match=re.escape(message)):
        read_all(document, 8)


def test_a_byte_order_mark_and_leading_space_are_skipped():
    elements, remainder = read_all(b"\xef\xbb\xbf \n" + json.dumps({"traceEvents": TRICKY}).encode(), 3)
    assert elements + json.loads(remainder)["traceEvents"] == TRICKY
