"""Run folders: a new folder per capture under the path the user named, never over an old one.

`runs/name` is used if it does not exist yet, else `runs/name-1`, `runs/name-2`, ... The process
that creates a folder writes a claim into it: the ranks of one job pass the same job key, so they
all join the folder their first rank created instead of each taking a new suffix. A capture with no
key (one process) never joins a folder.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

CLAIM_FILE = ".workbench-claim"
CLAIM_WAIT_S = 10.0
_POLL_S = 0.05


def create_run_folder(out: str | Path, claim: str | None = None) -> Path:
    """The first of `out`, `out-1`, `out-2`, ... that is new, or already claimed by the job `claim`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = 0
    while True:
        candidate = _suffixed(out, suffix)
        try:
            candidate.mkdir()
        except FileExistsError:
            if claim is not None and _read_claim(candidate) == claim:
                return candidate
            suffix += 1
            continue
        if claim is not None:
            _write_claim(candidate, claim)
        return candidate


def next_run_folder(out: str | Path) -> Path:
    """The folder that the next capture to `out` of one process creates (`workbench ci` reads it after the run)."""
    return next(folder for folder in (_suffixed(Path(out), n) for n in itertools.count()) if not folder.exists())


def _suffixed(out: Path, suffix: int) -> Path:
    return out if suffix == 0 else out.with_name(f"{out.name}-{suffix}")


def _write_claim(folder: Path, claim: str) -> None:
    """Write the claim atomically, so that a rank reading it never sees half of it."""
    partial = folder / f"{CLAIM_FILE}.{os.getpid()}"
    partial.write_text(claim, encoding="utf-8")
    os.replace(partial, folder / CLAIM_FILE)


def _read_claim(folder: Path) -> str | None:
    """The folder's claim; a folder created a moment ago gets a few seconds to show it."""
    if not folder.is_dir():
        return None
    path = folder / CLAIM_FILE
    deadline = time.monotonic() + CLAIM_WAIT_S
    while not path.exists():
        if any(p.name != CLAIM_FILE and not p.name.startswith(CLAIM_FILE) for p in folder.iterdir()):
            return None  # a folder with content and no claim: someone else's
        if time.monotonic() > deadline:
            return None
        time.sleep(_POLL_S)
    return path.read_text(encoding="utf-8")
