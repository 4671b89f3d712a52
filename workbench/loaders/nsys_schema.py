"""Opening Nsight Systems SQLite exports read-only, and what their schema version holds.

Exports differ by version: pre-2022 ones have no metadata table, 2022.x ones write
`EXPORT_META_DATA`, 2025.x ones `META_DATA_EXPORT` (and add columns such as
`greenContextId`). Queries name only the columns a table has; a missing one reads as a
default. Every SQLite failure becomes a one-line `InputError`.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from workbench.errors import InputError

SQLITE_MAGIC = b"SQLite format 3\x00"
SUFFIXES = (".sqlite", ".sqlite3")
# Tables every nsys export with CUDA or NVTX data has: the string table and an activity table.
ACTIVITY_TABLES = ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_RUNTIME", "CUPTI_ACTIVITY_KIND_MEMCPY",
                   "CUPTI_ACTIVITY_KIND_MEMSET", "NVTX_EVENTS")
METADATA_TABLES = ("META_DATA_EXPORT", "EXPORT_META_DATA")  # 2023+ and 2022.x names
LOCK_TIMEOUT_S = 2.0


def looks_like_export(path: Path, head: bytes) -> bool:
    """A file named .sqlite/.sqlite3, or an SQLite database whose first pages name nsys's first tables."""
    if path.name.lower().endswith(SUFFIXES):
        return True
    return head.startswith(SQLITE_MAGIC) and b"StringIds" in head and b"ProcessStreams" in head


def check_header(path: Path) -> None:
    """`InputError` unless the file starts like an SQLite database and is as long as its header says."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(100)
    if not header.startswith(SQLITE_MAGIC):
        raise InputError(path, "not an SQLite database (no 'SQLite format 3' header): "
                               "export the report with `nsys export -t sqlite`")
    if len(header) < 100:
        raise InputError(path, f"truncated SQLite database ({size} bytes, less than its 100-byte header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if pages and page_size * pages > size:
        raise InputError(path, f"truncated SQLite database: its header says {page_size * pages:,} bytes, "
                               f"the file has {size:,}")


def _is_wal(path: Path) -> bool:
    """Whether the header says WAL mode (bytes 18-19, the read and write versions, are 2)."""
    with path.open("rb") as handle:
        header = handle.read(20)
    return header[18:20] == b"\x02\x02"


@contextmanager
def open_export(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the export; never writes to it. SQLite errors become `InputError`."""
    path = Path(path)
    check_header(path)
    uri = path.resolve().as_uri()
    try:
        try:
            if _is_wal(path):  # mode=ro alone would create -shm and -wal files beside a WAL export
                raise sqlite3.OperationalError("WAL mode")
            connection = _connect(f"{uri}?mode=ro")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise InputError(path, "the SQLite database is locked by another process (is nsys still "
                                       "writing it?): wait for it to finish, or analyze a copy") from None
            # A read-only folder, or a WAL database without its -shm file: read it as immutable.
            connection = _connect(f"{uri}?mode=ro&immutable=1")
    except sqlite3.DatabaseError as exc:
        raise InputError(path, f"not a readable SQLite database ({exc})") from None
    try:
        yield connection
    except sqlite3.DatabaseError as exc:
        raise InputError(path, f"corrupt SQLite database ({exc})") from None
    finally:
        connection.close()


def _connect(uri: str) -> sqlite3.Connection:
    """Connect and read the schema once, so that a bad or locked file fails here."""
    connection = sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S)
    try:
        connection.text_factory = lambda data: data.decode("utf-8", "replace")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection


class Schema:
    """The tables and columns of one export, and queries that adapt to them."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        self.tables = {n: [r[1] for r in connection.execute(f'PRAGMA table_info("{n}")')] for n in names}
        if "StringIds" not in self.tables or not any(t in self.tables for t in ACTIVITY_TABLES):
            raise InputError(path, "an SQLite database, but not an Nsight Systems export "
                                   "(no StringIds or CUDA/NVTX activity tables)")

    def has(self, table: str, column: str | None = None) -> bool:
        return table in self.tables and (column is None or column in self.tables[table])

    def column(self, table: str, column: str, default: int | str = -1) -> str:
        """SQL for `column` with NULL read as `default`, or `default` when the table lacks it."""
        if not self.has(table, column):
            return str(default)
        return f'COALESCE("{column}", {default})'

    def rows(self, sql: str) -> list[tuple]:
        return self.connection.execute(sql).fetchall()

    def int_columns(self, table: str, columns: dict[str, int], where: str = "") -> dict[str, np.ndarray]:
        """Integer columns of `table` as int64 arrays ({} when the table is absent)."""
        if table not in self.tables:
            return {}
        select = ", ".join(self.column(table, c, default) for c, default in columns.items())
        rows = self.rows(f'SELECT {select} FROM "{table}" {where}')
        data = np.array(rows, dtype=np.int64).reshape(len(rows), len(columns))
        return {c: data[:, i] for i, c in enumerate(columns)}

    def strings(self) -> dict[int, str]:
        return dict(self.rows("SELECT id, value FROM StringIds"))

    def export_metadata(self) -> dict[str, str]:
        """The export's name/value metadata ({} before 2022)."""
        table = next((t for t in METADATA_TABLES if self.has(t, "value")), None)
        return dict(self.rows(f'SELECT name, value FROM "{table}"')) if table else {}

    @property
    def metadata_table(self) -> str | None:
        return next((t for t in METADATA_TABLES if t in self.tables), None)
