"""`--workers` and `--scheduler`: where `analyze` and `diff` analyze the files of a job (`inputs.rank_runner`)."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Iterator

from workbench.inputs.rank_runner import SCHEDULER_VARIABLE, DaskRunner, InProcess, runner_for


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local Dask worker processes for the ranks of a job (default: one per core; "
                             "1: in this process, without Dask)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="analyze the ranks on an existing Dask cluster (tcp://host:8786; default: "
                             f"${SCHEDULER_VARIABLE}); its workers must be able to read the paths")


@contextmanager
def rank_runner(args: argparse.Namespace) -> Iterator[InProcess | DaskRunner]:
    """The runner the options ask for, closed (its local cluster stopped) when the command is done."""
    runner = runner_for(args.workers, args.scheduler)
    try:
        yield runner
    finally:
        runner.close()
