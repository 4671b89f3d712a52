"""The bytes a decode pass must move, each with its source.

Weights, most exact source first: the GEMM operators' weight shapes in one decode pass (`operator_shapes`); for a
graph-replayed pass, whose kernels carry no shapes, the GEMM operators run eagerly before the first replay
(warm-up, capture: `eager_shapes`), else each replayed GEMM kernel's tile (its name) and launch grid
(`kernel_grid`), else a prefill pass's operators (`prefill_shapes`). The element size comes from the GEMM
kernels' names (else the type their neighbours are templated on). KV bytes: the attention operators' key and value
shapes, else what `torch.cat` re-copied (a concatenated cache), else the engine's context lengths (vLLM's step
annotation) times the KV cache's row. Where a GEMM cannot be sized (MoE grouped GEMMs and custom kernels in graphs,
no grid), the weight bytes are unknown and say so rather than guess.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.operators import kernel_launchers
from workbench.models.trace import MISSING, EventTable

if TYPE_CHECKING:
    from workbench.analyses.inference import Passes

WEIGHT_OPS = {"aten::linear": 1, "aten::addmm": 2, "aten::mm": 1}  # op -> position of its weight input
# fused low-bit GEMMs: op -> (position of its weight input, bytes per recorded element, weights per recorded
# element): int8/fp8 one byte a weight; int4 packed eight to an int32 (CUDA tinygemm) or two to a byte (CPU)
LOW_BIT_OPS = {"aten::_weight_int8pack_mm": (1, 1, 1), "aten::_int_mm": (1, 1, 1), "aten::_scaled_mm": (1, 1, 1),
               "aten::_weight_int4pack_mm": (1, 4, 8), "aten::_weight_int4pack_mm_for_cpu": (1, 1, 2),
               "aten::_weight_int4pack_mm_with_scales_and_zeros": (1, 4, 8)}
SDPA = re.compile(r"^aten::(scaled_dot_product_attention|_scaled_dot_product_\w+_attention)$")
DTYPE_BYTES = ((re.compile(r"fp8|e4m3|e5m2|f8f6f4", re.IGNORECASE), 1), (re.compile(r"int4|w4a|mxfp4|nvfp4", re.IGNORECASE), 0.5),
               (re.compile(r"bf16|bfloat16|f16|half|fp16|^Cijk_\w*?_(BBS|HHS|BSS|HSS)_", re.IGNORECASE), 2))
GEMM_KERNEL = re.compile(r"gemm|gemv|matmul|nvjet|xmma|Cijk_", re.IGNORECASE)
# a GEMM's (or split-KV attention's) reduction or scatter: no weights
GEMM_EPILOGUE = re.compile(r"finalize|splitKreduce|combine", re.IGNORECASE)
FLOAT32 = re.compile(r"\bfloat\b|f32|fp32|sgemm", re.IGNORECASE)  # after the narrower types: a template on `float`
# a GEMM kernel's tile, rows x columns: nvjet `_64x8_`, CUTLASS/cuBLAS `_128x64x32_`, `tilesize64x128x64`,
# Tensile `MT256x192x64`
GEMM_TILE = re.compile(r"(?:tilesize|MT|_)(\d{1,4})x(\d{1,4})(?:x\d{1,4})?(?:_|$)")
SPLIT_K = re.compile(r"splitK", re.IGNORECASE)
ATTENTION_KERNEL = re.compile(r"attention|attn|fmha|sdpa|flash", re.IGNORECASE)
GATED_ACTIVATION = re.compile(r"and_mul|swiglu|geglu", re.IGNORECASE)
# grouped GEMMs of mixture-of-experts layers (vLLM/SGLang fused_moe, triton_kernels matmul_ogs, CK/aiter, CUTLASS)
MOE_KERNEL = re.compile(r"fused_moe|moe_gemm|moe_align|matmul_ogs|grouped_gemm|group_gemm|ck_moe|fmoe|cutlass_moe|"
                        r"_grouped_mm|expert", re.IGNORECASE)
# fused-experts operators whose inputs hold the experts' weights ([experts, rows, columns]) and the routing (top-k ids,
# [tokens, k]): vLLM/SGLang `inplace_fused_experts` / `outplace_fused_experts` / `fused_moe`, aiter `fused_moe`
MOE_OP = re.compile(r"fused_experts|fused_moe|moe_forward|_grouped_mm|grouped_gemm", re.IGNORECASE)
# GEMMs of activations by activations (attention scores and outputs): no weights to read
ACTIVATION_GEMM_OP = re.compile(r"^aten::(bmm|baddbmm|_?scaled_dot_product|_flash_attention|_efficient_attention"
                                r"|einsum)")
# the element type of a paged KV cache: vLLM's cache write names an fp8 cache by its Fp8KVCacheDataType (0: as the
# model)
KV_FP8 = re.compile(r"Fp8KVCacheDataType\)[1-9]|kv_cache_dtype\w*fp8", re.IGNORECASE)
KV_WRITE = re.compile(r"reshape_and_cache|store_kvcache|concat_and_cache|append_paged", re.IGNORECASE)


def gemm_element_bytes(events: EventTable, kinds: np.ndarray) -> float:
    """Bytes per weight element, read off the GEMM kernel that ran longest: 2 for 16-bit, 1 for fp8, else 4."""
    kernels = np.flatnonzero((kinds == cat.COMPUTE) & events.name_mask(GEMM_KERNEL.search))
    if not len(kernels):
        return 4
    time = np.bincount(events.name[kernels], weights=events.dur[kernels], minlength=len(events.names))
    name = events.names[int(np.argmax(time))]
    size = next((size for pattern, size in DTYPE_BYTES if pattern.search(name)), None)
    return size if size is not None else kernel_template_bytes(events, kinds)


def kernel_template_bytes(events: EventTable, kinds: np.ndarray) -> float:
    """The element size the compute kernels' names state (`c10::BFloat16`, `__nv_bfloat16`, `float`...), weighted
    by their time: for GEMM kernels whose names do not (cuBLAS's nvjet); 4 when none states one."""
    kernels = np.flatnonzero(kinds == cat.COMPUTE)
    time = np.bincount(events.name[kernels], weights=events.dur[kernels], minlength=len(events.names))
    sizes: dict[float, float] = {}
    for code in np.flatnonzero(time).tolist():
        name = events.names[code]
        size = next((size for pattern, size in (*DTYPE_BYTES, (FLOAT32, 4)) if pattern.search(name)), None)
        if size is not None:
            sizes[size] = sizes.get(size, 0.0) + float(time[code])
    return max(sizes, key=sizes.__getitem__) if sizes else 4


def pass_weights(events: EventTable, start_us: float, end_us: float) -> tuple[int, int]:
    """(weight elements read, matrix-multiply FLOPs per token) of the GEMM operators in one pass's span."""
    host = events.category_mask(cat.HOST_OP_CATEGORIES)
    inside = np.flatnonzero(host & (events.ts >= start_us) & (events.ts < end_us))
    elements = _weight_elements(events, _gemm_ops(events, inside))
    return elements, 2 * elements


def eager_weights(events: EventTable, before_us: float, gemms: int) -> int:
    """Weight elements of the last `gemms` GEMM operators run before `before_us` (the eager warm-up or capture
    pass before a graph's first replay); 0 where fewer ran."""
    host = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES) & (events.ts < before_us))
    chosen = _gemm_ops(events, host[np.argsort(events.ts[host], kind="stable")])
    return _weight_elements(events, chosen[-gemms:]) if gemms and len(chosen) >= gemms else 0


