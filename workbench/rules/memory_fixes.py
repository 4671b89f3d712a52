"""Fixes for out-of-memory errors, chosen from the evidence: what was live, what the allocator had set."""

from __future__ import annotations

import re
from typing import Any

from workbench.rules.finding import Fix
from workbench.rules.memory_facts import ALLOC_CONF_DOCS, OomFacts
from workbench.units import format_bytes

_EXPLICIT_ATTENTION = re.compile(r"(@|matmul|bmm|baddbmm|einsum).*transpose|softmax|masked_fill")
ACTIVATION_SHARE = 0.4
OPTIMIZER_SHARE = 0.2
PARAMETER_SHARE = 0.4


def alloc_conf_advice(facts: OomFacts, metrics: dict[str, Any]) -> dict[str, Any]:
    """Which PYTORCH_CUDA_ALLOC_CONF settings would help, never one that is already on, and why."""
    settings = {k: facts.settings[k] for k in ("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments", "max_split_size",
                                               "garbage_collection_threshold") if k in facts.settings}
    notes, recommend = [], []
    joined = metrics.get("largest_free_if_segments_joined_bytes_at_oom")
    if settings.get("expandable_segments"):
        notes.append("expandable_segments is already on (allocator_settings) and did not help: it lets a segment "
                     "grow in place, but it cannot move live tensors, and live blocks split the free memory into "
                     f"pieces of at most {format_bytes(facts.largest_free_block or 0)}")
    elif joined is not None and joined < facts.requested:
        notes.append("expandable_segments:True would not help here: even with all segments joined, the largest "
                     f"free run would be {format_bytes(joined)}; live blocks, not segment boundaries, split the memory")
    else:
        recommend.append("expandable_segments:True")
        notes.append("expandable_segments:True lets segments grow in place, so free memory at segment ends "
                     "joins up" + (f" (joined, the largest free run would be {format_bytes(joined)})" if joined else ""))
    split = facts.settings.get("max_split_size", -1)
    if isinstance(split, int) and 0 < split < 1 << 60:
        notes.append(f"max_split_size_mb is already set ({format_bytes(split)}): blocks above it are not split, "
                     "but the free memory here lies between smaller live blocks")
    elif not settings.get("expandable_segments") and (
            metrics.get("largest_partly_used_segment_bytes_at_oom") or 0) >= facts.requested:
        recommend.append(f"max_split_size_mb:{max(128, facts.requested // 2 // (1 << 20))}")
        notes.append("a segment large enough for the request was split by smaller live blocks; max_split_size_mb "
                     "keeps blocks above that size whole for large requests")
    summary = "Keep long-lived tensors together (allocate them first, or in one preallocated buffer) and free the "
    summary += "short-lived ones before the large request."
    if recommend:
        summary += f" Also set PYTORCH_CUDA_ALLOC_CONF={','.join(recommend)} before the first CUDA allocation."
    return {"settings": settings, "notes": notes, "recommend": recommend, "summary": summary}


def fragmentation_code(advice: dict[str, Any]) -> str:
    env = ""
    if advice["recommend"]:
        env = ("# Must be set before the first CUDA allocation (e.g. at the top of the script or in the launcher).\n"
               f'os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "{",".join(advice["recommend"])}")\n')
    return f'''
import os

{env}import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
rows, width = 256, 1 << 14

# Before: each step allocated several tensors and kept one, so survivors ended up scattered
# through the cache and split the freed memory into pieces too small for a large request.
# After: survivors go into one buffer allocated up front; everything freed stays contiguous.
survivors = torch.empty(rows, width, device=device)
for i in range(rows):
    scratch = torch.randn(3, width, device=device)  # short-lived
    survivors[i].copy_(scratch[0])                   # keep only what must live on, inside the buffer
    del scratch
if torch.cuda.is_available():
    torch.cuda.empty_cache()  # segments with no live block go back to the driver
large = torch.empty(8 * rows * width, device=device)  # now served from one free run
'''


