"""Errors that the command line turns into one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """Base class for errors shown to the user as one line."""


class InputError(WorkbenchError):
    """An input file that cannot be read or is not what it claims to be."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{shown_path(self.path)}: {problem}")


def shown_path(path: str | Path) -> str:
    """A file name fit for one line: as is when printable, else quoted with its control characters escaped."""
    text = str(path)
    return text if text.isprintable() else repr(text)
