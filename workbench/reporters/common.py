"""What the human-readable reports show, shared by the text and Markdown formats."""

from __future__ import annotations

from typing import Any

from workbench.units import format_bytes, shorten

# (metric, label, format); a metric absent from the input is not shown.
KEY_METRICS: list[tuple[str, str, str]] = [
    ("gpu_busy_pct", "GPU busy", "{:.1f} %"),
    ("gpu_window_ms", "GPU window", "{:.1f} ms"),
    ("computation_pct", "Computation", "{:.1f} %"),
    ("communication_pct", "Communication (not overlapped)", "{:.1f} %"),
    ("communication_overlapped_pct", "Communication overlapped with compute", "{:.1f} %"),
    ("memory_pct", "Memcpy/memset only", "{:.1f} %"),
    ("idle_pct", "Idle", "{:.1f} %"),
    ("idle_input_wait_ms", "  idle, host waiting on input", "{:.1f} ms"),
    ("idle_sync_ms", "  idle, host in a synchronization", "{:.1f} ms"),
    ("idle_host_busy_ms", "  idle, host busy in ops/launches", "{:.1f} ms"),
    ("idle_other_ms", "  idle, other", "{:.1f} ms"),
    ("step_count", "Steps", "{}"),
    ("step_time_ms_mean", "Step time mean", "{:.2f} ms"),
    ("step_time_ms_p50", "Step time p50", "{:.2f} ms"),
    ("step_time_ms_max", "Step time max", "{:.2f} ms"),
    ("kernel_count", "Kernels", "{}"),
    ("kernels_per_step", "Kernels per step", "{:.0f}"),
    ("short_kernel_pct", "Kernels under 10 µs", "{:.1f} %"),
    ("launch_cpu_ms", "CPU time in launch calls", "{:.1f} ms"),
    ("kernel_time_ms", "GPU time in kernels", "{:.1f} ms"),
    ("inference_engine", "Inference engine", "{}"),
    ("prefill_passes", "Prefill passes", "{}"),
    ("prefill_tokens", "Prefill tokens", "{}"),
    ("decode_passes", "Decode passes", "{}"),
    ("mixed_passes", "Mixed prefill+decode steps", "{}"),
    ("verify_tokens", "Verify pass tokens (speculative)", "{}"),
    ("draft_tokens", "Draft pass tokens (speculative)", "{}"),
    ("speculative_method", "Speculative candidates from", "{}"),
    ("speculative_proposed_tokens", "Candidates proposed (verify passes measured)", "{}"),
    ("speculative_accepted_tokens", "Candidates accepted", "{}"),
    ("speculative_acceptance_pct", "Acceptance", "{:.1f} %"),
    ("speculative_tokens_per_verify", "Tokens per verify pass", "{:.2f}"),
    ("draft_share_pct", "Draft passes' share of the speculative loop", "{:.1f} %"),
    ("decode_tokens", "Decode tokens", "{}"),
    ("decode_ms_per_pass", "Decode time per pass", "{:.3f} ms"),
    ("decode_tokens_per_s", "Decode tokens/s", "{:.1f}"),
    ("decode_tokens_per_s_ceiling", "Decode tokens/s at peak bandwidth", "{:.0f}"),
    ("decode_passes_per_s_ceiling", "Decode passes/s at peak bandwidth", "{:.0f}"),
    ("decode_bytes_per_pass", "Bytes a decode pass reads (weights + KV)", "bytes"),
    ("decode_bytes_source", "Decode weight bytes from", "{}"),
    ("decode_kv_bytes_source", "Decode KV bytes from", "{}"),
    ("decode_mbu_pct", "Memory-bandwidth utilization (MBU)", "{:.2f} %"),
    ("prefill_mfu_pct", "Prefill FLOP utilization (MFU)", "{:.2f} %"),
    ("cuda_graph_replays", "CUDA graph replays", "{}"),
    ("kv_cache", "KV cache", "{}"),
    ("attention_backend", "Attention backend", "{}"),
    ("quantized_gemm", "Fused low-bit GEMM", "{}"),
    ("rank_count", "Ranks", "{}"),
    ("dump_count", "Flight Recorder dumps", "{}"),
    ("log_count", "Rank logs", "{}"),
    ("hang_issue_count", "Hang diagnoses", "{}"),
    ("collective_count", "Collectives", "{}"),
    ("exposed_comm_ms_per_step", "Exposed communication per step", "{:.2f} ms"),
    ("collective_wait_ms_per_step", "Waiting for other ranks in collectives, per step", "{:.2f} ms"),
    ("straggler_ranks", "Straggler ranks", "{}"),
    ("oom_requested_bytes", "OOM: requested", "bytes"),
    ("allocated_bytes_at_oom", "OOM: allocated (live tensors)", "bytes"),
    ("reserved_bytes_at_oom", "OOM: reserved by PyTorch", "bytes"),
    ("reserved_unallocated_bytes_at_oom", "OOM: reserved but unallocated", "bytes"),
    ("largest_free_block_bytes_at_oom", "OOM: largest free block", "bytes"),
    ("device_free_bytes_at_oom", "OOM: free on the device", "bytes"),
    ("message_total_bytes", "Device capacity (OOM message)", "bytes"),
    ("peak_allocated_bytes", "Peak allocated", "bytes"),
    ("peak_reserved_bytes", "Peak reserved", "bytes"),
    ("reserved_bytes", "Reserved at dump", "bytes"),
    ("fragmentation_pct", "Fragmentation at dump (1 - largest free / free)", "{:.1f} %"),
    ("peak_bytes", "Peak memory (profiler timeline)", "bytes"),
    ("memory_peak_allocated_bytes", "GPU memory peak allocated", "bytes"),
    ("memory_peak_reserved_bytes", "GPU memory peak reserved", "bytes"),
    ("captured_steps", "Steps run under capture", "{}"),
    ("capture_duration_s", "Capture duration", "{:.2f} s"),
    ("host_step_ms_median", "Host step time p50 (all steps)", "{:.2f} ms"),
    ("trace_export_s", "Trace export", "{:.2f} s"),
    ("mps_allocated_peak_bytes", "MPS allocated peak (per step)", "bytes"),
    ("mps_driver_allocated_peak_bytes", "MPS driver allocated peak", "bytes"),
    ("mps_recommended_max_bytes", "MPS recommended max working set", "bytes"),
]

