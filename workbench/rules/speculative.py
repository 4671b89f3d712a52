"""Speculative decoding: what it would buy a small-batch decode, and whether the draft/verify loop a trace ran pays."""

from __future__ import annotations

import re
from typing import Any, Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.speculation import FORMULA, break_even_acceptance, speedup
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule

GAMMA = 4  # tokens proposed per round (vLLM's num_speculative_tokens in its examples)
ALPHAS = (0.6, 0.8)  # acceptances to show the speedup at; the gain uses the first
MAX_BATCH = 8  # sequences per decode pass: speculation pays at small batch
MAX_VERIFY_COST = 1.5  # a pass of 1 + GAMMA tokens no dearer than this many one-token passes
DRAFT_MODEL_COST = 0.1  # assumed: a draft model whose pass takes a tenth of the target's
ATTENTION_CALL = re.compile(r"^aten::(softmax|scaled_dot_product_attention)$")

CODE_WHAT_IF = '''import torch

# What speculative decoding would buy this decode loop: {ms_per_pass} ms per pass, {batch} sequence(s) per pass.
gamma, alpha = {gamma}, 0.6  # tokens proposed per round; measure alpha (accepted / proposed) on your prompts


def speedup(draft_cost, verify_cost=1.0):
    tokens = (1 - alpha ** (gamma + 1)) / (1 - alpha)  # tokens a round yields
    return tokens / (gamma * draft_cost + verify_cost)


for method, cost in {costs}:
    print(f"{{method}}: {{speedup(cost):.2f}}x at acceptance {{alpha}}")

# Hugging Face transformers (greedy): an n-gram lookup in the prompt, or a small draft of the same tokenizer
#   model.generate(**inputs, prompt_lookup_num_tokens={gamma})
#   model.generate(**inputs, assistant_model=draft_model)
# vLLM: speculative_config={{"method": "ngram", "num_speculative_tokens": {gamma}, "prompt_lookup_max": 4}}
#       or {{"method": "eagle", "model": EAGLE_HEAD, "num_speculative_tokens": {gamma}}}
try:
    from transformers import LlamaConfig, LlamaForCausalLM
except ImportError:  # transformers not installed here
    LlamaForCausalLM = None
if LlamaForCausalLM is not None:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    model = LlamaForCausalLM(config).eval()  # stands for your model
    prompt = torch.arange(8).repeat(3).view(1, -1)  # text that repeats: what prompt lookup feeds on
    with torch.no_grad():
        plain = model.generate(prompt, max_new_tokens=8, do_sample=False)
        looked_up = model.generate(prompt, max_new_tokens=8, do_sample=False, prompt_lookup_num_tokens=gamma)
    assert torch.equal(plain, looked_up)  # greedy speculation returns exactly the same tokens
'''

CODE_MEASURED = '''# The trace's speculative loop: {gamma} tokens proposed per round, {accepted} of {proposed} accepted ({pct} %);
# a draft step costs {c} target passes and the verify pass {v}: it breaks even at acceptance {break_even}.
gamma, draft_cost, verify_cost = {gamma}, {c}, {v}


def tokens_per_round(alpha):
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


for alpha in (0.1, 0.3, 0.5, 0.7, 0.9):
    print(f"acceptance {{alpha}}: {{tokens_per_round(alpha) / (gamma * draft_cost + verify_cost):.2f}}x")
# Raise the acceptance (a draft distilled from or sharing the target's family; an EAGLE head trained on it), or
# propose fewer tokens, or stop speculating for this workload. Hugging Face transformers:
#   model.generate(**inputs, assistant_model=draft, num_assistant_tokens=2,
#                  num_assistant_tokens_schedule="heuristic", assistant_confidence_threshold=0.4)
# vLLM: speculative_config={{"num_speculative_tokens": 2, ...}}; SGLang: --speculative-num-steps 2
'''


@rule("speculative-decoding", "launch", TRACE_KINDS,
      "small-batch decoding that speculation would speed up (the break-even acceptance of a draft model, an "
      "n-gram prompt lookup or an EAGLE head at the measured pass time), or a draft/verify loop that does not pay")
