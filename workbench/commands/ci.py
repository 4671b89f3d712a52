"""`workbench ci [options] -- COMMAND...`: run a training command with a few optimizer steps captured into
a run folder, then gate the run as `analyze --fail-on` does, or against `--baseline` as `diff` does."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from workbench.capture.auto import environment
from workbench.capture.manifest import NAME
from workbench.capture.run_folder import next_run_folder
from workbench.capture.schedule import Schedule
from workbench.commands import analyze, diff
from workbench.commands.cluster_options import add_cluster_options
from workbench.commands.options import add_report_options, row_count, settings
from workbench.errors import InputError, WorkbenchError
from workbench.interop.tensorboard import TRACE_SUFFIX

DEFAULT_OUT = "runs/ci"
STDERR = 2  # the command's output goes to stderr, so that stdout holds only the report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ci", help="run a training command with N steps captured, and gate on the run",
        description="Run COMMAND with N optimizer steps captured (no change to the script: the first optimizer "
                    "to step sets the pace; a script that uses workbench.capture captures itself), then gate the "
                    "run folder like `workbench analyze`, or with --baseline like `workbench diff`.")
    parser.add_argument("--steps", type=int, default=3, metavar="N",
                        help="optimizer steps recorded, after one skipped and one warm-up (default: 3)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"the run folder; DIR-1, DIR-2, ... when it exists (default: {DEFAULT_OUT})")
    parser.add_argument("--stop", action="store_true", help="end COMMAND (exit 0) once the steps are recorded")
    parser.add_argument("--baseline", metavar="PATH",
                        help="a trace or run folder to compare the run with, as `workbench diff PATH RUN` does")
    diff.add_slowdown_option(parser)
    parser.add_argument("--top", type=row_count, default=50, metavar="N", help="rows per table in the report (default: 50)")
    add_cluster_options(parser)
    add_report_options(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command to run")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the command, then the `analyze` (or, with --baseline, the `diff`) command on its run folder."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise WorkbenchError("give the command to run after --, as in: workbench ci --steps 3 -- python train.py")
    if args.steps < 1:
        raise WorkbenchError(f"--steps must be 1 or more, not {args.steps}")
    if args.max_slowdown is not None and args.baseline is None:
        raise WorkbenchError("--max-slowdown needs --baseline (the trace or run folder to compare with)")
    if args.baseline is not None and not Path(args.baseline).exists():
        raise InputError(args.baseline, "no such file or directory")
    settings(args)  # a bad config fails now, not after the run
    folder = _run_captured(command, next_run_folder(args.out), args.steps, args.stop)
    if args.baseline is None:
        args.paths = [str(folder)]
        return analyze.run(args)
    args.base, args.new = args.baseline, str(folder)
    return diff.run(args)


def _run_captured(command: list[str], folder: Path, steps: int, stop: bool) -> Path:
    """Run the command with its captures written to `folder`; a failed command or an empty run is an error."""
    shown = shlex.join(command)
    try:
        code = subprocess.run(command, env=environment(folder, steps, stop), stdout=STDERR, check=False).returncode
    except OSError as exc:
        raise WorkbenchError(f"cannot run `{shown}`: {exc.strerror or exc}") from None
    if code != 0:
        kept = f"; what it captured is in {folder}" if folder.exists() else ""
        raise WorkbenchError(f"`{shown}` exited with status {code}{kept}")
    if not folder.exists():
        raise WorkbenchError(f"`{shown}` captured nothing: it ran no optimizer step (torch.optim), or profiled "
                             "itself with torch.profiler (analyze its traces with `workbench analyze`)")
    seen, needed = _steps(folder)
    short = (f"its capture saw {seen} of the {needed} steps of its schedule "
             "(the recipe counts the optimizer steps after the first)")
    if not any(folder.glob(f"*{TRACE_SUFFIX}*")):
        raise WorkbenchError(f"`{shown}` recorded no trace into {folder}: {short}")
    if seen < needed:
        print(f"workbench: warning: `{shown}` ended early: {short}", file=sys.stderr)
    return folder


def _steps(folder: Path) -> tuple[int, int]:
    """The steps the run's capture saw, and the steps its schedule needed, from its manifest."""
    manifest = json.loads((folder / NAME).read_text(encoding="utf-8"))
    return manifest["timings"]["steps"], Schedule(**manifest["settings"]["schedule"]).total