TABLE_ROWS = 10
# a job's rank tables cut to --top in the readable faces: the column they are ranked by, and what that order shows
RANK_TABLE_ORDER = {"ranks": ("step_time_ms", "slowest"), "stragglers": ("others_wait_ms_per_step",
                                                                          "others waited for most")}
_METRIC_FORMATS = {key: (label, fmt) for key, label, fmt in KEY_METRICS}

Section = tuple[str, list[str], list[list[str]]]  # a table's first column (kernel, operator, site) in full:
# each format shortens it to its width


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, formatted value) for the key metrics the input has."""
    rows = []
    for key, label, fmt in KEY_METRICS:
        value = metrics.get(key)
        if value is not None:
            rows.append((label, _format(value, fmt)))
    return rows


def input_sections(input_: dict[str, Any]) -> list[Section]:
    """(title, header, rows) of each table an input has that the readable reports show."""
    tables = input_.get("tables", {})
    sections = [("Top kernels", *kernel_rows(input_)), ("Top operators", *operator_rows(input_))]
    for name, title in (("sites_at_oom", "Live memory at the OOM by allocation site"),
                        ("sites", "Live memory at the dump by allocation site"),
                        ("sites_at_peak", "Live memory at the peak by allocation site")):
        rows = tables.get(name, [])[:TABLE_ROWS]
        sections.append((title, ["Site", "Bytes", "Blocks", "Category"],
                         [[r["site"], format_bytes(r["bytes"]), str(r["blocks"]), r["category"]] for r in rows]))
    for name, title in (("pools_at_oom", "Allocator pools at the OOM"), ("pools", "Allocator pools at the dump")):
        sections.append((title, ["Pool", "Reserved", "Allocated", "Free", "Largest free", "Free blocks", "Frag. %"],
                         [[r["pool"], format_bytes(r["reserved_bytes"]), format_bytes(r["allocated_bytes"]),
                           format_bytes(r["free_bytes"]), format_bytes(r["largest_free_block_bytes"]),
                           str(r["free_blocks"]), f"{r['fragmentation_pct']:.1f}"] for r in tables.get(name, [])]))
    steps = tables.get("inference_steps", [])
    sections.append((f"Inference passes (first {min(TABLE_ROWS, len(steps))} of {len(steps)})",
                     ["Phase", "Prefill req.", "Decode req.", "Tokens", "GPU ms", "Wall ms"],
                     [[r["phase"], *("-" if r[k] is None else str(r[k]) for k in
                                     ("prefill_requests", "decode_requests", "tokens")),
                       f"{r['gpu_ms']:.3f}", f"{r['wall_ms']:.3f}"] for r in steps[:TABLE_ROWS]]))
    sections += distributed_sections(tables, rank_limit(input_))
    categories = tables.get("categories_at_peak", [])
    if categories and "bytes_at_peak" in categories[0]:
        sections.append(("Memory at the peak by category (profiler)", ["Category", "Bytes"],
                         [[r["category"], format_bytes(r["bytes_at_peak"])] for r in categories]))
    return [s for s in sections if s[2]]


def rank_limit(input_: dict[str, Any]) -> int:
    """Rows a job's rank tables show: its `--top` (`meta.top`), else TABLE_ROWS."""
    top = input_.get("meta", {}).get("top")
    return top if isinstance(top, int) and top > 0 else TABLE_ROWS


