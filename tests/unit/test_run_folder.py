"""Run folders: a new suffix for every capture, one folder for the ranks of one job."""

from __future__ import annotations

import threading

import pytest

from workbench.capture.run_folder import CLAIM_FILE, create_run_folder
from workbench.capture.schedule import Schedule, schedule_of


def test_a_new_suffix_for_each_run(tmp_path):
    out = tmp_path / "runs" / "train"
    assert [create_run_folder(out).name for _ in range(3)] == ["train", "train-1", "train-2"]
    assert not list(out.iterdir())  # one process: no claim file


def test_an_existing_folder_is_never_reused(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("mine")
    assert create_run_folder(tmp_path / "train", claim="job-1").name == "train-1"


def test_the_ranks_of_one_job_share_a_folder_and_another_job_gets_a_new_one(tmp_path):
    out = tmp_path / "train"
    found: list = []
    threads = [threading.Thread(target=lambda: found.append(create_run_folder(out, claim="job-a"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {p.name for p in found} == {"train"}
    assert (out / CLAIM_FILE).read_text() == "job-a"
    assert create_run_folder(out, claim="job-b").name == "train-1"


@pytest.mark.parametrize("steps, expected", [
    (None, Schedule(wait=1, warmup=1, active=3, repeat=1)),
    (5, Schedule(wait=1, warmup=1, active=5)),
    ({"wait": 0, "warmup": 0, "active": 2}, Schedule(wait=0, warmup=0, active=2)),
])
def test_steps_give_the_schedule(steps, expected):
    assert schedule_of(steps) == expected


def test_a_schedule_records_at_least_one_step():
    assert Schedule(wait=2, warmup=1, active=3, repeat=2).total == 12
    with pytest.raises(ValueError):
        Schedule(active=0)
    with pytest.raises(TypeError):
        schedule_of(True)
