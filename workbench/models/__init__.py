"""Typed, columnar models that loaders build and analyses read."""

from workbench.models.trace import EventTable, MemoryEvents, Trace

__all__ = ["EventTable", "MemoryEvents", "Trace"]
