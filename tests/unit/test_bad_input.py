"""Bad input: exit 2 and one line on stderr naming the file and the problem; never a traceback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.conftest import OPTIMIZED
from workbench.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, path: Path, words: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    assert words in lines[0]
    assert "Traceback" not in err


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def real_json() -> bytes:
    return gzip.decompress(OPTIMIZED.read_bytes())


def test_truncated_gzip(tmp_path, capsys):
    data = OPTIMIZED.read_bytes()
    path = write(tmp_path, "cut.json.gz", data[: len(data) // 2])
    assert_one_line_error(*run_cli(capsys, str(path)), path, "truncated gzip")


def test_corrupt_gzip(tmp_path, capsys):
    data = bytearray(OPTIMIZED.read_bytes())
    data[1000:1100] = bytes(100)
    path = write(tmp_path, "corrupt.json.gz", bytes(data))
    assert_one_line_error(*run_cli(capsys, str(path)), path, "gzip")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.999])
def test_half_written_json(tmp_path, capsys, fraction):
    data = real_json()
    path = write(tmp_path, "half.json", data[: int(len(data) * fraction)])
    assert_one_line_error(*run_cli(capsys, str(path)), path, "truncated JSON")


def test_half_written_json_inside_gzip(tmp_path, capsys):
    data = real_json()
    path = write(tmp_path, "half.json.gz", gzip.compress(data[: len(data) // 3]))
    assert_one_line_error(*run_cli(capsys, str(path)), path, "truncated JSON")


def test_empty_file(tmp_path, capsys):
    path = write(tmp_path, "empty.json", b"")
    assert_one_line_error(*run_cli(capsys, str(path)), path, "empty file")


def test_not_json(tmp_path, capsys):
    path = write(tmp_path, "notes.json", b'{"traceEvents": this is not json')
    assert_one_line_error(*run_cli(capsys, str(path)), path, "not valid JSON")


def test_unrecognized_file(tmp_path, capsys):
    path = write(tmp_path, "notes.txt", b"hello")
    assert_one_line_error(*run_cli(capsys, str(path)), path, "unrecognized file")


def test_missing_path(tmp_path, capsys):
    path = tmp_path / "nope.json"
    assert_one_line_error(*run_cli(capsys, str(path)), path, "no such file")


def test_trace_events_missing(tmp_path, capsys):
    path = write(tmp_path, "x.json", json.dumps({"schemaVersion": 1, "traceEvents_": []}).encode())
    code, out, err = run_cli(capsys, str(path))
    assert_one_line_error(code, out, err, path, "")  # not a trace: either unrecognized or no traceEvents


def test_trace_events_not_a_list(tmp_path, capsys):
    path = write(tmp_path, "x.json", json.dumps({"schemaVersion": 1, "traceEvents": {"a": 1}}).encode())
    assert_one_line_error(*run_cli(capsys, str(path)), path, "not a list")


def test_json_that_is_not_an_object(tmp_path, capsys):
    path = write(tmp_path, "x.json", b'"traceEvents"')
    assert_one_line_error(*run_cli(capsys, str(path)), path, "not an object")


def test_events_with_missing_or_odd_fields_are_skipped_and_counted(tmp_path, capsys):
    document = json.loads(real_json())
    kept = len(document["traceEvents"])
    document["traceEvents"] += [
        {"ph": "X", "cat": "kernel", "name": "no_ts", "dur": 5},
        {"ph": "X", "cat": "kernel", "name": "bad_dur", "ts": 1, "dur": "long"},
        {"ph": "X", "cat": "kernel", "name": "bad_args", "ts": 1, "dur": 1, "args": {"correlation": [1]}},
        {"ph": "X", "cat": "kernel", "name": "negative_dur", "ts": 1, "dur": -5},
    ]
    path = write(tmp_path, "odd.json", json.dumps(document).encode())
    code, out, err = run_cli(capsys, str(path), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    metrics = report["inputs"][0]["metrics"]
    assert metrics["events_skipped"] == 4
    assert metrics["event_count"] == kept
    assert any("4 malformed event(s) skipped" in w for w in report["inputs"][0]["warnings"])
