"""Inference tab: the forward passes as a phase strip, decode tokens/s against its bandwidth ceiling, KV-cache
and graph facts, and the passes table."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.notebook.parts import Chart, Column, Html, Part, Table, heading, html_table, inputs_with
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS
from workbench.reporters.common import metric_rows

PHASE_COLORS = {"prefill": COLORS["computation"], "decode": COLORS["communication"], "mixed": COLORS["operator"],
                "verify": COLORS["memcpy"], "draft": COLORS["memset"], "idle": COLORS["idle"]}
STEPS = [Column("pass", "Pass"), Column("phase", "Phase"), Column("prefill_requests", "Prefill req."),
         Column("decode_requests", "Decode req."), Column("tokens", "Tokens"), Column("start_ms", "Start ms"),
         Column("gpu_ms", "GPU ms"), Column("wall_ms", "Wall ms")]
MODEL_STEPS = [Column("model", "Model"), Column("past_tokens", "Cached"), Column("proposed_tokens", "Proposed"),
               Column("accepted_tokens", "Accepted")]  # passes of a model loop (analyses/model_passes.py)
FACTS = ("inference_engine", "prefill_passes", "prefill_tokens", "decode_passes", "mixed_passes", "decode_tokens",
         "verify_passes", "draft_passes", "speculative_method", "speculative_proposed_tokens",
         "speculative_accepted_tokens", "speculative_acceptance_pct", "draft_share_pct", "quantized_gemm",
         "decode_ms_per_pass", "decode_tokens_per_s", "decode_tokens_per_s_ceiling", "decode_passes_per_s_ceiling",
         "decode_bytes_per_pass", "decode_bytes_source", "decode_kv_bytes_source", "decode_mbu_pct", "prefill_mfu_pct",
         "cuda_graph_replays", "kv_cache", "attention_backend")


def parts(data: DashboardData) -> list[Part]:
    out: list[Part] = []
    for input_, tables, title in inputs_with(data.report, {"inference_steps"}):
        metrics = input_.get("metrics", {})
        steps = tables["inference_steps"]
        facts = [list(row) for row in metric_rows({k: metrics[k] for k in FACTS if k in metrics})]
        out += title + [heading("Forward passes"), Chart(phase_strip(steps)), Html(html_table(["Fact", "Value"], facts))]
        if metrics.get("decode_mbu_pct") is not None:
            out += [heading("Decode against the bandwidth roofline"), Chart(mbu_bar(metrics))]
        out.append(Table("Passes", STEPS + (MODEL_STEPS if steps and "model" in steps[0] else []), steps))
    return out


def phase_strip(steps: list[dict[str, Any]]) -> go.Figure:
    """Each pass as a bar from its start over its wall time, coloured by phase."""
    fig = go.Figure()
    for phase in dict.fromkeys(s["phase"] for s in steps):
        rows = [s for s in steps if s["phase"] == phase]
        fig.add_bar(name=phase, y=["passes"] * len(rows), x=[r["wall_ms"] for r in rows],
                    base=[r["start_ms"] for r in rows], orientation="h",
                    marker_color=PHASE_COLORS.get(phase, COLORS["idle"]),
                    customdata=[[r["pass"], r["tokens"], r["gpu_ms"]] for r in rows],
                    hovertemplate="pass %{customdata[0]}: %{x:.3f} ms wall, %{customdata[2]:.3f} ms GPU, "
                                  "%{customdata[1]} tokens<extra>" + phase + "</extra>")
    fig.update_layout(barmode="overlay", height=160, margin=dict(l=10, r=10, t=10, b=30), xaxis_title="ms")
    return fig


def mbu_bar(metrics: dict[str, Any]) -> go.Figure:
    """Decode's share of peak memory bandwidth (MBU), against 100 %."""
    mbu = float(metrics["decode_mbu_pct"])
    fig = go.Figure(go.Bar(x=[mbu], y=["MBU"], orientation="h", marker_color=COLORS["computation"],
                           text=[f"{mbu:.2f} % of peak bandwidth"], textposition="auto"))
    fig.update_layout(height=120, margin=dict(l=10, r=10, t=10, b=30), xaxis=dict(range=[0, 100], title="% of peak"))
    return fig
