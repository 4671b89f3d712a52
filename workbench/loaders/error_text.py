"""Error text as it reaches us from the wild, made readable line by line.

Terminal output, job logs and pastes carry noise around the messages we parse: ANSI colour
codes, `[rankN]:` prefixes that torchrun adds (after any host or line-number prefix), carriage
returns of tqdm bars, JSON-lines records whose `message` field holds the text. `clean_lines`
removes it and keeps the rank each line was printed by. Every pattern here is linear (no nested
quantifiers) and every line is cut at `MAX_LINE` characters, so any input is read in linear time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_LINE = 16_384
_PREFIX_SPAN = 240  # a rank prefix sits within the first characters of a line
_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[ -/]{0,4}[@-~]")
_RANK_PREFIX = re.compile(r"\[(?:rank|Rank|RANK)(\d{1,6})\]:")
_JSON_FIELDS = ("message", "msg", "log", "text", "line", "textPayload")


@dataclass(frozen=True)
class Line:
    text: str
    rank: int | None  # from a `[rankN]:` prefix


def clean_lines(text: str) -> list[Line]:
    """The text's lines without ANSI codes, JSON-lines wrapping or `[rankN]:` prefixes."""
    out: list[Line] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        for piece in _unwrap_json(_ANSI.sub("", raw[:MAX_LINE])):
            out.append(_strip_rank(piece))
    return out


def clean_text(text: str) -> str:
    """`clean_lines` joined back into one text."""
    return "\n".join(line.text for line in clean_lines(text))


def _unwrap_json(line: str) -> list[str]:
    """A JSON-lines record's message field (split into its lines), else the line itself."""
    stripped = line.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return [line]
    try:
        record = json.loads(stripped)
    except ValueError:
        return [line]
    if not isinstance(record, dict):
        return [line]
    value = next((record[k] for k in _JSON_FIELDS if isinstance(record.get(k), str)), None)
    return value[:MAX_LINE].split("\n") if value is not None else [line]


def _strip_rank(line: str) -> Line:
    match = _RANK_PREFIX.search(line, 0, _PREFIX_SPAN)
    if match is None:
        return Line(line, None)
    rest = line[match.end():]
    return Line(rest[1:] if rest.startswith(" ") else rest, int(match.group(1)))