@on_traces
def speculative_decoding(ctx: TraceContext) -> Iterator[Finding]:
    if not (ctx.metrics.get("decode_passes") or ctx.metrics.get("verify_passes")) or ctx.passes is None:
        return
    if ctx.metrics.get("verify_passes"):
        yield from _measured(ctx)
    else:
        yield from _what_if(ctx)


def _what_if(ctx: TraceContext) -> Iterator[Finding]:
    m = ctx.metrics
    passes, tokens, ms = int(m.get("decode_passes") or 0), m.get("decode_tokens"), m.get("decode_ms_per_pass")
    if passes < 2 or not tokens or not ms or m.get("decode_mbu_pct") is None or not m.get("peak_tflops"):
        return
    batch = tokens / passes
    weights = float(m.get("decode_weight_bytes_per_pass") or 0) / float(m.get("weight_element_bytes") or 4)
    per_token_ms = 2 * weights * batch / (float(m["peak_tflops"]) * 1e12) * 1000  # its FLOPs at the peak
    verify = 1 + GAMMA * per_token_ms / ms
    if batch > MAX_BATCH or verify > MAX_VERIFY_COST:
        return
    layers = _layers(ctx)
    costs = [("prompt_lookup", 0.0, "n-gram match of the last tokens in the prompt and output, on the host"),
             ("eagle_head", round(1 / layers, 4) if layers else None,
              f"one decoder layer and the target's head: 1/{layers} of the target's {layers} layers"),
             ("draft_model", DRAFT_MODEL_COST, "assumed: a draft model whose pass takes a tenth of the target's")]
    rows = [{"method": name, "draft_cost": c, "what": what, "break_even_acceptance": break_even_acceptance(GAMMA, c, verify),
             **{f"speedup_at_{alpha}": round(speedup(alpha, GAMMA, c, verify), 3) for alpha in ALPHAS}}
            for name, c, what in costs if c is not None]
    least = min(r[f"speedup_at_{ALPHAS[0]}"] for r in rows)
    mbu = float(m["decode_mbu_pct"])
    bound = "memory-bound" if mbu >= 50 else "launch/host-bound"
    gain = ctx.gain(passes * ms * 1000 * (1 - 1 / least),
                    f"decode time x (1 - 1/speedup), the least speedup of the methods at acceptance {ALPHAS[0]}, "
                    f"{GAMMA} tokens proposed per round; " + FORMULA)
    yield finding_of(
        "speculative-decoding",
        title=f"Decoding {batch:g} sequence(s) per pass at {ms:.3f} ms a pass ({bound}, MBU {mbu:.2f}%): a pass of "
              f"{1 + GAMMA} tokens costs about one of 1; speculative decoding would yield up to "
              f"{max(r[f'speedup_at_{ALPHAS[0]}'] for r in rows):.2f}x at acceptance {ALPHAS[0]}",
        evidence={
            "decode_passes": passes,
            "sequences_per_pass": round(batch, 3),
            "decode_ms_per_pass": round(ms, 4),
            "decode_mbu_pct": mbu,
            "bound": bound,
            "proposed_tokens_per_round": GAMMA,
            "verify_cost_in_passes": round(verify, 4),
            "layers": layers,
            "methods": rows,
            "formula": FORMULA,
        },
        gain=gain,
        fix=Fix(summary="Speculate: prompt lookup (n-grams, no extra model) where outputs copy their input, else an "
                        "EAGLE head or a small draft model; greedy outputs stay the same.",
                code=CODE_WHAT_IF.format(ms_per_pass=round(ms, 3), batch=f"{batch:g}", gamma=GAMMA,
                                         costs=[(r["method"], r["draft_cost"]) for r in rows]),
                docs=["https://huggingface.co/docs/transformers/generation_strategies#speculative-decoding",
                      "https://docs.vllm.ai/en/latest/features/spec_decode.html"]),
    )


