"""The artifacts under the server's root that workbench reads, found by the input registry's sniffing.

An artifact is what the panel lists and what one analysis covers: a file (a trace, an Nsight
export, a snapshot, an OOM message), or a folder whose files are analyzed together (the
ranks of a job, the dumps and logs of a hang, a snapshot with its OOM message, a capture run
folder with its `manifest.json`). Paths are confined to the root: `resolve` refuses any that
leads outside it, through `..` or a symbolic link; the listing and the signatures skip (and count)
the links that leave it, as the analysis does (`AnalyzeOptions.root`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.inputs.kineto import KIND_RANKS, KIND_TRACE
from workbench.inputs.registry import InputKind, inside, sniff, walk_files
from workbench.loaders.files import rank_in_name

KIND_RUN = "capture_run"
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "venv", "env"}
MAX_DEPTH = 8
MAX_FILES = 5000

Signature = tuple[tuple[str, int, int], ...]


class PathRefused(Exception):
    """A requested path that leads outside the root."""


class BadPath(ValueError):
    """A requested path that names nothing: empty, or holding a NUL character."""


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the root, '/'-separated
    kind: str
    folder: bool
    files: int
    size: int
    mtime: float  # of its newest file
    reads_as: tuple[str, ...] = ()  # the kinds its files' first bytes say it reports, where that differs from `kind`

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def resolve(root: Path, relative: str) -> Path:
    """The real path of `relative` under `root`; `BadPath` if empty or with a NUL, `PathRefused` outside the root,
    `FileNotFoundError` if absent."""
    if not relative.strip() or "\0" in relative:
        raise BadPath(relative)
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, relative.lstrip("/")))
    if os.path.commonpath([real_root, real]) != real_root:
        raise PathRefused(relative)
    if not os.path.exists(real):
        raise FileNotFoundError(relative)
    return Path(real)


def signature(path: Path, root: Path | None = None) -> Signature:
    """Name, size and mtime of every file an analysis of `path` (confined to `root`) reads: a changed file changes it."""
    files = [path] if path.is_file() else walk_files(path, root)[0]
    stats = ((p, p.stat()) for p in files)
    return tuple((str(p.relative_to(path)), s.st_size, s.st_mtime_ns) for p, s in stats)


class ArtifactIndex:
    """Lists a root's artifacts; each file is sniffed once per (size, mtime)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._kinds: dict[tuple[str, int, int], tuple[InputKind | None, str | None]] = {}
        self.truncated = False
        self.skipped_links = 0  # links leading outside the root, not listed

    def list(self) -> list[Artifact]:
        """Every artifact under the root, in path order; stops after MAX_FILES files (`truncated`)."""
        self.truncated = False
        self.skipped_links = 0
        found: list[Artifact] = []
        budget = [MAX_FILES]
        self._walk(self.root, 0, found, budget)
        return sorted(found, key=lambda a: a.path)

    def _walk(self, folder: Path, depth: int, found: list[Artifact], budget: list[int]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        visible = [e for e in entries if not e.name.startswith(".")]
        inside_root = [e for e in visible if inside(e.path, self.root)]
        self.skipped_links += len(visible) - len(inside_root)
        visible = inside_root
        files = [e for e in visible if e.is_file()]
        by_kind: dict[str, tuple[InputKind, list[os.DirEntry]]] = {}
        for entry in files[:max(budget[0], 0)]:
            kind = self._sniff(entry)[0]
            if kind is not None:
                by_kind.setdefault(kind.name, (kind, []))[1].append(entry)
        budget[0] -= len(files)
        self.truncated |= budget[0] < 0
        if KIND_RUN in by_kind:  # a capture run folder is analyzed whole, sub-folders included
            found.append(self._artifact(Path(folder), KIND_RUN))
            return
        for kind, members in by_kind.values():
            found += self._group(Path(folder), kind, members)
        if depth < MAX_DEPTH:
            for entry in visible:
                if entry.is_dir(follow_symlinks=False) and entry.name not in SKIP_DIRS:
                    self._walk(Path(entry.path), depth + 1, found, budget)

    def _group(self, folder: Path, kind: InputKind, members: list[os.DirEntry]) -> list[Artifact]:
        """The folder as one artifact when its files of `kind` are read together, else one per file."""
        if kind.name == KIND_TRACE:
            ranks = {rank_in_name(e.name) for e in members} - {None}
            together = len(members) > 1 and len(ranks) == len(members)
            return [self._artifact(folder, KIND_RANKS)] if together else [
                self._artifact(Path(m.path), kind.name) for m in members]
        if kind.grouped and len(members) > 1:
            return [self._artifact(folder, kind.name, self._reads_as(kind, members))]
        return [self._artifact(Path(m.path), kind.name, self._reads_as(kind, [m])) for m in members]

    def _artifact(self, path: Path, kind: str, reads_as: tuple[str, ...] = ()) -> Artifact:
        files = signature(path, self.root)
        relative = path.relative_to(self.root).as_posix()
        return Artifact(path=relative, kind=kind, folder=path.is_dir(), files=len(files),
                        size=sum(f[1] for f in files), mtime=max((f[2] for f in files), default=0) / 1e9,
                        reads_as=reads_as)

    def _reads_as(self, kind: InputKind, members: list[os.DirEntry]) -> tuple[str, ...]:
        """The kinds the members' heads say they report (a memory file: snapshot, timeline or OOM message)."""
        found = tuple(sorted({self._sniff(m)[1] or kind.name for m in members}))
        return () if found == (kind.name,) else found

    def _sniff(self, entry: os.DirEntry) -> tuple[InputKind | None, str | None]:
        stat = entry.stat()
        key = (entry.path, stat.st_size, stat.st_mtime_ns)
        if key not in self._kinds:
            found: tuple[InputKind | None, str | None] = (None, None)
            if stat.st_size:
                try:
                    found = sniff(Path(entry.path))
                except WorkbenchError:
                    pass
            self._kinds[key] = found
        return self._kinds[key]