def _gemm_ops(events: EventTable, ops: np.ndarray) -> np.ndarray:
    """The GEMM operators among `ops` that hold a weight: `aten::linear` where any ran, else addmm/mm."""
    names = events.name_array[events.name[ops]]
    linear = names == "aten::linear"
    return ops[linear] if linear.any() else ops[np.isin(names, ["aten::addmm", "aten::mm"])]


def _weight_elements(events: EventTable, chosen: np.ndarray) -> int:
    elements = 0
    for i in chosen.tolist():
        dims = events.dims_of_code(int(events.shapes[i]))
        at = WEIGHT_OPS[events.names[events.name[i]]]
        if len(dims) > at and isinstance(dims[at], list) and len(dims[at]) == 2:
            elements += math.prod(dims[at])
    return elements


def is_gemm(name: str) -> bool:
    """A GEMM kernel that reads weights (not its split-K reduction or MoE scatter)."""
    return bool(GEMM_KERNEL.search(name)) and not GEMM_EPILOGUE.search(name)


def grid_weights(events: EventTable, kernels: np.ndarray) -> tuple[int, list[str]]:
    """(weight elements, names of the GEMM kernels left unsized) of one replayed pass, from its compute kernels in
    time order. A GEMM kernel's output width is its blocks (the launch grid) times its tile's longer side (a
    decode's few tokens fit the shorter one); a split-K kernel's blocks cover its width times the splits: the
    widest unsplit width that divides them. Its input width: the previous GEMM's output where only elementwise
    kernels ran between (an MLP's up then down projection; half of it after a gated `*_and_mul` activation), the
    previous GEMM's input where nothing ran between (two GEMMs of one input), else the residual width (the most
    common output width: after attention, or the first GEMM)."""
    gemms, unsized = [], []
    for i in kernels.tolist():
        name = events.names[events.name[i]]
        if not is_gemm(name):
            continue
        tile, grid = GEMM_TILE.search(name), events.grid_of(i)
        if tile is None or grid is None or MOE_KERNEL.search(name):  # a grouped GEMM's blocks tile tokens x experts
            unsized.append(name)
            continue
        gemms.append([i, math.prod(grid) * max(int(tile.group(1)), int(tile.group(2))), bool(SPLIT_K.search(name))])
    widths = sorted({g[1] for g in gemms if not g[2]}, reverse=True)
    for g in gemms:
        if g[2]:
            g[1] = next((w for w in widths if g[1] % w == 0), 0)
    if unsized or not gemms or not all(g[1] for g in gemms):
        return 0, unsized or [events.names[events.name[g[0]]] for g in gemms if not g[1]]
    residual = Counter(g[1] for g in gemms).most_common(1)[0][0]
    position = {int(i): k for k, i in enumerate(kernels.tolist())}
    elements, previous = 0, None  # (output width, input width, position) of the last GEMM
    for i, width, _ in gemms:
        here = position[i]
        between = [events.names[events.name[j]] for j in kernels[previous[2] + 1:here].tolist()] if previous else []
        if previous is None or any(ATTENTION_KERNEL.search(n) for n in between):
            k = residual
        elif not between:
            k = previous[1]
        else:
            k = previous[0] // 2 if any(GATED_ACTIVATION.search(n) for n in between) else previous[0]
        elements += width * k
        previous = (width, k, here)
    return elements, []


