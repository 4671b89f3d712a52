"""OOM messages: the real H100 messages and the wordings of other torch versions and MPS."""

from __future__ import annotations

import pytest

from tests.conftest import OOM_CAPACITY, OOM_EXPANDABLE, SYNTHETIC
from workbench.errors import InputError
from workbench.loaders.oom_message import is_oom_text, load_oom_messages

GIB = 1 << 30


def gib(n: float) -> int:
    return int(round(n * GIB))


def test_real_capacity_message_numbers():
    m = load_oom_messages(OOM_CAPACITY / "oom_capacity.oom.txt")[0]
    assert (m.backend, m.device) == ("cuda", 0)
    assert m.requested_bytes == 5 * GIB
    assert (m.total_bytes, m.free_bytes, m.process_bytes) == (gib(79.18), gib(3.12), gib(76.05))
    assert (m.allocated_bytes, m.reserved_unallocated_bytes) == (gib(73.14), gib(2.18))
    assert m.reserved_bytes == gib(73.14) + gib(2.18)
    assert m.python_frames[0].startswith("/home/ml/project/capture_runs.py:50 in forward: att = (q @ k.transpose")


def test_real_expandable_message_numbers():
    m = load_oom_messages(OOM_EXPANDABLE / "oom_frag2_expandable.oom.txt")[0]
    assert m.requested_bytes == gib(15.73)
    assert (m.free_bytes, m.allocated_bytes, m.reserved_unallocated_bytes) == (gib(15.72), gib(20.98), gib(41.97))


def test_torch_2_1_wording_with_other_processes():
    m = load_oom_messages(SYNTHETIC / "oom_other_processes.synthetic.log")[0]
    assert m.total_bytes == gib(79.15)  # "total capacty": the typo of torch 2.1
    assert m.other_processes == {48213: gib(30.12)}
    assert m.python_frames == ["/home/ml/project/train.py:88 in <module>: loss.backward()"]


def test_memory_fraction_cap():
    m = load_oom_messages(SYNTHETIC / "oom_memory_fraction.synthetic.txt")[0]
    assert m.allowed_bytes == 10 * GIB
    assert m.reserved_unallocated_bytes == 120 << 20


def test_torch_1_wording():
    m = load_oom_messages(SYNTHETIC / "oom_torch1.synthetic.log")[0]
    assert (m.requested_bytes, m.total_bytes, m.allocated_bytes) == (20 << 20, gib(15.78), gib(14.56))
    assert m.free_bytes == int(round(3.44 * (1 << 20)))
    assert m.reserved_unallocated_bytes == gib(14.76) - gib(14.56)


def test_mps_message():
    m = load_oom_messages(SYNTHETIC / "oom_mps.synthetic.log")[0]
    assert (m.backend, m.pool) == ("mps", "private pool")
    assert (m.requested_bytes, m.allocated_bytes, m.allowed_bytes) == (256 << 20, gib(18.04), gib(18.13))
    assert m.other_allocations_bytes == 384 << 10


def test_oom_in_the_tail_of_a_long_log(tmp_path):
    log = tmp_path / "train.log"
    message = (OOM_CAPACITY / "oom_capacity.oom.txt").read_bytes()
    log.write_bytes(b"step 1 loss 2.0\n" * 20000 + message)
    assert is_oom_text(log, log.read_bytes()[:65536])
    assert load_oom_messages(log)[0].requested_bytes == 5 * GIB


def test_json_files_and_text_without_oom_are_not_claimed(tmp_path):
    meta = OOM_CAPACITY / "oom_capacity.meta.json"  # holds the message as a JSON string
    assert not is_oom_text(meta, meta.read_bytes()[:65536])
    plain = tmp_path / "notes.txt"
    plain.write_text("CUDA out of memory happened yesterday\n")
    assert not is_oom_text(plain, plain.read_bytes())
    with pytest.raises(InputError, match="no CUDA, HIP or MPS out-of-memory message"):
        load_oom_messages(plain)
