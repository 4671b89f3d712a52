"""Corrupt, foreign, truncated and locked SQLite files: exit 2 with one line naming the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import SAMPLES
from tests.unit.test_bad_input import assert_one_line_error, run_cli, write
from workbench.loaders import nsys_schema

EXPORT = SAMPLES / "public" / "nsys" / "con_kernel.sqlite"


def test_sqlite_database_that_is_not_an_export(tmp_path, capsys):
    path = tmp_path / "app.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    assert_one_line_error(*run_cli(capsys, str(path)), path, "not an Nsight Systems export")


def test_file_named_sqlite_that_is_not_sqlite(tmp_path, capsys):
    path = write(tmp_path, "report.sqlite", b"this is the nsys-rep, not its sqlite export\n" * 10)
    assert_one_line_error(*run_cli(capsys, str(path)), path, "not an SQLite database")


def test_truncated_export(tmp_path, capsys):
    data = EXPORT.read_bytes()
    path = write(tmp_path, "cut.sqlite", data[: len(data) // 2])
    assert_one_line_error(*run_cli(capsys, str(path)), path, f"the file has {len(data) // 2:,}")


def test_corrupt_pages(tmp_path, capsys):
    data = bytearray(EXPORT.read_bytes())
    data[4096:len(data)] = b"\xff" * (len(data) - 4096)  # every page after the first overwritten
    path = write(tmp_path, "corrupt.sqlite", bytes(data))
    assert_one_line_error(*run_cli(capsys, str(path)), path, "SQLite database")


def test_locked_export(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(nsys_schema, "LOCK_TIMEOUT_S", 0.05)
    path = write(tmp_path, "busy.sqlite", EXPORT.read_bytes())
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        assert_one_line_error(*run_cli(capsys, str(path)), path, "locked by another process")
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_export_in_a_folder_is_found_by_its_content(tmp_path):
    """Without the .sqlite suffix, an SQLite file is an export when its first pages name nsys tables."""
    path = write(tmp_path, "profile.db", EXPORT.read_bytes())
    head = path.read_bytes()[:65536]
    assert nsys_schema.looks_like_export(Path(path), head)
    assert not nsys_schema.looks_like_export(Path(tmp_path / "other.db"), b"SQLite format 3\x00" + bytes(100))


def test_a_wal_mode_export_is_read_without_creating_files_beside_it(tmp_path):
    """Synthetic WAL-mode database: opening it read-only must not leave -shm/-wal files (immutable URI)."""
    path = tmp_path / "export.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    with nsys_schema.open_export(path) as export:
        assert export.execute("SELECT count(*) FROM sqlite_master").fetchone() == (1,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.sqlite"]