def pass_moe_weights(events: EventTable, start_us: float, end_us: float) -> tuple[int, int, dict[str, Any] | None]:
    """(expert weight elements read, expert weights one token multiplies, what says so) of the fused-experts
    operators in one pass's span. A call's experts are its inputs of shape [experts, rows, columns] (w1, w2); its
    routing the [tokens, k] input after them (top-k ids, as many rows as the hidden states). One token reads
    exactly its k experts; T tokens read between k and min(experts, T x k) of them, which one the trace does not
    record: the upper bound is counted and marked inexact. A call without those inputs (routing by name only) is
    left unsized."""
    host = events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(MOE_OP.search)
    elements, per_token, calls, seen_end, rows = 0, 0, [], -np.inf, None
    for i in np.flatnonzero(host & (events.ts >= start_us) & (events.ts < end_us)).tolist():
        if events.ts[i] < seen_end:  # an inner implementation of a call already counted
            continue
        seen_end = events.end[i]
        dims = events.dims_of_code(int(events.shapes[i]))
        shapes = [d for d in dims if isinstance(d, list) and d and all(type(x) is int for x in d)]
        experts = [d for d in shapes if len(d) == 3]
        hidden = shapes[0] if shapes and len(shapes[0]) == 2 else None
        count = experts[0][0] if experts and all(d[0] == experts[0][0] for d in experts) else 0
        after = shapes[shapes.index(experts[-1]) + 1:] if count else []
        routing = next((d for d in after if len(d) == 2 and hidden and d[0] == hidden[0] and d[1] < count), None)
        if not count or routing is None:
            calls.append(None)
            continue
        tokens, k = routing
        read = k if tokens == 1 else min(count, tokens * k)
        elements += read * sum(math.prod(d[1:]) for d in experts)
        per_token += k * sum(math.prod(d[1:]) for d in experts)
        calls.append((count, k, tokens, read))
        rows = rows or (count, k, tokens, read)
    if not calls:
        return 0, 0, None
    sized = [c for c in calls if c is not None]
    summary = {"calls": len(calls), "unsized_calls": len(calls) - len(sized)}
    if rows:
        count, k, tokens, read = rows
        summary.update({"experts": count, "top_k": k, "tokens": tokens, "experts_read_per_call": read,
                        "exact": all(c[2] == 1 for c in sized),
                        "routing": "one token reads its top-k experts" if tokens == 1 else
                        "not recorded: the upper bound min(experts, tokens x top_k) is counted"})
    return elements, per_token, summary


