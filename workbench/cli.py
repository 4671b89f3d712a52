"""The `workbench` command line. Exit codes: 0 success, 1 gating failure, 2 bad input or usage."""

from __future__ import annotations

import argparse
import os
import sys

from workbench import __version__
from workbench.commands import analyze, ci, diff, rules
from workbench.errors import WorkbenchError
from workbench.gate import EXIT_BAD_INPUT

COMMANDS = [analyze, diff, ci, rules]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an input we do not understand must not end in a traceback
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        print(f"workbench: error: unexpected {type(exc).__name__}: {exc} "
              "(set WORKBENCH_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_BAD_INPUT
