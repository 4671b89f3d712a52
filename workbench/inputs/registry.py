"""Recognize what a path is and hand it to the analysis for that kind of artifact.

Each kind of input registers an `InputKind`: a `sniff` test on a file's name and first
decompressed bytes, and an `analyze` function. A file is analyzed by the first kind that
claims it. In a folder tree, the files of a grouped kind that share a folder (the ranks of a
job, the dumps and logs of a hang) are analyzed together, folder by folder; every other
recognized file is an input of its own; files no kind claims (logs of other tools, meta data)
are left alone.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from workbench.errors import InputError, WorkbenchError
from workbench.inputs.analyzed import AnalyzedInput
from workbench.inputs.rank_runner import InProcess, RankRunner
from workbench.loaders.files import HEAD_BYTES, Progress, open_input



@dataclass(frozen=True)
class AnalyzeOptions:
    top: int = 50
    progress: Callable[[str], Progress] = lambda label: (lambda fraction: None)
    runner: RankRunner = InProcess()  # where the files of a job are analyzed (`rank_runner`)
    keep_traces: bool = False  # keep every rank's trace in this process (the dashboard's zoom; in-process only)
    root: Path | None = None  # when set, no file outside it is read (the server's root)
    ignore: tuple[str, ...] = ()  # rules turned off (--ignore, the config's): their findings choose no rank to detail


@dataclass(frozen=True)
class InputKind:
    name: str
    sniff: Callable[[Path, bytes], bool]
    analyze: Callable[[Path, list[Path], AnalyzeOptions], list[AnalyzedInput]]
    grouped: bool = False
    sniff_named: Callable[[Path, bytes], bool] | None = None  # for a file named on its own: any name or extension
    reported_as: Callable[[Path, bytes], str] | None = None  # a file of a grouped kind: the kind its input reports


def reported_kind(kind: InputKind, path: Path, head: bytes) -> str:
    """The kind a file claimed by `kind` is reported as, from its name and first bytes (`kind.name` by default)."""
    return kind.reported_as(path, head) if kind.reported_as else kind.name


KINDS: list[InputKind] = []


def register_kind(kind: InputKind) -> None:
    KINDS.append(kind)


def read_head(path: Path) -> bytes:
    """The first bytes of a file, decompressed if it is gzip; `InputError` if it cannot be read."""
    with open_input(path) as handle:
        return handle.stream.read(HEAD_BYTES)


def kind_of(path: Path, named: bool = False) -> InputKind | None:
    """The first kind that claims the file; for a file named on its own (`named`), then the first whose
    `sniff_named` claims it whatever its name (a `.md` or `.json` holding an error message)."""
    return sniff(path, named)[0]


def sniff(path: Path, named: bool = False) -> tuple[InputKind | None, str | None]:
    """`kind_of(path, named)` and the kind the file's input is reported as (`reported_kind`), from one head read."""
    _load_builtin_kinds()
    head = read_head(path)
    found = next((k for k in KINDS if k.sniff(path, head)), None)
    if found is None and named:
        found = next((k for k in KINDS if k.sniff_named and k.sniff_named(path, head)), None)
    return found, reported_kind(found, path, head) if found else None


def inside(path: str | Path, root: Path | None) -> bool:
    """Whether `path`, links resolved, lies in `root` (always true without one)."""
    if root is None:
        return True
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([real_root, real]) == real_root


def walk_files(folder: Path, root: Path | None = None) -> tuple[list[Path], int]:
    """The non-empty regular files under `folder` in path order (links to folders are not followed),
    and how many links were skipped because they lead outside `root`."""
    files: list[Path] = []
    skipped = 0
    for top, dirs, names in os.walk(folder):
        dirs.sort()
        skipped += sum(1 for d in dirs if os.path.islink(os.path.join(top, d)) and not inside(os.path.join(top, d), root))
        for name in sorted(names):
            file = Path(top, name)
            if not inside(file, root):
                skipped += 1
            elif file.is_file() and file.stat().st_size > 0:
                files.append(file)
    return sorted(files), skipped


def check_regular(path: Path) -> None:
    """`InputError` unless `path` is a regular file or a folder, saying what it is instead."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(path, "symbolic link loop") from None
        if os.path.islink(path):
            raise InputError(path, f"broken symbolic link (to {os.readlink(path)!r})") from None
        if exc.errno == errno.ENOENT:
            raise InputError(path, "no such file or directory") from None
        raise InputError(path, f"cannot be read: {exc.strerror}") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    what = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")
    raise InputError(path, f"is {what}, not a file or folder workbench reads")


def analyze_path(path: str | Path, options: AnalyzeOptions) -> list[AnalyzedInput]:
    """Analyze a file or a folder of artifacts (only what lies in `options.root`, when set)."""
    path = Path(path)
    check_regular(path)
    if not inside(path, options.root):
        raise InputError(path, "outside the root")
    if path.is_file():
        if path.stat().st_size == 0:
            raise InputError(path, "empty file")
        kind = kind_of(path, named=True)
        if kind is None:
            raise InputError(path, "unrecognized file: not a trace, snapshot, dump or log that workbench reads")
        return _analyze(kind, path, [path], options)
    groups: dict[tuple[str, Path], tuple[InputKind, list[Path]]] = {}
    singles: list[tuple[InputKind, Path]] = []
    unreadable: list[tuple[Path, InputError]] = []
    files, _ = walk_files(path, options.root)
    for file in files:
        try:
            kind = kind_of(file)
        except InputError as exc:
            unreadable.append((file, exc))
            continue
        if kind is None:
            continue
        if kind.grouped:
            groups.setdefault((kind.name, file.parent), (kind, []))[1].append(file)
        else:
            singles.append((kind, file))
    _join_groups(unreadable, groups)
    if not groups and not singles:
        raise InputError(path, "folder holds nothing workbench reads (traces, snapshots, dumps, logs)")
    inputs = [i for (_, folder), (kind, files) in groups.items() for i in _analyze(kind, folder, files, options)]
    inputs += [i for kind, file in singles for i in _analyze(kind, file, [file], options)]
    return inputs


def _join_groups(unreadable: list[tuple[Path, InputError]],
                 groups: dict[tuple[str, Path], tuple[InputKind, list[Path]]]) -> None:
    """A file that cannot be read joins the one group of its folder (a job's rank file, cut short: the job
    names it and goes on without it); anywhere else its error is the command's."""
    for file, error in unreadable:
        beside = [files for (_, folder), (_, files) in groups.items() if folder == file.parent]
        if len(beside) != 1:
            raise error
        beside[0].append(file)
        beside[0].sort()


def _analyze(kind: InputKind, path: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """Run a kind's analysis; an unexpected failure still names the input (WORKBENCH_DEBUG=1 re-raises)."""
    try:
        return kind.analyze(path, files, options)
    except (WorkbenchError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        raise InputError(path, f"cannot be analyzed as {kind.name}: {type(exc).__name__}: {exc} "
                               "(set WORKBENCH_DEBUG=1 for a traceback)") from None


def _load_builtin_kinds() -> None:
    """Import the modules that register input kinds (once: the import is cached). Not `if not KINDS`:
    a rule module importing one kind's constants registers that kind alone."""
    import workbench.inputs.builtin  # noqa: F401
