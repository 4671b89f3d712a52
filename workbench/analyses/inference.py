"""Model forward passes of an inference trace: prefill, decode, mixed, verify and draft passes.

Sources, most specific first: engine step annotations (vLLM's, SGLang's, TensorRT-LLM's: `engine_steps.py`), then the
model's token embedding (one `aten::embedding` of the largest vocabulary per pass; its ids' `[batch,
new tokens]` say prefill or decode), then one CUDA/HIP graph launch per replayed step. A pass's GPU time
is that of the kernels launched from its host span; its wall time runs to the next pass's start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.engine_steps import engine_steps
from workbench.analyses.model_passes import model_passes
from workbench.analyses.quantized_gemms import QuantizedWeights, quantized_weights
from workbench.analyses.operators import lookup
from workbench.analyses.roofline import roofline_metrics
from workbench.models.trace import MISSING, EventTable, Trace
from workbench.units import US_PER_MS

GRAPH_LAUNCH = re.compile(r"^(cuda|hip|cu)GraphLaunch(_ptsz)?$")  # runtime, driver; per-thread default stream
EMBEDDING = "aten::embedding"
TRAINING = re.compile(r"^autograd::engine::evaluate_function|^Optimizer\.step#")
TRANSFORMERS = re.compile(r"(^|/)transformers/(models|generation)/")

# (backend, kernel or operator name pattern), first match wins
ATTENTION_OPS = (
    ("sdpa_flash", re.compile(r"^aten::_scaled_dot_product_flash_attention")),
    ("sdpa_mem_efficient", re.compile(r"^aten::_scaled_dot_product_efficient_attention")),
    ("sdpa_cudnn", re.compile(r"^aten::_scaled_dot_product_cudnn_attention")),
    ("sdpa_math", re.compile(r"^aten::_scaled_dot_product_attention_math")),
)
ATTENTION_KERNELS = (
    ("vllm_paged", re.compile(r"paged_attention_v[12]|vllm::.*paged_attention", re.IGNORECASE)),
    ("flashinfer", re.compile(r"flashinfer::.*(Prefill|Decode|Attention|MLA)", re.IGNORECASE)),
    ("flash_attn", re.compile(r"^void flash::|flash_fwd_splitkv_kernel|flash_fwd_kernel", re.IGNORECASE)),
    ("sdpa_cudnn", re.compile(r"cudnn.*sdpa|sdpa.*cudnn|fort_native_sdpa", re.IGNORECASE)),
    ("ck_fmha", re.compile(r"ck_tile.*Fmha|aiter.*(fmha|mha|pa_)", re.IGNORECASE)),
    ("triton", re.compile(r"unified_attention|attn_fwd|_fwd_kernel|triton_.*attention", re.IGNORECASE)),
)
KV_PAGED = re.compile(r"reshape_and_cache|store_kvcache|paged_kv|PagedKV|append_paged|concat_and_cache",
                      re.IGNORECASE)
KV_STATIC = re.compile(r"index_copy|index_put|scatter_kernel", re.IGNORECASE)
KV_STATIC_OP = re.compile(r"^aten::index_copy_$")  # a CPU trace has no kernels: StaticCache's in-place write


@dataclass
class Passes:
    """Forward passes in host order: phase, requests and tokens per pass (-1 where unknown), host span."""

    source: str  # "engine_annotation" | "token_embedding" | "graph_replay"
    phase: list[str]
    prefill_requests: np.ndarray
    decode_requests: np.ndarray
    prefill_tokens: np.ndarray
    decode_tokens: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray  # of the host span (annotation or call)
    event: np.ndarray  # the annotation, embedding call or graph launch
    warnings: list[str] = field(default_factory=list)
    engine: str | None = None  # the engine whose step annotations these are
    model: list[str] | None = None  # per pass, the model that ran it (module events or embedding table)
    past_tokens: np.ndarray | None = None  # KV positions cached before each pass, -1 unknown
    proposed: np.ndarray | None = None  # candidate tokens a verify pass checked, -1 unknown
    accepted: np.ndarray | None = None  # of those, the ones kept, -1 unknown
    decode_context: np.ndarray | None = None  # the decode requests' summed sequence lengths (vLLM's sk), -1 unknown

    def __len__(self) -> int:
        return len(self.phase)


def is_training(events: EventTable) -> bool:
    """Backward passes or optimizer steps in the trace."""
    return bool(events.name_mask(TRAINING.search).any())


def find_passes(events: EventTable) -> Passes | None:
    """The forward passes of an inference trace, None for training or when none is recognizable."""
    if is_training(events):
        return None
    for find in (engine_passes, embedding_passes, graph_passes):
        passes = find(events)
        if passes is not None:  # engine annotations that all failed to parse still end the search
            return passes
    return None


def engine_passes(events: EventTable) -> Passes | None:
    """Passes from SGLang's, vLLM's or TensorRT-LLM's step annotations (`engine_steps`)."""
    found = engine_steps(events)
    if found is None:
        return None
    engine, rows, warnings = found
    if rows:
        passes = _passes("engine_annotation", events, rows, warnings)
    else:
        passes = Passes("engine_annotation", [], *(np.empty(0, np.int64) for _ in range(4)),
                        np.empty(0), np.empty(0), np.empty(0, np.int64), warnings)
    passes.engine = engine
    return passes


