"""CUDA graph coverage of inference: eager work left between graph replays, and padding to a captured size."""

from __future__ import annotations

from typing import Any, Iterator

from workbench.analyses.graph_coverage import graph_coverage, graph_tokens
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import kernel_rows, launching_ops

CODE_LOOP = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
vocab, d, steps = 1000, 64, 8
model = torch.nn.Sequential(torch.nn.Embedding(vocab, d), torch.nn.Linear(d, vocab)).to(device).eval()
token = torch.zeros(1, 1, dtype=torch.long, device=device)  # static input buffers, as the graph needs
pos = torch.zeros(1, dtype=torch.long, device=device)
out = torch.zeros(steps, dtype=torch.long, device=device)


def step():
    """One decode step that writes its own next input: nothing is left to run eagerly between replays."""
    logits = model(token)
    token.copy_(logits[:, -1].argmax(-1, keepdim=True))  # was an eager copy_ before each replay
    out.index_copy_(0, pos, token.view(1))
    pos.add_(1)  # was an eager add_ between replays


with torch.no_grad():
    if device == "cuda":
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()  # warm up outside the capture
        torch.cuda.current_stream().wait_stream(side)
        token.zero_(), pos.zero_()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        token.zero_(), pos.zero_()
        run = graph.replay
    else:
        run = step
    for _ in range(steps):
        run()
print(out.tolist())  # read the tokens once, after the loop
'''

CODE_VLLM = '''# vLLM: full CUDA graphs for decode-only steps (attention inside the graph), piecewise ones for mixed steps.
# CLI: vllm serve MODEL --compilation-config '{{"cudagraph_mode": "FULL_AND_PIECEWISE"}}'
compilation_config = {{"cudagraph_mode": "FULL_AND_PIECEWISE",
                      # capture the sizes your steps run, so that a step is padded as little as possible
                      "cudagraph_capture_sizes": {sizes}}}
try:
    from vllm.config import CompilationConfig
except ImportError:  # vLLM not installed here
    CompilationConfig = None
if CompilationConfig is not None:
    CompilationConfig(**compilation_config)  # checks the settings; pass them as LLM(..., compilation_config=...)
'''


@rule("cuda-graph-coverage", "launch", TRACE_KINDS,
      "inference under CUDA graphs with eager kernels and GPU idle time left between the graph replays")
@on_traces
def cuda_graph_coverage(ctx: TraceContext) -> Iterator[Finding]:
    passes = ctx.passes if ctx.metrics.get("cuda_graph_replays") else None
    coverage = graph_coverage(ctx.events, ctx.kinds) if passes is not None else None
    if coverage is None or not coverage.boundary_idle_us:
        return
    per_pass = coverage.replays / len(passes)
    piecewise = per_pass > 1
    padding = _padding(ctx) if piecewise else None
    gain = ctx.gain(coverage.boundary_idle_us,
                    "GPU idle time at graph boundaries (between two replays, or next to the eager kernels and "
                    "copies among them), which one graph over the whole pass does not have; the eager kernels' "
                    "own time is not counted")
    eager_ms = coverage.eager_us / 1000 / len(passes)
    what = (f"{per_pass:.0f} graph pieces per pass with eager work between them" if piecewise
            else "eager work between the graph replays")
    yield finding_of(
        "cuda-graph-coverage",
        title=f"CUDA graphs cover {coverage.coverage_pct:.1f}% of the replayed passes' GPU time: {what} "
              f"({eager_ms:.3f} ms of eager kernels and "
              f"{coverage.boundary_idle_us / 1000 / len(passes):.3f} ms idle per pass)",
        evidence={
            "graph_replays": coverage.replays,
            "passes": len(passes),
            "replays_per_pass": round(per_pass, 2),
            "piecewise": piecewise,
            "graph_coverage_pct": round(coverage.coverage_pct, 2),
            "graph_gpu_ms_per_pass": round(coverage.graph_us / 1000 / len(passes), 4),
            "eager_gpu_ms_per_pass": round(eager_ms, 4),
            "boundary_idle_ms_per_pass": round(coverage.boundary_idle_us / 1000 / len(passes), 4),
            "eager_gpu_events_per_pass": round(len(coverage.eager) / len(passes), 2),
            "eager_kernels": kernel_rows(ctx, coverage.eager),
            "eager_operators": launching_ops(ctx, coverage.eager),
            "padding": padding,
        },
        gain=gain,
        fix=_fix(ctx, piecewise, padding),
    )


def _padding(ctx: TraceContext) -> dict[str, Any] | None:
    """Scheduled tokens (the engine's annotation) against the tokens the graphs ran, per engine step."""
    passes = ctx.passes
    if passes is None or passes.source != "engine_annotation":
        return None
    rows = []
    for k in range(len(passes)):
        scheduled = int(passes.prefill_tokens[k] + passes.decode_tokens[k])
        ran = graph_tokens(ctx.events, passes, k)
        if ran is not None and scheduled >= 0:
            rows.append((scheduled, ran))
    if not rows:
        return None
    scheduled, ran = sum(r[0] for r in rows), sum(r[1] for r in rows)
    return {"scheduled_tokens": scheduled, "graph_tokens": ran, "padded_tokens": ran - scheduled,
            "padded_pct": round(100 * (ran - scheduled) / ran, 2) if ran else None,
            "captured_sizes": "not recorded in the trace (vLLM's compilation_config.cudagraph_capture_sizes)"}


def _fix(ctx: TraceContext, piecewise: bool, padding: dict[str, Any] | None) -> Fix:
    if ctx.metrics.get("inference_engine") == "vllm":
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, padding["graph_tokens"] if padding else 512})
        return Fix(summary="Let decode-only steps replay one full CUDA graph with attention inside "
                           "(cudagraph_mode FULL_AND_PIECEWISE, an attention backend that supports full graphs); "
                           "mixed steps stay piecewise" + ("." if not padding or not padding["padded_tokens"] else
                                                           "; capture the sizes your steps run to pad less."),
                   code=CODE_VLLM.format(sizes=sizes),
                   docs=["https://docs.vllm.ai/en/latest/design/cuda_graphs/"])
    return Fix(summary="Capture the whole decode step, including the update of its inputs (next token, position), "
                       "so that consecutive replays run back to back" +
                       (" and no kernel runs eagerly between graph pieces." if piecewise else "."),
               code=CODE_LOOP,
               docs=["https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs"])