def distributed_sections(tables: dict[str, Any], limit: int) -> list[Section]:
    """Collectives by kind, the ranks side by side (ms per step) and the stragglers; of the ranks and the
    stragglers, `limit` rows (`top_rank_rows`)."""
    def ms(value: Any) -> str:
        return "-" if value is None else f"{value:.2f}"

    ranks_heading, ranks = top_rank_rows("Ranks, per step (ms)", tables, "ranks", limit)
    stragglers_title, stragglers = top_rank_rows("Stragglers", tables, "stragglers", limit)
    return [
        ("Collectives", ["Kind", "Count", "Total ms", "Mean µs", "Mean message", "Alg. bandwidth GB/s"],
         [[r["kind"], str(r["count"]), ms(r["total_ms"]), ms(r["mean_us"]),
           "-" if r["bytes_mean"] is None else format_bytes(r["bytes_mean"]), ms(r["algbw_gbps"])]
          for r in tables.get("collectives", [])[:TABLE_ROWS]]),
        ("Ranks as distributions (ms per step)", ["Metric", "Min", "p50", "p90", "Max", "Max on rank", "Outlier ranks"],
         [[r["metric"], ms(r["min"]), ms(r["p50"]), ms(r["p90"]), ms(r["max"]), str(r["max_rank"]),
           _outliers(r)] for r in tables.get("rank_distribution", [])] if len(tables.get("ranks", [])) > 2 else []),
        (ranks_heading,
         ["Rank", "Step", "Compute", "Collectives", "Exposed comm.", "Input", "Waited", "Others waited for it"],
         [[str(r["rank"]), *(ms(r[k]) for k in ("step_time_ms", "compute_ms_per_step", "comm_ms_per_step",
                                                "exposed_comm_ms_per_step", "input_ms_per_step", "wait_ms_per_step",
                                                "caused_wait_ms_per_step"))] for r in ranks]),
        (stragglers_title, ["Rank", "Outlier in", "Others waited ms/step", "Likely cause"],
         [[str(r["rank"]), ", ".join(r["outlier_in"]), ms(r["others_wait_ms_per_step"]),
           shorten(r["likely_cause"] + (f": {r['slow_kernel']}" if r.get("slow_kernel") else ""), 60)
           if r["likely_cause"] else "-"] for r in stragglers]),
    ]


def top_rank_rows(title: str, tables: dict[str, Any], name: str, limit: int) -> tuple[str, list[dict[str, Any]]]:
    """A job's rank table `name` (`ranks` or `stragglers`) as the readable faces show it: at most `limit` rows (the
    slowest ranks, the stragglers others waited for most) under a title that says when rows are left out."""
    key, which = RANK_TABLE_ORDER[name]
    rows = tables.get(name, [])
    return ranks_title(title, which, rows, limit), slowest_ranks(rows, key, limit)