def embedding_passes(events: EventTable) -> Passes | None:
    """One pass per token-embedding call (the `aten::embedding` of the largest table with [batch, tokens]
    ids), spanning the model module that holds it where module events say which model ran; phases and
    speculative tokens from `model_passes`."""
    ops = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(EMBEDDING.__eq__))
    calls = []
    for i in ops.tolist():
        dims = events.dims_of_code(int(events.shapes[i]))
        if len(dims) >= 2 and _ints(dims[0], 2) and _ints(dims[1], 2):
            calls.append((i, dims[0][0], dims[1][0], dims[1][1]))
    if not calls:
        return None
    vocab = max(c[1] for c in calls)
    chosen = sorted((c for c in calls if c[1] == vocab), key=lambda c: events.ts[c[0]])
    index, batch, tokens = (np.array([c[k] for c in chosen], dtype=np.int64) for k in (0, 2, 3))
    found = model_passes(events, index, batch, tokens)
    multi = tokens > 1
    return Passes("module" if found.from_modules else "token_embedding", found.phase,
                  np.where(multi, batch, 0), np.where(multi, 0, batch), np.where(multi, batch * tokens, 0),
                  np.where(multi, 0, batch), found.start_us, found.end_us, index, model=found.model,
                  past_tokens=found.past, proposed=found.proposed, accepted=found.accepted)


def graph_launches(events: EventTable) -> np.ndarray:
    """The graph launches (runtime calls), one per replay."""
    return np.flatnonzero(events.category_mask(cat.RUNTIME_CATEGORIES) & events.name_mask(GRAPH_LAUNCH.match))


def graph_passes(events: EventTable) -> Passes | None:
    """One decode pass per graph replay; the batch is not recorded in a replay, so tokens are unknown."""
    launches = graph_launches(events)
    if not len(launches):
        return None
    rows = [(i, "decode", 0, -1, 0, -1) for i in launches[np.argsort(events.ts[launches], kind="stable")].tolist()]
    return _passes("graph_replay", events, rows, [])


def _passes(source: str, events: EventTable, rows: list[tuple], warnings: list[str]) -> Passes:
    index = np.array([r[0] for r in rows], dtype=np.int64)
    column = [np.array([r[k] for r in rows], dtype=np.int64) for k in (2, 3, 4, 5)]
    context = np.array([r[6] if len(r) > 6 else -1 for r in rows], dtype=np.int64)
    return Passes(source, [r[1] for r in rows], *column, events.ts[index], events.end[index], index, warnings,
                  decode_context=context)


def _ints(value: Any, rank: int) -> bool:
    return isinstance(value, list) and len(value) == rank and all(type(d) is int for d in value)


