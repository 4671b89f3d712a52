"""`workbench.distributed`: Flight Recorder settings, rank and job key, without torch where it can."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from workbench import distributed


@pytest.fixture
def clean_env(monkeypatch):
    """No job or Flight Recorder variables; whatever a test sets is gone after it."""
    monkeypatch.setattr(os, "environ", os.environ.copy())
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "MASTER_ADDR", "MASTER_PORT",
                 "TORCH_FR_BUFFER_SIZE", "TORCH_NCCL_TRACE_BUFFER_SIZE", "TORCH_NCCL_DUMP_ON_TIMEOUT",
                 "TORCH_FR_DUMP_TEMP_FILE", "TORCH_NCCL_DEBUG_INFO_TEMP_FILE", "TORCH_NCCL_ENABLE_MONITORING"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_enable_flight_recorder_sets_the_environment(tmp_path, clean_env):
    settings = distributed.enable_flight_recorder(tmp_path / "fr")
    assert (tmp_path / "fr").is_dir()
    assert os.environ["TORCH_FR_BUFFER_SIZE"] == os.environ["TORCH_NCCL_TRACE_BUFFER_SIZE"] == "2000"
    assert os.environ["TORCH_NCCL_DUMP_ON_TIMEOUT"] == "1"
    assert os.environ["TORCH_FR_DUMP_TEMP_FILE"] == str((tmp_path / "fr" / "fr_rank_").resolve())
    assert settings["TORCH_NCCL_DEBUG_INFO_TEMP_FILE"] == os.environ["TORCH_FR_DUMP_TEMP_FILE"]


def test_rank_and_job_key_outside_a_job_and_under_torchrun(clean_env):
    assert distributed.rank_and_world() == (None, 1)
    assert distributed.job_key() is None
    assert distributed.worker_name(None) is None
    clean_env.setenv("RANK", "3")
    clean_env.setenv("WORLD_SIZE", "8")
    clean_env.setenv("TORCHELASTIC_RUN_ID", "abc")
    assert distributed.rank_and_world() == (3, 8)
    assert distributed.worker_name(3) == "rank3"
    assert distributed.job_key().startswith("env:abc:")


def test_import_workbench_loads_neither_torch_nor_ipython():
    code = ("import sys, workbench; workbench.capture; workbench.distributed; "
            "assert 'torch' not in sys.modules and 'IPython' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_with_a_process_group(tmp_path, clean_env):
    dist = pytest.importorskip("torch.distributed")
    store = dist.HashStore()
    dist.init_process_group("gloo", rank=0, world_size=1, store=store)
    try:
        assert distributed.rank_and_world() == (0, 1)
        assert len(distributed.job_key()) == 32  # drawn by rank 0, broadcast to the others
        with pytest.raises(RuntimeError, match="before torch.distributed.init_process_group"):
            distributed.enable_flight_recorder(tmp_path / "fr")
    finally:
        dist.destroy_process_group()