def slowest_ranks(rows: list[dict[str, Any]], key: str, limit: int) -> list[dict[str, Any]]:
    """A job's rows per rank, all of them up to `limit`, else the `limit` highest in `key` (in the row or
    its `metrics`; the JSON report has all)."""
    if len(rows) <= limit:
        return rows

    def value(row: dict[str, Any]) -> float:
        number = row.get("metrics", row).get(key)
        return float(number) if isinstance(number, (int, float)) else float("-inf")

    return sorted(rows, key=value, reverse=True)[:limit]


def ranks_title(title: str, which: str, rows: list[Any], limit: int) -> str:
    return title if len(rows) <= limit else f"{title}: the {limit} {which} of {len(rows)} (all in JSON)"


def _outliers(row: dict[str, Any]) -> str:
    listed = ", ".join(map(str, row["outlier_ranks"]))
    more = row["outlier_count"] - len(row["outlier_ranks"])
    return (listed + (f" (+{more} more)" if more > 0 else "")) or "-"


def kernel_rows(input_: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = input_.get("tables", {}).get("kernels", [])[:TABLE_ROWS]
    header = ["Kernel", "Count", "Total ms", "Share %"]
    return header, [[r["name"], str(r["count"]), f"{r['total_ms']:.2f}", f"{r['share_pct']:.1f}"] for r in rows]


def operator_rows(input_: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = input_.get("tables", {}).get("operators", [])[:TABLE_ROWS]
    header = ["Operator", "Count", "Self CPU ms", "GPU ms", "Input shapes"]
    return header, [
        [r["name"], str(r["count"]), f"{r['self_cpu_ms']:.2f}", f"{r['gpu_ms']:.2f}",
         shorten(r.get("input_shapes") or "", 40)]
        for r in rows
    ]


def rank_section(input_: dict[str, Any]) -> Section:
    """Each rank's summary metrics, the slowest `rank_limit` ranks of a larger job."""
    header = ["Rank", "GPU busy %", "Communication %", "Step mean ms"]
    ranks, limit = input_.get("ranks", []), rank_limit(input_)

    def fmt(value: Any, spec: str) -> str:
        return format(value, spec) if isinstance(value, (int, float)) else "-"

    return ranks_title("Ranks", "slowest", ranks, limit), header, [
        [str(r["rank"]), fmt(r["metrics"].get("gpu_busy_pct"), ".1f"),
         fmt(r["metrics"].get("communication_pct"), ".1f"), fmt(r["metrics"].get("step_time_ms_mean"), ".2f")]
        for r in slowest_ranks(ranks, "step_time_ms_mean", limit)
    ]


def diff_sections(diff: dict[str, Any]) -> list[Section]:
    """(title, header, rows) of each non-empty part of a diff: metrics, changed kernels and operators, findings."""
    unit = "ms/step" if diff["per_step"] else "ms"
    sections = [
        ("Change", ["Metric", "Base", "New", "Delta", "Delta %"], [_metric_change_row(m) for m in diff["metrics"]]),
        ("Kernels that changed most", *_changed_rows(diff["kernels"], "Kernel", unit)),
        ("Operators that changed most (GPU time)", *_changed_rows(diff["operators"], "Operator", unit)),
        ("Operators that changed most (self CPU time)",
         *_changed_rows(diff.get("operators_cpu", []), "Operator", unit)),
        ("Finding changes", ["Status", "Finding ids"],
         [[status, ", ".join(ids) or "-"] for status, ids in diff["findings"].items()]),
        *(_job_sections(diff["ranks"]) if "ranks" in diff else []),
    ]
    return [s for s in sections if s[2]]


def _job_sections(ranks: dict[str, Any]) -> list[Section]:
    """Two jobs: their per-rank distributions base → new, and their findings by rule, cause and rank."""
    def change(pair: dict[str, Any], fmt: str = "{:.2f}") -> str:
        base, new = (_format(pair[side], fmt) if not isinstance(pair[side], list) else
                     ", ".join(map(str, pair[side])) or "-" for side in ("base", "new"))
        return f"{base} → {new}"

    return [
        (f"Ranks as distributions (ms per step), base → new ({ranks['base_ranks']} → {ranks['new_ranks']} ranks)",
         ["Metric", "Min", "p50", "p90", "Max", "Max on rank", "Outlier ranks"],
         [[r["metric"], *(change(r[stat]) for stat in ("min", "p50", "p90", "max")), change(r["max_rank"], "{}"),
           change(r["outlier_ranks"])] for r in ranks["distributions"]]),
        ("Findings on the ranks, base → new", ["Status", "Finding", "Rank", "Ranks affected", "Gain % of time"],
         [[r["status"], r["id"], _format(r["rank"], "{}"),
           change({"base": r["base_ranks_affected"], "new": r["new_ranks_affected"]}, "{}"),
           change({"base": r["base_gain_pct"], "new": r["new_gain_pct"]}, "{:.1f}")] for r in ranks["findings"]]),
    ]


def _metric_change_row(change: dict[str, Any]) -> list[str]:
    label, fmt = _METRIC_FORMATS.get(change["name"], (change["name"], "{}"))
    signed = "signed bytes" if fmt == "bytes" else (
        fmt.replace("{:", "{:+").replace("{}", "{:+}").replace(" %", " pp"))  # a change of a % is in points
    return [label, _format(change["base"], fmt), _format(change["new"], fmt), _format(change["delta"], signed),
            _format(change["delta_pct"], "{:+.1f} %")]


def _changed_rows(rows: list[dict[str, Any]], column: str, unit: str) -> tuple[list[str], list[list[str]]]:
    header = [column, f"Base {unit}", f"New {unit}", f"Delta {unit}"]
    return header, [[r["name"], f"{r['base_ms']:.2f}", f"{r['new_ms']:.2f}", f"{r['delta_ms']:+.2f}"]
                    for r in rows]


def _format(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt in ("bytes", "signed bytes"):
        return format_bytes(value, signed=fmt == "signed bytes")
    return fmt.format(value)


def describe_input(input_: dict[str, Any]) -> str:
    meta = input_.get("meta", {})
    parts = [input_["kind"]]
    devices = [d for d in meta.get("devices") or [] if isinstance(d, dict)]
    if devices:
        parts.append(devices[0].get("name") or "unknown device")
    if meta.get("rank") is not None:
        parts.append(f"rank {meta['rank']} of {meta.get('world_size')}")
    return ", ".join(str(p) for p in parts)


def gain_text(gain: dict[str, Any]) -> str:
    """An estimated gain as '38.1 ms/step (43.2 % of the time)', '12.0 ms (...)', for a failure
    (an OOM, a hang: no speed-up) 'prevents the OOM that stopped the run', for memory
    '4.00 GiB of memory (5.0 %)'."""
    if "prevents" in gain:
        return f"prevents {gain['prevents']}"
    if "memory_bytes" in gain:
        return f"{format_bytes(gain['memory_bytes'])} of memory ({gain.get('memory_pct', 0):.1f} %)"
    share = f"{gain.get('pct', 0):.1f} % of the time"
    for key, unit in (("time_ms_per_step", "ms/step"), ("time_ms", "ms")):
        if key in gain:
            return f"{gain[key]:.1f} {unit} ({share})"
    return share


# the findings table's gain columns, one unit each; a column no finding fills is left out
GAIN_COLUMNS = (("Gain ms/step", lambda g: g.get("time_ms_per_step"), "{:.1f}"),
                ("Gain ms", lambda g: None if "time_ms_per_step" in g else g.get("time_ms"), "{:.1f}"),
                ("Gain % of time", lambda g: None if "prevents" in g else g.get("pct"), "{:.1f}"),
                ("Gain memory", lambda g: g.get("memory_bytes"), "bytes"),
                ("Gain % of memory", lambda g: g.get("memory_pct"), "{:.1f}"),
                ("Fix prevents", lambda g: g.get("prevents"), "{}"))


def finding_rows(findings: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    gains = [f["estimated_gain"] for f in findings]
    columns = [c for c in GAIN_COLUMNS if any(c[1](g) is not None for g in gains)]
    header = ["Severity", "Finding", *(c[0] for c in columns), "Title"]
    return header, [[f["severity"], f["id"], *(_format(get(g), fmt) for _, get, fmt in columns), f["title"]]
                    for f, g in zip(findings, gains)]
