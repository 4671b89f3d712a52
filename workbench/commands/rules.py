"""`workbench rules`: list the rules that `analyze` runs, with their ids for `--ignore`."""

from __future__ import annotations

import argparse
import sys

from workbench.rules.registry import RULES, load_builtin_rules


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="list the rules and their ids",
                                   description="List the rules that `workbench analyze` runs.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    load_builtin_rules()
    width = max(len(r.id) for r in RULES.values())
    for r in sorted(RULES.values(), key=lambda r: (r.category, r.id)):
        sys.stdout.write(f"{r.id:<{width}}  {r.category:<13}  {r.description}\n")
    return 0
