"""Hostile and broken inputs (issue 19's audit): each is run through `workbench analyze` in a child process whose
exit code, stderr and cost are checked. The ceilings are generous (60 s, 1.5 GB) against cases that used to take
minutes or gigabytes, so machine load cannot flip them; the child also runs under a 4 GB address-space limit so a
regression fails the test instead of the machine. Every input here is synthetic, generated in the test from a
shipped sample or from nothing, and named for the defect it provokes."""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 60.0
PEAK_BYTES = 1_500_000_000
ADDRESS_SPACE = 4 << 30
TRACE = SAMPLES / "public" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"
XCTRACE = SAMPLES / "synthetic" / "xctrace_mps" / "metal-gpu-intervals.synthetic.xml"


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: list[str]
    seconds: float
    peak_bytes: int


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def analyze(*args: str | Path, cwd: Path | None = None) -> Outcome:
    """`workbench analyze ARGS --format json` in a child; its peak RSS from the kernel's accounting of that child."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_DEBUG": ""}
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "workbench", "analyze", *map(str, args), "--format", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                             preexec_fn=_limit, text=True)
    try:
        stdout, stderr = child.communicate(timeout=SECONDS * 3)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail(f"workbench analyze {args} ran past {SECONDS * 3:.0f} s")
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest child so far: an upper bound
    return Outcome(child.returncode, stdout, [line for line in stderr.splitlines() if line], seconds, peak)


def assert_bounded(outcome: Outcome, code: int, message: str | None = None) -> None:
    assert "Traceback" not in "\n".join(outcome.stderr), outcome.stderr
    assert outcome.code == code, outcome.stderr
    if code == 2:
        assert len(outcome.stderr) == 1, outcome.stderr
        if message is not None:
            assert message in outcome.stderr[0], outcome.stderr
    assert outcome.seconds < SECONDS
    assert outcome.peak_bytes < PEAK_BYTES


def xctrace_with(old: str, new: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        text = XCTRACE.read_text()
        assert old in text
        path = folder / "metal-gpu-intervals.xml"
        path.write_text(text.replace(old, new, 1))
        return path
    return make


def text_file(name: str, data: bytes, compress: bool = False) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(gzip.compress(data, 1) if compress else data)
        return path
    return make


OOM_LINE = b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total capacity of "

# (id, how to make the input in a folder, exit code, a piece of the one-line error)
CASES = [
    # super-linear regexes on small text
    ("log-bracket-without-close", text_file("rank0.log", b"[E1234 x" * 500000), 2, "unrecognized file"),
    ("nccl-warn-then-spaces", text_file("rank0.log", b"NCCL WARN x\n" + b" " * 1_000_000), 0, None),
    ("dotted-name-without-error", text_file("rank0.log", b"NCCL WARN y\n" + b"a." * 20000), 0, None),
    ("watchdog-without-close", text_file("rank0.log", b"NCCL WARN z\n" + b"Watchdog caught collective operation "
                                         b"timeout: WorkNCCL(" * 20000), 0, None),
    ("oom-then-digits", text_file("oom.log", OOM_LINE + b"1" * 30000 + b"\n"), 0, None),
    ("oom-5000-digit-size", text_file("oom.log", OOM_LINE + b"9" * 5000 + b" GiB\n"), 0, None),
    ("log-numbers-of-5000-digits", text_file("rank0.log", b"NCCL WARN x\nwatchdog got stuck for %s seconds\n"
                                             b"WorkNCCL(SeqNum=%s)\n" % (b"9" * 5000, b"9" * 5000)), 0, None),
    ("xctrace-label-of-spaces", xctrace_with("Compute Command 0     ( python3.11 )", " " * 200_000), 0, None),
    # integers an export cannot hold
    ("xctrace-double-minus", xctrace_with(">1000000</start-time>", ">--5</start-time>"), 2,
     "malformed xctrace export: start is '--5', not an integer"),
    ("xctrace-superscript-digit", xctrace_with(">200000</duration>", ">\u00b2</duration>"), 2,
     "duration is '\u00b2', not an integer"),
    ("xctrace-id-over-int64", xctrace_with(">200000</duration>", ">" + "9" * 30 + "</duration>"), 2,
     "not an integer of at most 18 digits"),
]


@pytest.mark.parametrize("make, code, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_file_is_bounded_and_answered_in_one_line(tmp_path, make, code, message):
    assert_bounded(analyze(make(tmp_path)), code, message)


def test_special_files_are_named_for_what_they_are(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for path, message in ((tmp_path / "fifo", "is a named pipe (FIFO)"), (Path("/dev/null"), "is a character device"),
                          (tmp_path / "loop", "symbolic link loop")):
        assert_bounded(analyze(path), 2, message)


def test_control_characters_in_a_file_name_are_escaped(tmp_path):
    path = tmp_path / "a\nb\x1b[31m.json"
    path.write_text("{")
    outcome = analyze(path)
    assert_bounded(outcome, 2, "\\nb\\x1b[31m.json")


def trace_document() -> dict:
    return json.loads(gzip.decompress(TRACE.read_bytes()))


def trace_bytes(mutate: Callable[[dict], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "mutated.pt.trace.json"
        path.write_bytes(mutate(trace_document()))
        return path
    return make


def with_event(**fields) -> Callable[[dict], bytes]:
    def mutate(document: dict) -> bytes:
        kernel = next(e for e in document["traceEvents"] if e.get("cat") == "kernel")
        document["traceEvents"].append({**kernel, **fields, "args": {**kernel["args"], **fields.pop("args", {})}})
        return json.dumps(document).encode()
    return mutate


def zero_filled(folder: Path) -> Path:
    """The issue's 2 GiB zero-filled trace (sparse: no disk is spent)."""
    path = folder / "zeros.pt.trace.json"
    with path.open("wb") as handle:
        handle.write(b'{"traceEvents":[')
        handle.truncate(2 << 30)
    return path


