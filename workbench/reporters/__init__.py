"""One module per output format; each turns a report dict into text."""

from workbench.reporters import json, markdown, text

FORMATS = {"text": text.render, "json": json.render, "markdown": markdown.render}

__all__ = ["FORMATS"]
