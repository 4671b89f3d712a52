"""Serving engines' steps: a long prefill chunk stretching the mixed step that decode requests wait on."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule

BUDGET = 2048  # tokens per step vLLM's tuning guide gives for inter-token latency
MAX_DECODE_SHARE = 0.1  # decode tokens under this share of a mixed step's: the prefill chunk dominates it

CODE = '''# A smaller token budget per step: prefills are cut into chunks, and each step that decode requests wait on
# is shorter. The trace's mixed step: {tokens} tokens ({decode} decode requests) in {step_ms} ms of GPU time.
budget = {budget}
print(f"expected step: about {{{step_ms} * budget / {tokens}:.1f}} ms; a {prefill}-token prefill takes "
      f"{{-(-{prefill} // (budget - {decode}))}} steps")
# vLLM:   vllm serve MODEL --max-num-batched-tokens {budget}   (chunked prefill is on by default in V1)
# SGLang: python -m sglang.launch_server --model-path MODEL --chunked-prefill-size {budget}
engine_args = {{"max_num_batched_tokens": budget, "enable_chunked_prefill": True}}
try:
    from vllm.engine.arg_utils import EngineArgs
except ImportError:  # vLLM not installed here
    EngineArgs = None
if EngineArgs is not None:
    EngineArgs(model="YOUR_MODEL", **engine_args)  # pass the same to vllm.LLM(model=..., **engine_args)
'''


@rule("prefill-decode-interference", "launch", TRACE_KINDS,
      "a mixed engine step whose long prefill chunk makes the decode requests in it wait for the whole step")
@on_traces
def prefill_decode_interference(ctx: TraceContext) -> Iterator[Finding]:
    passes = ctx.passes if ctx.metrics.get("mixed_passes") else None
    steps = ctx.tables.get("inference_steps") or []
    if passes is None or len(steps) != len(passes):
        return
    mixed = [k for k, phase in enumerate(passes.phase) if phase == "mixed" and passes.decode_requests[k] > 0
             and passes.prefill_tokens[k] > BUDGET and passes.decode_tokens[k] >= 0]
    mixed = [k for k in mixed if passes.decode_tokens[k] < MAX_DECODE_SHARE * (passes.prefill_tokens[k]
                                                                               + passes.decode_tokens[k])]
    if not mixed:
        return
    tokens = np.array([passes.prefill_tokens[k] + passes.decode_tokens[k] for k in mixed], dtype=float)
    gpu_ms = np.array([steps[k]["gpu_ms"] for k in mixed], dtype=float)
    at_budget_ms = gpu_ms * np.minimum(BUDGET / tokens, 1.0)
    k = mixed[int(np.argmax(gpu_ms))]
    prefill, decode, step_ms = int(passes.prefill_tokens[k]), int(passes.decode_requests[k]), float(steps[k]["gpu_ms"])
    decode_share = float(passes.decode_tokens[k]) / (prefill + float(passes.decode_tokens[k]))
    gain = ctx.gain(float((gpu_ms - at_budget_ms).sum()) * 1000,
                    f"how much sooner the decode requests of the mixed steps get their next token with {BUDGET} "
                    "tokens per step, taking step time as proportional to its tokens (a prefill-dominated step is "
                    "compute-bound); a latency gain for them, paid for by the prefills' time to first token")
    yield finding_of(
        "prefill-decode-interference",
        title=f"{decode} decode requests wait {step_ms:.1f} ms for one token each while a {prefill}-token prefill "
              f"chunk runs in the same step ({100 * decode_share:.2f}% of its tokens)",
        evidence={
            "mixed_steps": len(mixed),
            "prefill_requests": int(passes.prefill_requests[k]),
            "prefill_chunk_tokens": prefill,
            "decode_requests": decode,
            "decode_tokens": int(passes.decode_tokens[k]),
            "decode_share_of_tokens_pct": round(100 * decode_share, 3),
            "decode_requests_wait_share_of_step_pct": 100.0,  # each waits for the whole step
            "step_gpu_ms": round(step_ms, 3),
            "step_wall_ms": steps[k]["wall_ms"],
            "suggested_budget_tokens": BUDGET,
            "step_gpu_ms_at_budget": round(float(at_budget_ms[mixed.index(k)]), 3),
            "prefill_steps_at_budget": math.ceil(prefill / max(BUDGET - decode, 1)),
        },
        gain=gain,
        fix=Fix(summary=f"Lower the engine's token budget per step to about {BUDGET} (vLLM max_num_batched_tokens, "
                        "SGLang --chunked-prefill-size): decode requests wait for shorter steps, the prefill "
                        "takes more of them.",
                code=CODE.format(tokens=int(tokens[mixed.index(k)]), decode=decode, step_ms=round(step_ms, 1),
                                 budget=BUDGET, prefill=prefill),
                docs=["https://docs.vllm.ai/en/latest/configuration/optimization/",
                      "https://docs.sglang.ai/advanced_features/server_arguments.html"]),
    )