def pass_low_bit_weights(events: EventTable, start_us: float, end_us: float) -> tuple[int, float]:
    """(weights, bytes) the fused low-bit GEMM operators in one pass's span read (`LOW_BIT_OPS`)."""
    host = events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(LOW_BIT_OPS.__contains__)
    weights, size = 0, 0.0
    for i in np.flatnonzero(host & (events.ts >= start_us) & (events.ts < end_us)).tolist():
        at, element_bytes, per_element = LOW_BIT_OPS[events.names[events.name[i]]]
        dims = events.dims_of_code(int(events.shapes[i]))
        if len(dims) > at and isinstance(dims[at], list) and dims[at] and all(type(d) is int for d in dims[at]):
            weights += math.prod(dims[at]) * per_element
            size += math.prod(dims[at]) * element_bytes
    return weights, size


def pass_kv_elements(events: EventTable, start_us: float, end_us: float) -> int:
    """Key and value elements the attention operators in one pass read."""
    return sum(_kv_per_call(events, start_us, end_us))


def eager_kv_elements(events: EventTable, before_us: float, calls: int) -> int:
    """Key and value elements of the last `calls` attention operators run before `before_us` (the eager pass before
    a graph's first replay: a static cache's full length); 0 where fewer ran."""
    per_call = _kv_per_call(events, -np.inf, before_us)
    return sum(per_call[-calls:]) if calls and len(per_call) >= calls else 0


def _kv_per_call(events: EventTable, start_us: float, end_us: float) -> list[int]:
    """Per SDPA call in the span, in time order, the elements of its key and value inputs."""
    host = events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(SDPA.match)
    inside = np.flatnonzero(host & (events.ts >= start_us) & (events.ts < end_us))
    out, seen_parent_end = [], -np.inf
    for i in inside[np.argsort(events.ts[inside], kind="stable")].tolist():
        if events.ts[i] < seen_parent_end:  # the public op's inner implementation: counted once
            continue
        dims = events.dims_of_code(int(events.shapes[i]))
        if len(dims) >= 3 and all(isinstance(d, list) and d for d in dims[1:3]):
            out.append(math.prod(dims[1]) + math.prod(dims[2]))
            seen_parent_end = events.end[i]
    return out


def decode_weights(events: EventTable, kinds: np.ndarray, passes: Passes, bounds: np.ndarray, k: int,
                    kernels: np.ndarray, graph_kernels: np.ndarray) -> tuple[int, float, str | None, list[str]]:
    """(weight elements, low-bit weight bytes, source, GEMM kernels left unsized) of pass `k`; no source where
    any GEMM, or any expert a token reads, cannot be sized."""
    start, end = float(passes.start_us[k]), float(bounds[k])
    experts, _, moe = pass_moe_weights(events, start, end)
    names = [events.names[events.name[i]] for i in kernels.tolist()]
    moe_kernels = [n for n in names if MOE_KERNEL.search(n)]
    moe_unknown = [] if experts and not moe["unsized_calls"] else \
        moe_kernels or (["fused-experts operator without expert shapes or routing"] if moe else [])
    graph_gemms = [i for i in graph_kernels.tolist() if is_gemm(events.names[events.name[i]])]
    if not graph_gemms:
        custom = custom_gemms(events, kinds, kernels)
        if moe_unknown or custom:
            return 0, 0.0, None, moe_unknown + custom
        weights = pass_weights(events, start, end)[0] + experts
        low_bit = pass_low_bit_weights(events, start, end)[1]
        return weights, low_bit, "operator_shapes" if weights or low_bit else None, []
    grid, unsized = grid_weights(events, kernels)
    if moe_unknown:
        return 0, 0.0, None, unsized or moe_unknown
    first_replay = float(events.ts[passes.event].min())
    eager = eager_weights(events, first_replay, len(graph_gemms)) if passes.source == "graph_replay" else 0
    if eager:
        return eager, 0.0, "eager_shapes", []
    if grid:
        return grid, 0.0, "kernel_grid", []
    for j in (j for j, p in enumerate(passes.phase) if p == "prefill"):
        elements = pass_weights(events, float(passes.start_us[j]), float(bounds[j]))[0]
        if elements:
            return elements, 0.0, "prefill_shapes", []
    return 0, 0.0, None, unsized


