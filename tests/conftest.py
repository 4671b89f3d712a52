"""Shared fixtures: where the real traces are, and skipping cleanly when they are absent."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_traces"
SHARED = ROOT.parent / "shared" / "traces"

NAIVE = SAMPLES / "h100" / "train_naive.pt.trace.json.gz"
OPTIMIZED = SAMPLES / "h100" / "train_optimized.pt.trace.json.gz"
GRAPH = SAMPLES / "h100" / "infer_graph.pt.trace.json.gz"
RANKS = SAMPLES / "public" / "sampled_2of128_ranks"
AMD = SAMPLES / "public" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"
GLOO = SAMPLES / "public" / "rank-34.Jul_15_10_52_41.1074.pt.trace.json.gz"
OOM_CAPACITY = SAMPLES / "h100" / "oom_capacity"
OOM_EXPANDABLE = SAMPLES / "h100" / "oom_frag2_expandable"
SYNTHETIC = SAMPLES / "synthetic"
WILD_MESSAGES = ROOT / "tests" / "data" / "wild_messages.jsonl"  # real messages quoted in public issues


def wild_messages() -> list[dict]:
    """The real OOM and distributed-failure messages of `tests/data/wild_messages.jsonl`."""
    import json

    return [json.loads(line) for line in WILD_MESSAGES.read_text(encoding="utf-8").splitlines() if line.strip()]


def wild_message_files(folder: Path, kind: str | None = None) -> list[Path]:
    """One file per root finding the wild messages expect (the first message of each), written to `folder`."""
    files: dict[str, Path] = {}
    for message in wild_messages():
        if kind and message["kind"] != kind:
            continue
        finding = message["expect"]["finding"]
        if finding not in files:
            files[finding] = folder / f"{message['id']}.txt"
            files[finding].write_text(message["text"], encoding="utf-8")
    return list(files.values())


def shared_path(relative: str) -> Path:
    """A file under ../shared/traces, or skip the test when it is not there."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"../shared/traces/{relative} is not present (the real-data folder beside the checkout)")
    return path


@pytest.fixture
def shared() -> Callable[[str], Path]:
    return shared_path
