"""Read a large JSON document whose bulk is one array of objects, a batch at a time.

A Chrome/Kineto trace is one object holding a `traceEvents` array of hundreds of thousands
of small objects. Parsing it whole costs several times its size in memory. Instead we read
the decompressed bytes in chunks, cut each chunk after the last `}` of an array element
(`}` `,` `{` outside any string), and hand the complete elements to a decoder. A cut that
falls inside a string or a nested value cannot decode (the string or bracket is left open),
so a failed decode only means "wait for more bytes", never a silently wrong batch. What is
left at the end (the head before the array, the last elements, the keys after the array)
is one small, complete document: `remainder`.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Callable, Iterator, TypeVar

import msgspec

T = TypeVar("T")

CHUNK_SIZE = 4 << 20
_ARRAY_START = re.compile(rb'"traceEvents"\s*:\s*\[')
_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_WHITESPACE = b" \t\r\n\xef\xbb\xbf"  # and a UTF-8 byte-order mark
_SEARCH_WINDOW = 1 << 16


class EventArrayReader:
    """Yield decoded batches of the elements of a document's event array.

    After iteration, `remainder` holds the document minus the elements already yielded:
    it is valid JSON exactly when the input was.
    """

    def __init__(
        self,
        stream: BinaryIO,
        on_progress: Callable[[], None] | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._stream = stream
        self._on_progress = on_progress
        self._chunk_size = chunk_size
        self.remainder = b""

    def batches(self, decode: Callable[[bytes], T]) -> Iterator[T]:
        head, carry = self._find_array()
        if head is None:
            self.remainder = carry
            return
        while chunk := self._read():
            buf = carry + chunk
            boundary = _last_boundary(buf)
            if boundary is None:
                carry = buf
                continue
            close, open_ = boundary
            try:
                batch = decode(b"[" + buf[: close + 1] + b"]")
            except msgspec.DecodeError:
                carry = buf  # the cut was not between elements; more bytes will settle it
                continue
            carry = buf[open_:]
            yield batch
        self.remainder = head + carry

    def _read(self) -> bytes:
        chunk = self._stream.read(self._chunk_size)
        if self._on_progress is not None:
            self._on_progress()
        return chunk

    def _find_array(self) -> tuple[bytes | None, bytes]:
        """Read until the event array opens; return (head through '[', bytes after it)."""
        buf = b""
        while chunk := self._read():
            buf += chunk
            stripped = buf.lstrip(_WHITESPACE)
            if not stripped:
                continue
            if stripped[:1] == b"[":
                start = len(buf) - len(stripped) + 1
                return buf[:start], buf[start:]
            if stripped[:1] != b"{":
                return None, buf  # not JSON at all: the caller's decode reports it
            match = _ARRAY_START.search(buf)
            if match:
                return buf[: match.end()], buf[match.end() :]
        return None, buf


def _last_boundary(buf: bytes) -> tuple[int, int] | None:
    """Indexes of the '}' and the '{' of the last `}`,`{` boundary in `buf`, or None."""
    lo = len(buf)
    window = _SEARCH_WINDOW
    while lo > 0:
        lo = max(0, lo - window)
        last = None
        for last in _BOUNDARY.finditer(buf, lo):
            pass
        if last is not None:
            return last.start(), last.end() - 1
        window *= 4
    return None