def pass_of_gpu_events(events: EventTable, kinds: np.ndarray, passes: Passes) -> tuple[np.ndarray, np.ndarray]:
    """(GPU kernel indexes, the pass each was launched in, MISSING outside passes), by its launch's time."""
    gpu = np.flatnonzero((kinds == cat.COMPUTE) | (kinds == cat.COMMUNICATION_KIND))
    runtime = np.flatnonzero(events.category_mask(cat.RUNTIME_CATEGORIES) & (events.correlation != MISSING))
    if passes.source == "graph_replay":  # a replay's kernels carry its launch's correlation id
        return gpu, lookup(events.correlation[gpu], events.correlation[passes.event], np.arange(len(passes)))
    launch = lookup(events.correlation[gpu], events.correlation[runtime], runtime)
    known = launch != MISSING
    at = np.where(known, events.ts[np.maximum(launch, 0)], np.nan)
    bounds = _pass_bounds(events, passes)
    pos = np.searchsorted(passes.start_us, at, side="right") - 1
    inside = known & (pos >= 0) & (at < bounds[np.maximum(pos, 0)])
    return gpu, np.where(inside, pos, MISSING)


def _pass_bounds(events: EventTable, passes: Passes) -> np.ndarray:
    """Where each pass's host part ends: its annotation's end, else the next pass's start (the last: trace end)."""
    if passes.source == "engine_annotation":
        return passes.end_us
    host_end = float(events.end[events.category_mask(cat.HOST_OP_CATEGORIES | cat.RUNTIME_CATEGORIES)].max())
    return np.append(passes.start_us[1:], max(host_end, float(passes.end_us[-1])))


def inference_engine(events: EventTable, passes: Passes) -> str | None:
    """vllm, sglang, tensorrt_llm, transformers, or None (a hand-written model)."""
    if passes.engine is not None:
        return passes.engine
    python = events.category_mask(frozenset({"python_function"}))
    if python.any() and events.name_mask(TRANSFORMERS.search)[python].any():
        return "transformers"
    return None


def attention_backend(events: EventTable, kinds: np.ndarray) -> str | None:
    """The attention implementation the trace ran, from SDPA's operators, else its kernels, else `manual`."""
    ops = events.category_mask(cat.HOST_OP_CATEGORIES)
    for backend, pattern in ATTENTION_OPS:
        if (ops & events.name_mask(pattern.match)).any():
            return backend
    kernels = kinds == cat.COMPUTE
    for backend, pattern in ATTENTION_KERNELS:
        if (kernels & events.name_mask(pattern.search)).any():
            return backend
    if (ops & events.name_mask(re.compile(r"^aten::(_?softmax)$").match)).any() and \
            (ops & events.name_mask(re.compile(r"^aten::(bmm|matmul|baddbmm)$").match)).any():
        return "manual"
    return None


def kv_cache_kind(events: EventTable, kinds: np.ndarray, passes: Passes, concat_bytes: np.ndarray) -> str | None:
    """paged (block tables), static (written in place), concat (re-copied with torch.cat each pass) or None."""
    kernels = kinds == cat.COMPUTE
    if (kernels & events.name_mask(KV_PAGED.search)).any():
        return "paged"
    cached = np.array([p in ("decode", "verify", "draft") for p in passes.phase], dtype=bool)
    if passes.model is not None:  # a model's first pass (a draft's prefill) has no cache to grow
        cached &= np.array([passes.model.index(m) != k for k, m in enumerate(passes.model)], dtype=bool)
    if cached.sum() >= 2 and (concat_bytes[cached] > 0).all():
        return "concat"
    if (kernels & events.name_mask(KV_STATIC.search)).any() or \
            (events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(KV_STATIC_OP.match)).any():
        return "static"
    return None


