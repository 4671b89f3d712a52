"""Restricted unpicklers: for allocator snapshots and Flight Recorder dumps, and for what a job's tasks pack.

These files are pickles, and a plain `pickle.load` of a hostile file runs arbitrary code.
This unpickler builds only plain containers and scalars (dict, list, tuple, set, str,
bytes, int, float, bool, None); any other class or persistent id is refused before
anything is called. Every protocol (0-5) goes through it; `looks_like_pickle` tells a pickle
from its first bytes, protocols 0 and 1 (which have no PROTO opcode) by their opcodes.
`loads_packed` reads back the values a job's tasks pack (`inputs.analyzed.pack_value`): plain data,
numpy arrays and workbench's own dataclasses, nothing else.
"""

from __future__ import annotations

import codecs
import collections
import dataclasses
import gc
import importlib
import io
import os
import pickle
import pickletools
import resource
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from workbench.errors import InputError
from workbench.loaders.files import HEAD_BYTES, open_input
from workbench.units import format_bytes

PICKLE_MAGIC = b"\x80"  # the PROTO opcode that starts a pickle of protocol 2 or later
_OLD_PROTOCOL_STARTS = (b"(", b"}", b"]")  # MARK, EMPTY_DICT, EMPTY_LIST: how protocols 0 and 1 open a dict or list
_ALLOWED = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("__builtin__", "set"): set,  # protocol 0-2 pickles written by Python 2
    ("_codecs", "encode"): codecs.encode,  # how protocols 0-2 spell bytes; converts data only
}


BASE_BUDGET = 1 << 30  # memory an unpickle may take: this plus BUDGET_PER_BYTE per byte of pickle
BUDGET_PER_BYTE = 64


class TooLarge(MemoryError):
    """Unpickling would take more memory than the budget for a pickle of its size."""


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asked for something other than plain data."""


def looks_like_pickle(head: bytes) -> bool:
    """Whether a file whose first HEAD_BYTES (all of it, if shorter) are `head` is a pickle: a PROTO opcode
    (protocols 2-5), or a dict or list of protocol 0 or 1 whose opcodes parse to the end of the head, or to the
    STOP that ends a shorter file. Text does not parse that far."""
    if head[:1] == PICKLE_MAGIC:
        return True
    if head[:1] not in _OLD_PROTOCOL_STARTS:
        return False
    stream = io.BytesIO(head)
    try:
        for _ in pickletools.genops(stream):  # returns at a STOP
            pass
    except ValueError:  # a bad opcode or argument, or the data ended (then all of it was read)
        return len(head) >= HEAD_BYTES and stream.tell() == len(head)
    return stream.tell() == len(head)


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise RefusedPickle(f"refused to load {module}.{name}: only plain data is accepted")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("refused a persistent id: only plain data is accepted")


_NUMPY = {(module, name) for prefix in ("numpy._core", "numpy.core")
          for module, name in ((f"{prefix}.multiarray", "_reconstruct"), (f"{prefix}.multiarray", "scalar"),
                               (f"{prefix}.numeric", "_frombuffer"))} | {("numpy", "dtype"), ("numpy", "ndarray")}


class PackedUnpickler(RestrictedUnpickler):
    """Plain data, numpy arrays and scalars, and the dataclasses of workbench's own modules (built without calling
    their constructors): what `pack_value` packs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY:
            return getattr(importlib.import_module(module), name)
        if module == "workbench" or module.startswith("workbench."):
            found = getattr(importlib.import_module(module), name, None)
            if isinstance(found, type) and dataclasses.is_dataclass(found):
                return found
        return super().find_class(module, name)


def loads_packed(data: bytes) -> Any:
    """A value a job's task packed, unpickled by `PackedUnpickler`."""
    return PackedUnpickler(io.BytesIO(data)).load()


def loads(data: bytes) -> Any:
    """Unpickle plain data from bytes; raise `RefusedPickle` or `pickle.UnpicklingError`.

    The cyclic garbage collector is paused meanwhile: a long allocator history is millions of
    small dicts, and collections triggered by their creation would triple the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    budget = BASE_BUDGET + BUDGET_PER_BYTE * len(data)
    try:
        with _address_space(budget):
            return RestrictedUnpickler(io.BytesIO(data)).load()
    except MemoryError:
        raise TooLarge(f"too large or malformed: unpickling needs more than {format_bytes(budget)} "
                       f"(the budget for {format_bytes(len(data))} of pickle: a huge memo index, bytes or "
                       "container size)") from None
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _address_space(budget: int) -> Iterator[None]:
    """Allow this process `budget` more bytes of address space meanwhile (Linux; elsewhere no limit): the C
    unpickler then meets a memo index of 2**28 or a `bytearray(3e9)` with a MemoryError instead of taking it."""
    try:
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + budget
    for bound in (soft, hard):
        if bound != resource.RLIM_INFINITY:
            limit = min(limit, bound)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def load_file(path: str | Path) -> Any:
    """Unpickle a (possibly gzip-compressed) file of plain data, or raise `InputError`."""
    with open_input(path) as handle:
        data = handle.read_all()
    try:
        return loads(data)
    except RefusedPickle as exc:
        raise InputError(path, f"unsafe pickle: {exc}") from None
    except TooLarge as exc:
        raise InputError(path, str(exc)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, TypeError, AttributeError, KeyError,
            OverflowError) as exc:
        raise InputError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None
