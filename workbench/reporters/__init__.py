"""One module per output format; each turns a report dict into text."""

from workbench.reporters import html, json, junit, markdown, text

FORMATS = {"text": text.render, "json": json.render, "markdown": markdown.render, "junit": junit.render,
           "html": html.render}

__all__ = ["FORMATS"]
