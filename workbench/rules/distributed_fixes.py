"""The fixes of the hang rules: runnable code (a one-process gloo group on a CPU) and docs."""

from __future__ import annotations

from workbench.rules.finding import Fix

DOCS_FR = "https://pytorch.org/docs/stable/torch.distributed.flight_recorder.html"
DOCS_DIST = "https://pytorch.org/docs/stable/distributed.html"
DOCS_DEBUG = "https://pytorch.org/docs/stable/distributed.html#debugging-torch-distributed-applications"

_INIT = '''import datetime
import torch
import torch.distributed as dist

# one process here; under torchrun use dist.init_process_group("nccl") (or "gloo") as usual
dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore(),
                        timeout=datetime.timedelta(minutes=10))
rank, world = dist.get_rank(), dist.get_world_size()
'''
_END = "dist.destroy_process_group()\n"

SKIPPED = Fix(
    "Call every collective on every rank: a collective under a rank-dependent condition (`if rank != 0:`, "
    "an early `break`, a rank with no data) shifts that rank's sequence against the others. Compute the "
    "condition outside and contribute a neutral value instead of skipping the call.",
    _INIT + '''metric = torch.tensor([3.0])
has_metric = rank != world - 1  # the condition that used to guard the all_reduce
# every rank joins; a rank without a value contributes zero (and a count, to average correctly)
packed = torch.cat([metric if has_metric else torch.zeros_like(metric), torch.tensor([float(has_metric)])])
dist.all_reduce(packed)
mean = packed[0] / packed[1].clamp(min=1)
''' + _END, [DOCS_DIST, DOCS_DEBUG])

NOT_REACHED = Fix(
    "The missing ranks are busy before the collective (compute, a GPU kernel queued before it, data "
    "loading, I/O, a deadlock in Python). See where: `py-spy dump --pid <pid>` on those ranks while it hangs, "
    "or make the job print its stacks itself; bound data-loading waits; `monitored_barrier` (gloo) names "
    "the ranks that do not arrive.",
    _INIT + '''import faulthandler
import sys

faulthandler.dump_traceback_later(600, exit=False, file=sys.stderr)  # stacks of a step that hangs
batch = torch.ones(16)  # your load_batch(): e.g. DataLoader(..., timeout=120) to fail instead of stalling
if torch.cuda.is_available():
    torch.cuda.synchronize()  # while debugging: a slow kernel shows up here, not in the collective
dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))  # gloo groups: names the late ranks
dist.all_reduce(batch)
faulthandler.cancel_dump_traceback_later()
''' + _END, [DOCS_DEBUG, "https://github.com/benfred/py-spy"])

ORDER = Fix(
    "Issue the same collectives in the same order on every rank: ranks that call different collectives at "
    "the same point (a rank-dependent branch, iteration over an unordered set or dict, different code paths "
    "per rank) deadlock or corrupt data. TORCH_DISTRIBUTED_DEBUG=DETAIL checks each collective across ranks.",
    _INIT + '''x = torch.ones(16)
# the same sequence on every rank; only the arguments may depend on the rank
dist.all_reduce(x)
dist.broadcast(x, src=0)
for name in sorted({"b": 1, "a": 2}):  # iterate in a deterministic order when collectives are per key
    dist.all_reduce(torch.ones(1))
''' + _END, [DOCS_DIST, DOCS_DEBUG])

SIZES = Fix(
    "Give every rank tensors of the same shape and dtype at each collective: an uneven last batch (no "
    "`drop_last`), rank-dependent padding or a dtype that differs by rank. Drop or pad the last batch, or "
    "gather sizes first.",
    _INIT + '''from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

dataset = TensorDataset(torch.arange(10.0))
sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, drop_last=True)
loader = DataLoader(dataset, batch_size=4, sampler=sampler, drop_last=True)  # equal, full batches on every rank
for (batch,) in loader:
    dist.all_reduce(batch.float())  # one dtype on every rank
''' + _END, [DOCS_DIST, "https://pytorch.org/docs/stable/data.html#torch.utils.data.distributed.DistributedSampler"])

P2P = Fix(
    "Pair every send with a recv on the peer, posted in the same order relative to the collectives: post "
    "both directions together with `batch_isend_irecv`, and keep collectives out of the send/recv exchange.",
    _INIT + '''x = torch.ones(16)
if world > 1:
    ops = [dist.P2POp(dist.isend, x, (rank + 1) % world),
           dist.P2POp(dist.irecv, torch.empty_like(x), (rank - 1) % world)]
    for request in dist.batch_isend_irecv(ops):  # both sides post their half of each exchange
        request.wait()
dist.all_reduce(x)  # collectives after the exchange, on every rank
''' + _END, [DOCS_DIST])

STUCK = Fix(
    "A collective every rank issued did not finish. Never started: work queued before it on the GPU (a "
    "long or hung kernel, a copy) or a rank that is slow to join; started: the transport (network, NVLink, "
    "NCCL itself). Look at what ran before it (a profile of the step, py-spy, `NCCL_DEBUG=INFO`), and "
    "record start times next time with TORCH_NCCL_ENABLE_TIMING=1.",
    _INIT + '''x = torch.ones(1024)
if torch.cuda.is_available():
    torch.cuda.synchronize()  # while debugging: the compute before the collective must finish
dist.all_reduce(x)
''' + _END, [DOCS_FR, DOCS_DEBUG])

TIMEOUT = Fix(
    "Raise the process-group timeout above the longest legitimate wait (a long kernel, checkpointing or "
    "evaluation on one rank): the default is 10 minutes for NCCL and 30 for gloo.",
    _INIT.replace("minutes=10", "minutes=30") + '''dist.all_reduce(torch.ones(4))
''' + _END, [DOCS_DIST])

ENABLE_FR = Fix(
    "Turn on the Flight Recorder so the next hang names the rank and the collective: it records the last "
    "collectives of every rank (op, sizes, state, Python frames) and dumps them on a timeout; then run "
    "`workbench analyze` on the folder of dumps and logs.",
    '''import os
import tempfile

# set in the launcher's environment (or before the process group is created)
prefix = os.path.join(tempfile.gettempdir(), "fr_rank_")
os.environ["TORCH_FR_BUFFER_SIZE"] = "2000"        # record the last 2000 collectives per rank
os.environ["TORCH_FR_DUMP_TEMP_FILE"] = prefix       # NCCL writes <prefix><rank> on a timeout
os.environ["TORCH_NCCL_DUMP_ON_TIMEOUT"] = "1"
os.environ["TORCH_NCCL_ENABLE_TIMING"] = "1"         # record when each collective started
import torch
import torch.distributed as dist

dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
try:
    dist.all_reduce(torch.ones(4))
finally:  # gloo does not dump by itself: write the record when a collective fails
    with open(f"{prefix}{dist.get_rank()}", "wb") as dump:
        dump.write(torch._C._distributed_c10d._dump_fr_trace())
dist.destroy_process_group()
''', [DOCS_FR])
