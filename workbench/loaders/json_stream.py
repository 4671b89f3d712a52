"""Read a large JSON document whose bulk is one array of objects, a batch at a time.

A Chrome/Kineto trace is one object holding a `traceEvents` array of hundreds of thousands
of small objects (or, in Chrome's array form, that array alone). Parsing it whole costs several
times its size in memory. Instead we read the decompressed bytes in chunks, cut each chunk after
the last `}` of an array element (`}` `,` `{` outside any string), and hand the complete
elements to a decoder. A cut that falls inside a string or a nested value cannot decode (the
string or bracket is left open), so a failed decode only means "wait for more bytes", never a
silently wrong batch. What is left at the end (the head before the array, the last elements, the
keys after the array) is one small, complete document: `remainder`.

Only the top-level `traceEvents` is streamed: the head is scanned token by token (strings,
brackets) so that a `traceEvents` nested in another value is not taken for it; a second top-level
one is cut out of the remainder and reported in `duplicates`. Cost is bounded: each byte is
searched for a boundary once and decoded a bounded number of times (a cut inside an element waits
for a quarter more bytes before it is decoded again), a byte no JSON may hold (a control character)
or an array element that does not start with `{` is rejected where it appears (`MalformedStream`),
and the head and an undecided stretch of bytes are held up to `MAX_PENDING` only.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Callable, Iterator, TypeVar

import msgspec

T = TypeVar("T")

# Bytes decompressed and decoded at a time: 1 MiB keeps a chunk, its copies and its decoded events nearer the CPU's
# caches than 4 MiB did (a 26 MB A100 rank 0.30-0.34 -> 0.27-0.28 CPU-s, train_long 1.61 -> 1.42 at best).
CHUNK_SIZE = 1 << 20
MAX_PENDING = 256 << 20  # the head before the array, or bytes without an element boundary
_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_TOKEN = re.compile(rb'\\.?|["{}\[\]]', re.DOTALL)  # what moves the scanner: escapes, quotes, brackets
_KEY = b'"traceEvents"'
_OVERLAP = 4096  # bytes of the previous chunk searched again for a boundary that straddles the cut
_STRING_OR_NUMBER = re.compile(rb'"(?:[^"\\]|\\.)*+"|(-?\d++(?:\.\d++)?(?:[eE][-+]?\d++)?)')
_MAX_INT_DIGITS = 4300  # Python's limit on int(str), which msgspec's decoder applies


class MalformedStream(ValueError):
    """Bytes that cannot continue a trace document, with where they are."""


class InvalidJson(MalformedStream):
    """JSON no reader accepts: msgspec's reason, or the field holding a number out of range."""