def _measured(ctx: TraceContext) -> Iterator[Finding]:
    """A draft/verify loop's measured round against the one-token pass it replaces; a finding where it is slower."""
    m, steps = ctx.metrics, ctx.tables.get("inference_steps") or []
    verify = [s for s in steps if s["phase"] == "verify" and s.get("proposed_tokens")
              and s["tokens"] == s["proposed_tokens"] + 1]  # a pass over the last token and the candidates only
    draft = [s for s in steps if s["phase"] == "draft" and s["tokens"] == 1]
    decode = [s for s in steps if s["phase"] == "decode"]
    per_verify = m.get("speculative_tokens_per_verify")
    if not verify or not per_verify:
        return
    verify_ms = float(np.mean([s["wall_ms"] for s in verify]))
    plain_ms = float(np.mean([s["wall_ms"] for s in decode])) if decode else verify_ms
    gamma = int(np.median([s["proposed_tokens"] for s in verify]))
    c = float(np.mean([s["wall_ms"] for s in draft])) / plain_ms if draft else 0.0
    v = verify_ms / plain_ms
    rounds = int(m["verify_passes"])
    steps_per_round = len(draft) / rounds  # draft steps of one token per verify pass
    measured = per_verify / (steps_per_round * c + v)
    if measured >= 1:
        return
    loop_ms = sum(s["wall_ms"] for s in steps if s["phase"] in ("verify", "draft"))
    break_even = break_even_acceptance(gamma, c, v)
    gain = ctx.gain(loop_ms * 1000 * (1 - measured),
                    "the speculative loop's wall time x (1 - its speedup): the tokens a verify pass yields against "
                    "its draft steps' and its own time, in one-token passes; " + FORMULA)
    yield finding_of(
        "speculative-decoding",
        title=f"Speculative decoding slows this loop to {measured:.2f}x: {m.get('speculative_accepted_tokens')} of "
              f"{m.get('speculative_proposed_tokens')} proposed tokens accepted "
              f"({m.get('speculative_acceptance_pct')}%), break-even "
              + (f"{100 * break_even:.0f}%" if break_even is not None else "never reached") +
              (f"; the draft takes {m['draft_share_pct']}% of the loop" if m.get("draft_share_pct") is not None else ""),
        evidence={
            "method": m.get("speculative_method"),
            "verify_passes": rounds,
            "draft_passes": int(m.get("draft_passes") or 0),
            "proposed_tokens": m.get("speculative_proposed_tokens"),
            "accepted_tokens": m.get("speculative_accepted_tokens"),
            "acceptance_pct": m.get("speculative_acceptance_pct"),
            "tokens_per_verify": per_verify,
            "draft_share_pct": m.get("draft_share_pct"),
            "proposed_tokens_per_round": gamma,
            "draft_steps_per_round": round(steps_per_round, 3),
            "draft_cost_in_passes": round(c, 3),
            "verify_cost_in_passes": round(v, 3),
            "one_token_pass_ms": round(plain_ms, 3),
            "one_token_pass_from": "decode passes" if decode else "verify passes (no plain decode pass in the trace)",
            "break_even_acceptance": break_even,
            "measured_speedup": round(measured, 3),
            "formula": FORMULA,
        },
        gain=gain,
        fix=Fix(summary="Raise the acceptance (a draft closer to the target, an EAGLE head trained on it), propose "
                        "fewer tokens per round, or decode without speculation for this workload.",
                code=CODE_MEASURED.format(gamma=gamma, accepted=m.get("speculative_accepted_tokens"),
                                          proposed=m.get("speculative_proposed_tokens"),
                                          pct=m.get("speculative_acceptance_pct"), c=round(c, 3), v=round(v, 3),
                                          break_even=break_even),
                docs=["https://huggingface.co/docs/transformers/generation_strategies#speculative-decoding"]),
    )


def _layers(ctx: TraceContext) -> int | None:
    """Attention calls (softmax or SDPA) in the first decode pass: the model's layers."""
    passes = ctx.passes
    first = passes.phase.index("decode")
    end = passes.start_us[first + 1] if first + 1 < len(passes) else np.inf
    ops = ctx.named(ATTENTION_CALL, cat.HOST_OP_CATEGORIES)
    inside = (ctx.events.ts[ops] >= passes.start_us[first]) & (ctx.events.ts[ops] < end)
    return int(inside.sum()) or None