def capacity_fix(facts: OomFacts, categories: list[dict[str, Any]], training: bool) -> Fix:
    """Cut what dominates live memory: activations, optimizer state, or the parameters themselves."""
    total = sum(r["bytes"] for r in categories) or 1
    share = {r["category"]: r["bytes"] / total for r in categories}
    summaries, parts, docs = [], [], []
    activations = share.get("activations and forward temporaries", 0.0)
    attention = any(_EXPLICIT_ATTENTION.search(frame) for frame in facts.stack[:3])
    if attention:
        summaries.append("The failing line computes attention explicitly, materializing the (T x T) scores: use "
                         "torch.nn.functional.scaled_dot_product_attention, whose flash and memory-efficient "
                         "kernels never store them.")
        parts.append(_SDPA_CODE)
        docs.append("https://docs.pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html")
    if activations >= ACTIVATION_SHARE or not categories:
        summaries.append(f"Activations hold {activations:.0%} of live memory: " if categories else "")
        summaries[-1] += ("checkpoint blocks (recompute in backward), split the batch into micro-batches with "
                          "gradient accumulation, and run the forward under bf16 autocast." if training else
                          "run under torch.inference_mode(), lower the batch size, and use bf16 weights.")
        parts.append(_ACTIVATION_CODE if training else _INFERENCE_CODE)
        docs.append("https://docs.pytorch.org/docs/stable/checkpoint.html")
    if share.get("optimizer state", 0.0) >= OPTIMIZER_SHARE:
        summaries.append(f"Optimizer state holds {share['optimizer state']:.0%}: Adafactor keeps factored second "
                         "moments instead of two full copies of the parameters; or shard it (ZeRO/FSDP).")
        parts.append(_OPTIMIZER_CODE)
    if share.get("parameters and buffers", 0.0) >= PARAMETER_SHARE:
        summaries.append(f"Parameters hold {share['parameters and buffers']:.0%}: keep weights in bf16, or shard "
                         "them across GPUs with FSDP.")
        parts.append(_PARAMETER_CODE)
    if training:
        summaries.append("Call the optimizer's zero_grad(set_to_none=True) so gradients are freed between steps.")
    if facts.backend == "mps":
        summaries.append("On Apple GPUs the limit is PyTorch's share of unified memory "
                         "(PYTORCH_MPS_HIGH_WATERMARK_RATIO); raising it risks swapping the whole system.")
    docs.append(ALLOC_CONF_DOCS)
    return Fix(summary=" ".join(s for s in summaries if s), code="\n".join(parts), docs=docs)


_SDPA_CODE = '''
import torch
import torch.nn.functional as F

device = "cuda" if torch.cuda.is_available() else "cpu"
q, k, v = (torch.randn(2, 8, 256, 64, device=device) for _ in range(3))
# Before: att = (q @ k.transpose(-2, -1)) / k.size(-1) ** 0.5; att = att.softmax(-1); out = att @ v
out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # no (T x T) tensor is stored
'''

_ACTIVATION_CODE = '''
import torch
from torch.utils.checkpoint import checkpoint

device = "cuda" if torch.cuda.is_available() else "cpu"
blocks = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 128))
                             for _ in range(4)).to(device)
opt = torch.optim.AdamW(blocks.parameters(), lr=1e-4)
batch = torch.randn(64, 128, device=device)
accumulation = 4  # same effective batch, a quarter of the activations alive at once
opt.zero_grad(set_to_none=True)
for micro in batch.chunk(accumulation):
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        h = micro
        for block in blocks:
            h = checkpoint(block, h, use_reentrant=False)  # recomputed in backward instead of stored
        loss = h.float().pow(2).mean() / accumulation
    loss.backward()
opt.step()
opt.zero_grad(set_to_none=True)
'''

_INFERENCE_CODE = '''
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 128)).to(device)
model = model.to(torch.bfloat16).eval()  # half the weight memory
with torch.inference_mode():  # no autograd state is kept for backward
    for micro in torch.randn(64, 128, device=device, dtype=torch.bfloat16).split(16):
        out = model(micro)
'''

_OPTIMIZER_CODE = '''
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Linear(256, 256).to(device)
# AdamW keeps two fp32 copies of every parameter; Adafactor keeps row and column statistics.
opt = torch.optim.Adafactor(model.parameters(), lr=1e-2)
model(torch.randn(8, 256, device=device)).sum().backward()
opt.step()
opt.zero_grad(set_to_none=True)
'''

_PARAMETER_CODE = '''
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Linear(256, 256).to(device=device, dtype=torch.bfloat16)  # bf16 weights: half the bytes
print(sum(p.numel() * p.element_size() for p in model.parameters()), "bytes of parameters")
'''
