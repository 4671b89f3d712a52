"""Run folders written by `workbench.capture`: their `manifest.json` as an input of its own.

The folder's traces, snapshots and OOM messages are analyzed by their own kinds, as in any
folder; this input adds how the run was made (versions, devices, settings, the command or notebook
cell), how it ended, host-side step times and, on `mps`, the allocator's memory per step.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean, median
from typing import Any

from workbench.errors import InputError
from workbench.inputs.analyzed import AnalyzedInput
from workbench.inputs.registry import AnalyzeOptions, InputKind, register_kind

KIND = "capture_run"
SCHEMA = b'"workbench.capture/1"'
_META = ("status", "error", "worker", "device", "world_size", "versions", "host", "devices", "settings",
         "environment", "source")


def is_capture_manifest(path: Path, head: bytes) -> bool:
    return path.name.startswith("manifest") and path.name.endswith(".json") and SCHEMA in head[:256]


def analyze_manifests(path: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """The run folder's input (the registry groups files by folder); the manifests of a job's ranks are its ranks."""
    manifests = sorted((_load(f) for f in files), key=lambda m: m.get("rank") or 0)
    return [_run_input(files[0].parent, manifests)]


def _load(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"malformed capture manifest: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("timings"), dict):
        raise InputError(path, "malformed capture manifest: no 'timings' object")
    return manifest


def _run_input(folder: Path, manifests: list[dict[str, Any]]) -> AnalyzedInput:
    first = manifests[0]
    timings = first["timings"]
    step_ms = [float(ms) for ms in timings.get("step_ms") or []]
    metrics: dict[str, Any] = {"captured_steps": timings.get("steps"), "capture_duration_s": timings.get("duration_s"),
                               "trace_export_s": timings.get("trace_export_s")}
    if step_ms:
        metrics["host_step_ms_median"] = median(step_ms)
        metrics["host_step_ms_mean"] = fmean(step_ms)
    samples = first.get("mps_memory") or []
    if samples:
        metrics["mps_allocated_peak_bytes"] = max(s["current_allocated_bytes"] for s in samples)
        metrics["mps_driver_allocated_peak_bytes"] = max(s["driver_allocated_bytes"] for s in samples)
        metrics["mps_recommended_max_bytes"] = samples[-1]["recommended_max_bytes"]
    meta = {key: first.get(key) for key in _META}
    meta["ranks"] = [m.get("rank") for m in manifests]
    meta["started_utc"] = timings.get("started_utc")
    tables = {"files": first.get("files") or [],
              "host_steps": [{"step": i, "ms": ms} for i, ms in enumerate(step_ms)]}
    if samples:
        tables["mps_memory"] = samples
    warnings = [f"{folder}: {_who(m)}ended with {m.get('error') or m.get('status')}"
                for m in manifests if m.get("status") != "ok"]
    return AnalyzedInput(path=str(folder), kind=KIND, metrics=metrics, meta=meta, tables=tables, warnings=warnings)


def _who(manifest: dict[str, Any]) -> str:
    return "the run " if manifest.get("rank") is None else f"rank {manifest['rank']} "


register_kind(InputKind(KIND, is_capture_manifest, analyze_manifests, grouped=True))