def gz_of_spaces(folder: Path) -> Path:
    path = folder / "spaces.pt.trace.json.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(b'{"traceEvents":[')
        for _ in range(64):
            handle.write(b" " * (4 << 20))
    return path


SKIPPED = "1 malformed event(s) skipped, e.g. "
TRACE_CASES = [
    ("zero-filled-2GiB", zero_filled, 2, "byte b'\\x00' at offset 16 cannot be in JSON"),
    ("gz-of-256MiB-spaces", gz_of_spaces, 2, "truncated JSON"),
    ("dur-1e308", trace_bytes(with_event(dur=1e308)), 0, SKIPPED + "'dur' is 1e+308"),
    ("dur-quoted-infinity", trace_bytes(lambda d: with_event(dur=12345.5)(d).replace(b"12345.5", b'"Infinity"')), 0,
     SKIPPED + "'dur' is inf"),
    ("ts-quoted-nan", trace_bytes(lambda d: with_event(ts=12345.5)(d).replace(b"12345.5", b'"NaN"')), 0, SKIPPED + "'ts' is nan"),
    ("dur-of-5000-digits", trace_bytes(lambda d: with_event(dur=12345.5)(d).replace(b"12345.5", b"9" * 5000)), 0,
     SKIPPED + "Number out of range - at `$.dur`"),
    ("id-of-5000-digits", trace_bytes(lambda d: with_event(args={"correlation": 12345})(d).replace(
        b'"correlation": 12345', b'"correlation": ' + b"9" * 5000)), 0,
     SKIPPED + "Integer value out of range - at `$.args.correlation`"),
    ("step-number-of-5000-digits", trace_bytes(with_event(name="ProfilerStep#" + "9" * 5000, cat="user_annotation")),
     0, None),
    ("ids-over-int64", trace_bytes(with_event(args={"correlation": 2**63, "stream": 2**64 - 1}, pid=2**63)), 0, None),
    ("nested-1000-deep", trace_bytes(lambda d: json.dumps(d).encode()[:-1] + b', "x": ' + b"[" * 100_000
                                     + b"]" * 100_000 + b"}"), 2, "nested deeper than"),
    ("event-nested-deep", trace_bytes(lambda d: json.dumps(d).encode().replace(
        b'"traceEvents": [', b'"traceEvents": [{"args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}, ", 1)), 2,
     "nested deeper than"),
    ("5000-digit-number", trace_bytes(lambda d: json.dumps(d).encode()[:-1] + b', "n": ' + b"9" * 5000 + b"}"), 2,
     "number out of range in field 'n' (5000 digits)"),
    ("5000-digit-number-nested", trace_bytes(lambda d: json.dumps(d).encode()[:-1] + b', "o": {"a": [1, {"b": '
                                             + b"9" * 5000 + b"}]}}"), 2,
     "number out of range in field 'b' (5000 digits)"),
    ("number-beyond-a-float", trace_bytes(lambda d: json.dumps(d).encode()[:-1] + b', "n": [1e999]}'), 2,
     "number out of range in field 'n' (1e999)"),
]


@pytest.mark.parametrize("make, code, message", [c[1:] for c in TRACE_CASES], ids=[c[0] for c in TRACE_CASES])
def test_hostile_trace_is_bounded_and_answered_in_one_line(tmp_path, make, code, message):
    outcome = analyze(make(tmp_path))
    assert_bounded(outcome, code, message if code == 2 else None)
    if code == 0:  # the added event is read, or (`message`) skipped as malformed and counted in a warning
        found, original = metrics_of(outcome), metrics_of(analyze(TRACE))
        skipped = found["metrics"]["events_skipped"]
        assert found["metrics"]["event_count"] + skipped == original["metrics"]["event_count"] + 1
        assert skipped == (1 if message else 0)
        malformed = [w for w in found["warnings"] if "malformed" in w]
        assert malformed == ([f"{found['path']}: {message}"] if message else [])


def metrics_of(outcome: Outcome) -> dict:
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)["inputs"][0]


def test_a_nested_traceevents_larger_than_a_chunk_is_not_the_trace(tmp_path):
    """The issue's silently wrong report: 4+ MiB of events under otherData ahead of the real array."""
    document = trace_document()
    fake = [{"ph": "X", "cat": "kernel", "name": "fake", "pid": 0, "tid": 1, "ts": i, "dur": 1} for i in range(60000)]
    path = tmp_path / "nested.pt.trace.json"
    path.write_bytes(json.dumps({"otherData": {"traceEvents": fake}, **document}).encode())
    assert path.stat().st_size - len(json.dumps(document)) > 4 << 20
    assert metrics_of(analyze(path))["metrics"]["event_count"] == metrics_of(analyze(TRACE))["metrics"]["event_count"]


def test_a_second_top_level_traceevents_is_one_warning(tmp_path):
    path = tmp_path / "dup.pt.trace.json"
    path.write_bytes(json.dumps(trace_document()).encode()[:-1] + b', "traceEvents": [{"ph": "X", "name": "x"}]}')
    found = metrics_of(analyze(path))
    assert found["metrics"]["event_count"] == metrics_of(analyze(TRACE))["metrics"]["event_count"]
    assert [w for w in found["warnings"] if "traceEvents" in w] == [
        f"{path}: 1 more top-level 'traceEvents' array(s) after the first, not read"]


def test_bom_and_chrome_array_forms_read_as_the_object_form(tmp_path):
    document = trace_document()
    expected = metrics_of(analyze(TRACE))["metrics"]["event_count"] - 0
    bom, array, open_array = tmp_path / "bom.json", tmp_path / "array.json", tmp_path / "open.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(document).encode())
    array.write_text(json.dumps(document["traceEvents"]))
    open_array.write_text(json.dumps(document["traceEvents"])[:-1] + ",\n")  # Chrome allows the ']' to be missing
    assert metrics_of(analyze(bom))["metrics"]["event_count"] == expected
    assert metrics_of(analyze(array))["metrics"]["event_count"] == expected
    assert metrics_of(analyze(open_array))["metrics"]["event_count"] == expected


SNAPSHOT = SAMPLES / "h100" / "oom_capacity" / "oom_capacity.snapshot.pickle.gz"


def pickle_bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    """A hand-made pickle whose head names a snapshot's keys (pushed, then popped), then `data`'s opcodes."""
    keys = b"X\x08\x00\x00\x00segments0X\x0a\x00\x00\x00total_size0"
    return text_file(name, b"\x80\x02" + keys + data)


def snapshot_with(mutate: Callable[[dict], None]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import pickle

        from workbench.loaders.safe_pickle import load_file
        data = load_file(SNAPSHOT)
        mutate(data)
        path = folder / "mutated.snapshot.pickle"
        path.write_bytes(pickle.dumps(data, protocol=4))
        return path
    return make


def _shared_frames(data: dict) -> None:
    """68 KB-style: every history entry shares one 200k-frame list (pickled once, by reference)."""
    frames = [{"filename": "x.py", "line": i, "name": "f"} for i in range(200_000)]
    for trace in data["device_traces"]:
        for entry in trace:
            entry["frames"] = frames


def protocol_0(name: str, data: bytes) -> Callable[[Path], Path]:
    """A hand-made protocol-0 pickle (no PROTO opcode): a dict naming a snapshot's keys, then `data`'s opcodes."""
    return text_file(name, b"(dp0\nVsegments\np1\n(lp2\nsVtotal_size\np3\nI0\ns" + data)


PICKLE_CASES = [
    ("protocol-0-global-os-system", protocol_0("os.snapshot.pickle", b"Vx\ncos\nsystem\n(Vtouch /tmp/pwned\ntRs."),
     2, "unsafe pickle: refused to load os.system"),
    ("protocol-0-memo-index-1e11", protocol_0("memo.snapshot.pickle", b"p99999999999\n."), 2, "too large or malformed"),
    ("protocol-0-memo-index-2**70", protocol_0("memo.snapshot.pickle", b"p%d\ng%d\n." % (2**70, 2**70)), 2,
     "not a readable pickle (OverflowError"),
    ("protocol-0-get-unknown-index", protocol_0("get.snapshot.pickle", b"g99999999999\n."), 2,
     "not a readable pickle (UnpicklingError: Memo value not found"),
    ("protocol-0-long-of-a-million-digits", protocol_0("long.snapshot.pickle", b"Vx\nL" + b"9" * 1_000_000 + b"L\ns."),
     2, "not a readable pickle (ValueError: Exceeds the limit (4300 digits)"),
    ("protocol-1-memo-index-2**28", text_file("memo.snapshot.pickle", b"}q\x00(X\x08\x00\x00\x00segmentsq\x01]X\n\x00\x00"
                                            b"\x00total_sizeq\x02K\x00ur" + (2**28).to_bytes(4, "little") + b"."), 2,
     "too large or malformed"),
    ("memo-index-2**28", pickle_bytes("memo.snapshot.pickle", b"]r" + (2**28).to_bytes(4, "little") + b"."), 2,
     "too large or malformed"),
    ("bytearray-3e9", pickle_bytes("big.snapshot.pickle", b"cbuiltins\nbytearray\n\x8a\x05"
                                   + (3_000_000_000).to_bytes(5, "little") + b"\x85R."), 2,
     "too large or malformed"),
    ("negative-total-size", snapshot_with(lambda d: d["segments"][0].update(total_size=-(1 << 30))), 2,
     "total_size -1073741824 is negative"),
    ("shared-200k-frame-list", snapshot_with(_shared_frames), 0, None),
]


@pytest.mark.parametrize("make, code, message", [c[1:] for c in PICKLE_CASES], ids=[c[0] for c in PICKLE_CASES])
def test_hostile_pickle_is_bounded_and_answered_in_one_line(tmp_path, make, code, message):
    assert_bounded(analyze(make(tmp_path)), code, message)


def test_a_negative_row_count_is_refused():
    outcome = analyze(TRACE, "--top", "-5")
    assert outcome.code == 2 and "argument --top: -5 rows: give at least 1" in outcome.stderr[-1]


def test_a_gzip_bomb_is_refused_at_its_budget(tmp_path):
    """~300 KB of gzip expanding to 300 MiB of a memory timeline (the issue's 2 MB gz took 4-5.7 GB)."""
    path = tmp_path / "bomb.timeline.json.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(b"[[1, 2], [")
        for _ in range(75):
            handle.write(b" " * (4 << 20))
    assert_bounded(analyze(path), 2, "decompresses to more than 256.00 MiB, the budget for")
