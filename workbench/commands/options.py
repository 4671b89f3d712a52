"""What `analyze` and `diff` share: the report's format and destination, the CI job summary, the
gating options and the config file they default from."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from workbench.config import Config, load_config
from workbench.errors import InputError, WorkbenchError
from workbench.gate import gate_messages
from workbench.reporters import FORMATS, markdown, text
from workbench.rules.finding import SEVERITIES
from workbench.rules.registry import RULES, load_builtin_rules

SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """--format, -o, --summary, --fail-on, --ignore and --config."""
    parser.add_argument("--format", choices=sorted(FORMATS), default="text", help="output format (default: text)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--summary", action="store_true",
                        help=f"also append the Markdown report to ${SUMMARY_VARIABLE} when it is set (GitHub Actions)")
    parser.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                        help="exit 1 when a finding of this severity or worse is present "
                             f"({', '.join(SEVERITIES)}; default: the config's fail-on, else never)")
    parser.add_argument("--ignore", action="append", default=[], metavar="ID",
                        help="turn off the rule ID (repeatable, added to the config's ignore; see `workbench rules`)")
    parser.add_argument("--config", metavar="FILE",
                        help="settings file (default: the nearest workbench.toml, or pyproject.toml with "
                             "[tool.workbench], in the working folder or above)")


def row_count(text: str) -> int:
    """`--top N`: a whole number of rows, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} rows: give at least 1")
    return value


def settings(args: argparse.Namespace) -> tuple[Config, list[str], str | None]:
    """The config, the rules to ignore (config and command line) and the --fail-on level in force."""
    config = load_config(args.config)
    load_builtin_rules()
    unknown = [rule_id for rule_id in args.ignore if rule_id not in RULES]
    if unknown:  # a typo must not leave the rule on unnoticed (the config file's ids are checked too)
        raise WorkbenchError(f"--ignore: unknown rule id {unknown[0]!r} (`workbench rules` lists them)")
    return config, [*config.ignore, *args.ignore], args.fail_on or config.fail_on


def emit(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Write the report where asked, append it to the job summary, and say on stderr why a gate failed."""
    stream = None if args.output else sys.stdout
    output = text.render(report, **text.terminal(stream)) if args.format == "text" and stream else \
        FORMATS[args.format](report)
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            Path(args.output).write_text(output, encoding="utf-8")
        except OSError as exc:
            raise InputError(args.output, f"cannot write the report: {exc.strerror or exc}") from None
    else:
        stream.write(output)
    summary = os.environ.get(SUMMARY_VARIABLE)
    if args.summary and summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown.render(report) + "\n")
    for line in gate_messages(report):
        print(f"workbench: {line}", file=sys.stderr)