def invalid_json(error: msgspec.DecodeError, data: bytes, field: str = "") -> InvalidJson:
    """`error` (not a truncation) as one line; a number out of range (over 4,300 digits, or beyond a float) is named
    with its field (the key before it, else `field`: the key `data` is the value of), which msgspec does not say."""
    reason = str(error)
    if "out of range" in reason:
        for token in _STRING_OR_NUMBER.finditer(data):
            number = token.group(1)
            if number is not None and _out_of_range(number):
                shown = f"{len(number.lstrip(b'-'))} digits" if number.lstrip(b"-").isdigit() else number[:40].decode()
                where = _field_before(data, token.start()) or (f"in field {field!r} " if field else "")
                return InvalidJson(f"number out of range {where}({shown})")
    return InvalidJson(f"not valid JSON ({reason})")


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
        self._offset = 0  # bytes read so far
        self.remainder = b""
        self.duplicates = 0  # further top-level `traceEvents` arrays, cut out of the remainder

    def batches(self, decode: Callable[[bytes], T]) -> Iterator[T]:
        head, carry, bare = self._find_array()
        if head is None:
            self.remainder = carry
            return
        first = _first_element(carry)
        searched = 0
        boundary: tuple[int, int] | None = None  # the last one found in the bytes carried (they only grow)
        retry_at = 0  # after a cut inside an element, the length at which to decode again (`_retry_at`)
        while chunk := self._read():
            buf = carry + chunk
            first = first or _first_element(buf)
            if not first:  # only white space so far: nothing to keep
                carry = b""
                continue
            boundary = _last_boundary(buf, max(0, searched - _OVERLAP)) or boundary
            searched = len(buf)
            if boundary is None or len(buf) < retry_at:
                _check_pending(buf)
                carry = buf
                continue
            close, open_ = boundary
            try:
                batch = decode(b"[" + buf[: close + 1] + b"]")
            except msgspec.DecodeError as exc:
                if "truncated" not in str(exc):  # a cut inside a string or nested value only truncates
                    raise invalid_json(exc, buf[: close + 1]) from None
                _check_pending(buf)
                carry, boundary, retry_at = buf, None, _retry_at(len(buf), self._chunk_size)  # more bytes will settle it
                continue
            carry, boundary, retry_at = buf[open_:], None, 0
            searched = len(carry)
            yield batch
        self.remainder = head + (carry if bare else self._without_duplicates(carry))

    def _read(self) -> bytes:
        chunk = self._stream.read(self._chunk_size)
        if self._on_progress is not None:
            self._on_progress()
        bad = chunk.find(b"\0")  # zero-filled space (a preallocated or truncated file): memchr-fast
        if bad >= 0:
            raise MalformedStream(f"byte b'\\x00' at offset {self._offset + bad} cannot be in JSON")
        self._offset += len(chunk)
        return chunk

    def _find_array(self) -> tuple[bytes | None, bytes, bool]:
        """Read until the top-level event array opens: (head through '[', bytes after it, whether it is the whole
        document); head None when there is none (the rest is read for the caller's decode to judge)."""
        buf = b""
        while not buf and (chunk := self._read()):  # leading white space (and a byte-order mark) is dropped
            buf = chunk.lstrip(_WHITESPACE)
            if buf.startswith(_BOM):
                buf = buf[len(_BOM):].lstrip(_WHITESPACE)
        if buf[:1] == b"[":
            return b"[", buf[1:], True
        if buf[:1] != b"{":
            return None, buf + self._rest(len(buf)), False
        scanner = _Scanner()
        while True:
            found = scanner.scan(buf)
            if found is not None:
                return buf[: found + 1], buf[found + 1:], False
            if scanner.depth == 0:
                return None, buf + self._rest(len(buf)), False
            _check_pending(buf)
            chunk = self._read()
            if not chunk:
                return None, buf, False
            buf += chunk

    def _rest(self, held: int) -> bytes:
        """The rest of a document that has no event array (bounded: it is decoded whole)."""
        parts = []
        while chunk := self._read():
            held += len(chunk)
            if held > MAX_PENDING:
                raise MalformedStream(f"no top-level 'traceEvents' array in the first {MAX_PENDING >> 20} MiB")
            parts.append(chunk)
        return b"".join(parts)

    def _without_duplicates(self, tail: bytes) -> bytes:
        """`tail` (the last elements, the array's end and the keys after it) without further top-level
        `traceEvents` arrays: JSON readers keep the last of duplicate keys, a trace's reader the first."""
        if _KEY not in tail:
            return tail
        scanner = _Scanner(depth=2)
        while (found := scanner.scan(tail)) is not None:
            key = tail.rfind(_KEY, 0, found)
            comma = tail.rfind(b",", 0, key)
            end = _Scanner(depth=2).closing(tail, found + 1)
            if end is None:
                return tail  # unterminated: the remainder's decode says so
            tail = tail[:comma] + tail[end + 1:]
            self.duplicates += 1
            scanner = _Scanner(depth=2)
        return tail