def concat_growth(events: EventTable, passes: Passes) -> tuple[np.ndarray, list[int] | None]:
    """Per pass, the elements `aten::cat` wrote when appending a few rows to a larger tensor (a KV cache grown
    by concatenation): inputs [old, new] equal but in one dimension, where new is the smaller; and the first
    such `new` shape (one step's keys or values)."""
    ops = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask("aten::cat".__eq__))
    out = np.zeros(len(passes), dtype=np.int64)
    shape = None
    if not len(ops) or not len(passes):
        return out, shape
    bounds = _pass_bounds(events, passes)
    pos = np.searchsorted(passes.start_us, events.ts[ops], side="right") - 1
    for i, p in zip(ops.tolist(), pos.tolist()):
        if p < 0 or events.ts[i] >= bounds[p]:
            continue
        dims = events.dims_of_code(int(events.shapes[i]))
        tensors = dims[0] if dims and isinstance(dims[0], list) and len(dims[0]) == 2 else None
        if not tensors or not all(_ints(t, len(tensors[0])) for t in tensors) or len(tensors[0]) < 3:
            continue
        old, new = tensors
        differ = [k for k in range(len(old)) if old[k] != new[k]]
        if len(differ) == 1 and new[differ[0]] < old[differ[0]]:
            out[p] += int(np.prod(old)) + int(np.prod(new))
            shape = shape or new
    return out, shape


def inference_summary(trace: Trace, kinds: np.ndarray) -> tuple[dict, list[dict], list[str], QuantizedWeights | None]:
    """(metrics, the `inference_steps` table, warnings, quantized weights); all empty for a trace with no forward
    passes. The fused low-bit GEMMs (`quantized_gemm`: the family that took longest) and dequantize + dense GEMM
    pairs are found here, on inference traces only, and handed to the rules with the summary."""
    events = trace.events
    passes = find_passes(events)
    if passes is None or not len(passes):
        return {}, [], passes.warnings if passes is not None else [], None
    gpu, of_pass = pass_of_gpu_events(events, kinds, passes)
    linked = of_pass != MISSING
    gpu_us = np.bincount(of_pass[linked], weights=events.dur[gpu][linked], minlength=len(passes))
    last_end = np.full(len(passes), -np.inf)
    np.maximum.at(last_end, of_pass[linked], events.end[gpu][linked])
    wall_end = np.maximum(passes.end_us, last_end)  # an annotated step: its span, or its last kernel's end
    if passes.source != "engine_annotation" and len(passes) > 1:
        wall_end[:-1] = passes.start_us[1:]  # back-to-back passes: one ends where the next begins
    wall_us = wall_end - passes.start_us
    concat, concat_shape = concat_growth(events, passes)
    phase = np.array(passes.phase, dtype=object)
    decode = phase == "decode"
    prefill = phase == "prefill"
    decode_tokens = _sum_known(passes.decode_tokens[decode | (phase == "mixed")])
    decode_wall_us = _decode_span_us(passes, wall_end, decode)
    launches = graph_launches(events)
    metrics: dict[str, Any] = {
        "inference_engine": inference_engine(events, passes),
        "inference_pass_source": passes.source,
        "prefill_passes": int(prefill.sum()),
        "decode_passes": int(decode.sum()),
        "mixed_passes": int((phase == "mixed").sum()),
        "verify_passes": int((phase == "verify").sum()),
        "draft_passes": int((phase == "draft").sum()),
        "prefill_tokens": _sum_known(passes.prefill_tokens[prefill | (phase == "mixed")]),
        "decode_tokens": decode_tokens,
        "decode_ms_per_pass": decode_wall_us / int(decode.sum()) / US_PER_MS if decode.any() else None,
        "decode_gpu_ms_per_pass": float(gpu_us[decode].sum()) / int(decode.sum()) / US_PER_MS if decode.any() else None,
        "decode_tokens_per_s": (_sum_known(passes.decode_tokens[decode]) / (decode_wall_us / 1e6)
                                if decode.any() and decode_wall_us > 0 and _sum_known(passes.decode_tokens[decode])
                                else None),
        "prefill_ms": float(wall_us[prefill].sum()) / US_PER_MS if prefill.any() else None,
        "cuda_graph_replays": len(launches),
        "kv_cache": kv_cache_kind(events, kinds, passes, concat),
        "attention_backend": attention_backend(events, kinds),
    }
    metrics.update(speculative_metrics(passes, wall_us))
    quantized = quantized_weights(events, kinds)
    metrics["quantized_gemm"] = quantized.fused[0]["family"] if quantized.fused else None
    metrics["dequantize_gemm_pairs"] = len(quantized.pairs)
    if (concat[decode] > 0).any():
        metrics["kv_concat_elements_first_decode"] = int(concat[decode][0])
        metrics["kv_concat_elements_last_decode"] = int(concat[decode][-1])
        metrics["kv_concat_new_shape"] = concat_shape
    replayed = lookup(events.correlation[gpu], events.correlation[launches], launches) != MISSING
    metrics.update(roofline_metrics(trace, kinds, passes, _pass_bounds(events, passes), gpu, of_pass, replayed,
                                    concat, gpu_us, metrics["decode_ms_per_pass"]))
    origin = float(events.ts.min())
    table = [
        {"pass": k, "phase": passes.phase[k],
         "prefill_requests": _known(passes.prefill_requests[k]), "decode_requests": _known(passes.decode_requests[k]),
         "tokens": (None if passes.prefill_tokens[k] < 0 or passes.decode_tokens[k] < 0
                    else int(passes.prefill_tokens[k] + passes.decode_tokens[k])),
         "start_ms": round((float(passes.start_us[k]) - origin) / US_PER_MS, 4),
         "gpu_ms": round(float(gpu_us[k]) / US_PER_MS, 4), "wall_ms": round(float(wall_us[k]) / US_PER_MS, 4)}
        for k in range(len(passes))
    ]
    if passes.model is not None:
        for k, row in enumerate(table):
            row.update({"model": passes.model[k], "past_tokens": _known(passes.past_tokens[k]),
                        "proposed_tokens": _known(passes.proposed[k]), "accepted_tokens": _known(passes.accepted[k])})
    return metrics, table, passes.warnings, quantized


