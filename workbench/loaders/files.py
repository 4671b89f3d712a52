"""Opening input files: gzip detection by magic bytes, progress, and one-line errors."""

from __future__ import annotations

import gzip
import re
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from workbench.errors import InputError
from workbench.units import format_bytes

GZIP_MAGIC = b"\x1f\x8b"
EXPANSION = 64  # a gzip file read whole may expand to this many times its size (real ones: under 60x) ...
MIN_EXPANDED = 256 << 20  # ... or to this, whichever is more
HEAD_BYTES = 1 << 16  # what sniffing reads of a file's start (decompressed)
TEXT_BYTES = 64 << 20  # what is read of a log or message: all of it up to this, else its start and ...
TAIL_BYTES = 1 << 20  # ... its last bytes, where a crash's error is (also what sniffing reads past the head)
Progress = Callable[[float], None]  # told the fraction of an input read so far
_RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.IGNORECASE)
# Documents and code that may quote an error message but are never a run's log.
NOT_LOG_SUFFIXES = (".md", ".rst", ".html", ".ipynb", ".py", ".json", ".json.gz", ".yaml", ".yml", ".toml")


def may_be_log(path: Path) -> bool:
    return not path.name.lower().endswith(NOT_LOG_SUFFIXES)


def rank_in_name(name: str) -> int | None:
    """The rank a file name spells out (`rank3`, `rank-3`, `rank_3`), else None."""
    match = _RANK_IN_NAME.search(name)
    return int(match.group(1)) if match else None


class InputFile:
    """A binary stream over a file's (decompressed) content that knows how far it has read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw = open(path, "rb")
        self.compressed = self._raw.read(2) == GZIP_MAGIC
        self._raw.seek(0)
        self.stream: BinaryIO = gzip.GzipFile(fileobj=self._raw) if self.compressed else self._raw

    def read_all(self) -> bytes:
        """The whole content; `InputError` when a gzip file expands past its budget (a gzip bomb)."""
        if not self.compressed:
            return self.stream.read()
        limit = max(MIN_EXPANDED, EXPANSION * self.size)
        data = self.stream.read(limit + 1)
        if len(data) > limit:
            raise InputError(self.path, f"decompresses to more than {format_bytes(limit)}, the budget for "
                                        f"{format_bytes(self.size)} of gzip ({EXPANSION}x, at least "
                                        f"{format_bytes(MIN_EXPANDED)}): not an artifact this size could hold")
        return data

    def fraction_read(self) -> float:
        return self._raw.tell() / self.size if self.size else 1.0

    def close(self) -> None:
        if self.stream is not self._raw:
            self.stream.close()
        self._raw.close()


@contextmanager
def open_input(path: str | Path) -> Iterator[InputFile]:
    """Open `path` for reading, turning I/O and gzip failures into an `InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or directory")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    try:
        handle = InputFile(path)
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc.strerror or exc}") from None
    try:
        yield handle
    except EOFError:
        raise InputError(path, "truncated gzip file (the stream ends before its end marker)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(path, f"corrupt gzip data ({exc})") from None
    except OSError as exc:
        raise InputError(path, f"read error: {exc.strerror or exc}") from None
    finally:
        handle.close()


def read_tail(path: str | Path) -> bytes:
    """The last TAIL_BYTES of a file; b'' for gzip, whose end cannot be reached without reading it all."""
    with open_input(path) as handle:
        if handle.compressed:
            return b""
        handle.stream.seek(max(0, handle.size - TAIL_BYTES))
        return handle.stream.read(TAIL_BYTES)


def read_text(path: str | Path) -> str:
    """A log or message as text: whole up to TEXT_BYTES; of a longer file, its start and its last TAIL_BYTES (from
    a line's start) when it is not compressed, else its first TEXT_BYTES."""
    with open_input(path) as handle:
        if handle.compressed or handle.size <= TEXT_BYTES:
            data = handle.stream.read(TEXT_BYTES)
        else:
            data = handle.stream.read(TEXT_BYTES - TAIL_BYTES)
            handle.stream.seek(handle.size - TAIL_BYTES)
            tail = handle.stream.read(TAIL_BYTES)
            data += b"\n" + tail[tail.find(b"\n") + 1:]
    return data.decode("utf-8", errors="replace")
