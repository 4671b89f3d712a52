"""Loaders turn files on disk into the typed models of `workbench.models`."""