def custom_gemms(events: EventTable, kinds: np.ndarray, kernels: np.ndarray) -> list[str]:
    """GEMM kernels among `kernels` that neither a weight operator (`WEIGHT_OPS`, `LOW_BIT_OPS`, fused experts) nor an
    activation GEMM (bmm, attention) launched or encloses: a custom op's weights the shapes do not show, each named
    `kernel (launched by op)`."""
    gemm = np.array([is_gemm(events.names[events.name[i]]) and not MOE_KERNEL.search(events.names[events.name[i]])
                     for i in kernels.tolist()], dtype=bool)
    if not gemm.any():
        return []
    ops = events.category_mask(cat.HOST_OP_CATEGORIES)
    gpu, launcher = kernel_launchers(events, kinds, ops)
    by_kernel = dict(zip(gpu.tolist(), launcher.tolist()))
    known = ops & events.name_mask(lambda n: n in WEIGHT_OPS or n in LOW_BIT_OPS or bool(MOE_OP.search(n))
                                   or bool(ACTIVATION_GEMM_OP.match(n)))
    out = []
    for i in kernels[gemm].tolist():
        op = by_kernel.get(i, MISSING)
        if op == MISSING:
            continue  # launched outside any recorded operator: nothing to say which
        around = np.flatnonzero(known & (events.ts <= events.ts[op]) & (events.end >= events.end[op])
                                & (events.tid == events.tid[op]) & (events.pid == events.pid[op]))
        if not len(around):
            out.append(f"{events.names[events.name[i]][:80]} (launched by {events.names[events.name[op]]})")
    return out


def unsized_summary(names: list[str]) -> dict[str, Any]:
    """The GEMM kernels whose weights the trace does not size: how many, how many are MoE grouped GEMMs (whose
    routing, the experts each token reads, no kernel records), the names by count."""
    counts = Counter(names)
    return {"kernels": len(names), "moe_kernels": sum(n for name, n in counts.items() if MOE_KERNEL.search(name)),
            "names": [{"name": name[:120], "count": n} for name, n in counts.most_common(8)],
            "why": "no shape in the trace sizes their weights: graph-replayed kernels without a launch grid, MoE "
                   "grouped GEMMs without expert shapes or routing, custom operators"}


def decode_kv_bytes(events: EventTable, kinds: np.ndarray, passes: Passes, bounds: np.ndarray, k: int,
                     concat: np.ndarray, width: float, graph_kernels: np.ndarray) -> tuple[float, str | None]:
    """(KV bytes pass `k`'s decode requests read, source): SDPA key/value shapes, for a graph replay those of the
    eager pass before the first replay, the KV re-copied by `torch.cat`, else the engine's context lengths times
    a cached position's bytes (the cache writes' key shapes: layers x K and V x heads x head size, at the cache's
    element size)."""
    start, end = float(passes.start_us[k]), float(bounds[k])
    sdpa = pass_kv_elements(events, start, end)
    if sdpa:
        return sdpa * width, "sdpa_shapes"
    attention = sum(1 for i in graph_kernels.tolist() if ATTENTION_KERNEL.search(events.names[events.name[i]])
                    and not GEMM_EPILOGUE.search(events.names[events.name[i]]))
    eager = eager_kv_elements(events, float(events.ts[passes.event].min()), attention) \
        if passes.source == "graph_replay" else 0
    if eager:
        return eager * width, "eager_sdpa_shapes"
    if concat[k]:
        return int(concat[k]) * width, "concat_copies"
    context = passes.decode_context[k] if passes.decode_context is not None else -1
    if context <= 0:
        return 0.0, None
    # a cached position's elements: from this step's cache writes, else (written inside a graph) another step's
    writes = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(KV_WRITE.search))
    elements = np.zeros(len(writes), dtype=np.int64)
    for n, i in enumerate(writes.tolist()):
        dims = events.dims_of_code(int(events.shapes[i]))
        if dims and isinstance(dims[0], list) and len(dims[0]) == 3 and all(type(d) is int for d in dims[0]):
            elements[n] = 2 * dims[0][1] * dims[0][2]  # K and V [tokens, heads, head size]: one layer
    step = np.searchsorted(passes.start_us, events.ts[writes], side="right") - 1
    inside = (step >= 0) & (events.ts[writes] < bounds[np.maximum(step, 0)]) & (elements > 0)
    per_step = np.bincount(step[inside], weights=elements[inside], minlength=len(passes))
    position = int(per_step[k]) if per_step[k] else int(next((p for p in per_step if p), 0))
    if not position:
        return 0.0, None
    return float(context * position * kv_element_bytes(events, kinds, width)), "engine_context_lengths"


def kv_element_bytes(events: EventTable, kinds: np.ndarray, width: float) -> float:
    """The KV cache's element size, from the cache-write kernel's name (an fp8 cache: 1), else `width`."""
    kernels = np.flatnonzero((kinds == cat.COMPUTE) & events.name_mask(KV_WRITE.search))
    if not len(kernels):
        return width
    name = events.names[events.name[kernels[0]]]
    if KV_FP8.search(name):
        return 1
    name = name.replace("Fp8KVCacheDataType", "")
    return next((size for pattern, size in DTYPE_BYTES if pattern.search(name)), width)
