"""A KV cache grown with torch.cat: the whole cache is copied again at every decode step."""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import kernel_rows

CAT_KERNEL = re.compile(r"CatArrayBatchedCopy")

CODE = '''import torch
import torch.nn.functional as F

# One layer's keys and values as the trace shows them: a step appends {new} to each.
batch, heads, _, head_dim = {new}
max_len, steps = 64, 8  # your max prompt + new tokens


class StaticKV:
    """Preallocated keys/values written in place: no copy of the old entries, fixed shapes for CUDA graphs."""

    def __init__(self, device="cpu", dtype=torch.float32):
        self.k = torch.zeros(batch, heads, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)

    def update(self, k_new, v_new, pos):  # pos: LongTensor of the new positions
        self.k.index_copy_(2, pos, k_new)
        self.v.index_copy_(2, pos, v_new)
        return self.k, self.v


cache, k_cat, v_cat = StaticKV(), None, None
for step in range(steps):
    q, k_new, v_new = (torch.randn(batch, heads, 1, head_dim) for _ in range(3))
    pos = torch.tensor([step])
    k, v = cache.update(k_new, v_new, pos)
    mask = (torch.arange(max_len) <= step).view(1, 1, 1, max_len)  # attend to the filled positions only
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    k_cat = k_new if k_cat is None else torch.cat([k_cat, k_new], dim=2)  # what the trace does, for comparison
    v_cat = v_new if v_cat is None else torch.cat([v_cat, v_new], dim=2)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k_cat, v_cat), atol=1e-5)

# Hugging Face transformers: the same, built in (then compile the forward for CUDA graphs):
#   out = model.generate(**inputs, max_new_tokens=256, cache_implementation="static")
#   model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
# A serving engine (vLLM, SGLang) keeps a paged cache and writes only the new tokens.
'''


@rule("kv-cache-concat", "memory", TRACE_KINDS,
      "the KV cache grows with torch.cat: every decode step copies the whole cache again")
@on_traces
def kv_cache_concat(ctx: TraceContext) -> Iterator[Finding]:
    m = ctx.metrics
    if m.get("kv_cache") != "concat" or not m.get("decode_passes"):
        return
    first, last = m["kv_concat_elements_first_decode"], m["kv_concat_elements_last_decode"]
    passes, width = int(m["decode_passes"]), float(m.get("weight_element_bytes") or 4)
    tokens = max(int(m.get("decode_tokens") or passes) // passes, 1)  # tokens per decode pass
    kernels = np.flatnonzero((ctx.kinds == cat.COMPUTE) & ctx.events.name_mask(CAT_KERNEL.search))
    cat_us = float(ctx.events.dur[kernels].sum())
    growth = (last - first) / max(passes - 1, 1)
    yield finding_of(
        "kv-cache-concat",
        title=f"The KV cache is copied again at every decode step: {last * width / 2**20:.1f} MiB by the last of "
              f"{passes} steps, growing each step; write new keys and values in place",
        evidence={
            "decode_passes": passes,
            "bytes_copied_first_decode": int(first * width),
            "bytes_copied_last_decode": int(last * width),
            "bytes_copied_per_token_last_decode": int(last * width / tokens),
            "growth_bytes_per_step": int(growth * width),
            "new_entry_shape": m.get("kv_concat_new_shape"),
            "cat_kernel_ms": round(cat_us / 1000, 3),
            "kernels": kernel_rows(ctx, kernels) if len(kernels) else [],
            "expected_effect": "copies of the new token's entries only (constant per step, not growing); fixed "
                               "shapes that CUDA graphs and torch.compile can capture",
        },
        gain=ctx.gain(cat_us, "GPU time of the torch.cat copy kernels, which a cache written in place "
                              "(index_copy_) does not run; the copies of the new entries that remain are not counted"),
        fix=Fix(summary="Preallocate the cache and write each step's keys/values in place (index_copy_), or use "
                        "transformers' cache_implementation=\"static\" with torch.compile, or a paged engine.",
                code=CODE.format(new=tuple(m.get("kv_concat_new_shape") or (1, 12, 1, 64))),
                docs=["https://huggingface.co/docs/transformers/kv_cache",
                      "https://pytorch.org/docs/stable/generated/torch.Tensor.index_copy_.html"]),
    )
