"""The streaming reader must yield exactly the elements json.loads sees, wherever chunks are cut."""

import io
import json

import msgspec
import pytest

from workbench.loaders.json_stream import EventArrayReader

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


def test_a_bare_array_document():
    elements, remainder = read_all(json.dumps(TRICKY).encode(), 5)
    assert elements + json.loads(remainder) == TRICKY


def test_non_json_yields_nothing_and_leaves_an_undecodable_remainder():
    elements, remainder = read_all(b"hello world", 4)
    assert elements == []
    with pytest.raises(json.JSONDecodeError):
        json.loads(remainder)