def speculative_metrics(passes: Passes, wall_us: np.ndarray) -> dict[str, Any]:
    """Tokens of the verify and draft passes; where a verify pass's candidates and the next pass's cache are
    known, the candidates proposed and accepted, the acceptance and the tokens each verify pass yields;
    the draft passes' share of the speculative loop's wall time."""
    phase = np.array(passes.phase, dtype=object)
    verify, draft = phase == "verify", phase == "draft"
    if not verify.any():
        return {}
    tokens = passes.prefill_tokens + passes.decode_tokens
    out: dict[str, Any] = {"verify_tokens": _sum_known(tokens[verify]), "draft_tokens": _sum_known(tokens[draft])}
    if passes.proposed is not None:
        known = verify & (passes.proposed >= 0) & (passes.accepted >= 0)
        proposed, accepted = int(passes.proposed[known].sum()), int(passes.accepted[known].sum())
        out.update({"speculative_method": "draft_model" if draft.any() else "prompt_lookup",
                    "speculative_verify_passes_measured": int(known.sum()),
                    "speculative_proposed_tokens": proposed, "speculative_accepted_tokens": accepted,
                    "speculative_acceptance_pct": round(100 * accepted / proposed, 2) if proposed else None,
                    "speculative_tokens_per_verify": round(float(accepted + known.sum()) / int(known.sum()), 3)
                    if known.any() else None})
    if draft.any():
        out["draft_share_pct"] = round(100 * float(wall_us[draft].sum()) / float(wall_us[draft | verify].sum()), 2)
    return out


def _decode_span_us(passes: Passes, wall_end: np.ndarray, decode: np.ndarray) -> float:
    """From the first decode pass's start to the last one's end, less the other passes between them: the
    time decoding took however far the host ran ahead of the GPU."""
    where = np.flatnonzero(decode)
    if not len(where):
        return 0.0
    first, last = int(where[0]), int(where[-1])
    between = ~decode[first:last + 1]
    other = float((wall_end[first:last + 1] - passes.start_us[first:last + 1])[between].sum())
    return float(wall_end[last] - passes.start_us[first]) - other


def _known(value: int) -> int | None:
    return int(value) if value >= 0 else None


def _sum_known(values: np.ndarray) -> int | None:
    """The sum, None when any value is unknown (-1) or there are none."""
    return int(values.sum()) if len(values) and (values >= 0).all() else None