class _Scanner:
    """Strings and bracket depth over a growing buffer, each byte scanned once; finds the top-level event array."""

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        self.in_string = False
        self.position = 0

    def scan(self, buf: bytes) -> int | None:
        """The index of the '[' that opens a top-level `traceEvents` array, or None (scanned to the end)."""
        for token in _TOKEN.finditer(buf, self.position):
            byte, at = token.group(), token.start()
            if byte[:1] == b"\\":
                if len(byte) == 1:  # an escape cut by the chunk's end: wait for its second byte
                    self.position = at
                    return None
            elif byte == b'"':
                self.in_string = not self.in_string
            elif self.in_string:
                pass
            elif byte in b"{[":
                self.depth += 1
                if byte == b"[" and self.depth == 2 and _names_the_events(buf, at):
                    self.position = at + 1
                    return at
            else:
                self.depth -= 1
                if self.depth == 0:
                    self.position = token.end()
                    return None
        self.position = len(buf)
        return None

    def closing(self, buf: bytes, start: int) -> int | None:
        """The index of the bracket that closes the array opened just before `start`, or None."""
        self.position = start
        for token in _TOKEN.finditer(buf, start):
            byte = token.group()
            if byte == b'"':
                self.in_string = not self.in_string
            elif not self.in_string and byte in b"{[":
                self.depth += 1
            elif not self.in_string and byte in b"}]":
                self.depth -= 1
                if self.depth == 1:
                    return token.start()
        return None


def _names_the_events(buf: bytes, at: int) -> bool:
    """Whether the '[' at `at` is the value of a `"traceEvents"` key (not of a key ending in it)."""
    before = buf[max(0, at - _OVERLAP):at].rstrip(_WHITESPACE)
    if not before.endswith(b":"):
        return False
    key = before[:-1].rstrip(_WHITESPACE)
    return key.endswith(_KEY) and key[-len(_KEY) - 1:-len(_KEY)] != b"\\"


def _first_element(buf: bytes) -> bytes:
    """The first byte of the array's first element ('{', or ']' when empty); `MalformedStream` for any other."""
    first = buf.lstrip(_WHITESPACE)[:1]
    if first not in (b"", b"{", b"]"):
        raise MalformedStream(f"byte {first!r} cannot start an event (an array element is an object)")
    return first


def _retry_at(failed: int, chunk_size: int) -> int:
    """After `failed` bytes did not decode (a cut inside an element), the length to wait for before decoding again:
    a quarter more (at least a chunk, at most MAX_PENDING), so that an element of n bytes is decoded in O(n) in
    all, not once a chunk: a 64 MB element of 8 million objects loads in 3.5 CPU-s, 11 when retried each chunk."""
    return min(failed + max(failed >> 2, chunk_size), MAX_PENDING)


def _check_pending(buf: bytes) -> None:
    if len(buf) > MAX_PENDING:
        raise MalformedStream(f"{MAX_PENDING >> 20} MiB without an event boundary: not a trace's event array")


def _last_boundary(buf: bytes, lo: int) -> tuple[int, int] | None:
    """Indexes of the '}' and the '{' of the last `}`,`{` boundary in `buf[lo:]`, or None."""
    hi = len(buf)
    window = 1 << 16
    while hi > lo:
        start = max(lo, hi - window)
        last = None
        for last in _BOUNDARY.finditer(buf, start):
            pass
        if last is not None:
            return last.start(), last.end() - 1
        hi, window = start, window * 4
    return None


def _out_of_range(number: bytes) -> bool:
    if number.lstrip(b"-").isdigit():
        return len(number.lstrip(b"-")) > _MAX_INT_DIGITS
    return abs(float(number)) == float("inf")


def _field_before(data: bytes, at: int) -> str:
    """"in field 'NAME' " when the value at `at` follows a key, else ""."""
    before = data[max(0, at - 4096):at].rstrip(_WHITESPACE)
    if not before.endswith(b":"):
        return ""
    key = before[:-1].rstrip(_WHITESPACE)
    start = key.rfind(b'"', 0, len(key) - 1)
    if not key.endswith(b'"') or start < 0:
        return ""
    return f"in field {key[start + 1:-1].decode('utf-8', 'replace')[:80]!r} "
