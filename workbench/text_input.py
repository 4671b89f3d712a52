"""Pasted text as an input: `workbench analyze -` (standard input) and `workbench.explain(text)`.

The text is written to a file of its own in a temporary folder and analyzed like any file, so a
pasted OOM message or NCCL log gets the diagnosis its log file would; the report names it by its
label (`<stdin>`, `<text>`) instead of the temporary path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from workbench.errors import InputError
from workbench.inputs import AnalyzedInput, AnalyzeOptions, analyze_path

MAX_TEXT_BYTES = 64 << 20


def analyze_text(text: str | bytes, label: str, options: AnalyzeOptions) -> list[AnalyzedInput]:
    """The inputs of a text; `InputError` naming `label` when it is empty or holds nothing workbench reads."""
    data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    if not data.strip():
        raise InputError(label, "empty input: paste or pipe an OOM message, a NCCL or torchrun log, or a traceback")
    if len(data) > MAX_TEXT_BYTES:
        raise InputError(label, f"input over {MAX_TEXT_BYTES >> 20} MiB: save it to a file and analyze the file")
    with tempfile.TemporaryDirectory(prefix="workbench-text-") as folder:
        path = Path(folder) / "pasted.log"
        path.write_bytes(data)
        try:
            inputs = analyze_path(path, options)
        except InputError as exc:
            problem = exc.problem.replace("unrecognized file", "unrecognized text").replace(str(path), label)
            raise InputError(label, problem) from None
    for input_ in inputs:
        _relabel(input_, str(path), label)
    return inputs


def _relabel(input_: AnalyzedInput, path: str, label: str) -> None:
    input_.path = label if input_.path in (path, str(Path(path).parent)) else input_.path
    input_.warnings = [w.replace(path, label) for w in input_.warnings]
    for key in ("logs", "dumps"):
        if isinstance(input_.meta.get(key), list):
            input_.meta[key] = [label if p == path else p for p in input_.meta[key]]


def explain(text: str, top: int = 50) -> Any:
    """The diagnosis of an error text (an OOM message, a NCCL or torchrun log, a traceback) in a notebook:
    the same report `workbench analyze -` prints, drawn like `%workbench PATH` (as text outside IPython).
    Returns the report."""
    from workbench.commands.analyze import inputs_report
    from workbench.config import load_config
    from workbench.magic import show

    config = load_config()
    report = inputs_report(analyze_text(text, "<text>", AnalyzeOptions(top=top)), config, list(config.ignore),
                           config.fail_on)
    if _in_notebook():
        show(report)
    else:
        from workbench.reporters import FORMATS

        print(FORMATS["text"](report))
    return report


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
