"""Engine step annotations: vLLM's, SGLang's and TensorRT-LLM's names for one model forward, parsed into the
phase, requests and tokens of that pass."""

from __future__ import annotations

import re

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import EventTable

# vLLM v1 (`execute_context_9(...)_generation_37(...)`, newer with the scheduled token count first); the
# parentheses hold sq<sum of query lengths>sk<sum of sequence lengths>sqsq<..>sqsk<..>.
VLLM_LOOSE = re.compile(r"^execute_(?:\w*_)?context_")
VLLM = re.compile(r"^execute_(?:(\d{1,18})_)?context_(\d{1,18})\(sq(\d{1,18})sk(\d{1,18})[^)]*\)_generation_(\d{1,18})"
                  r"\(sq(\d{1,18})sk(\d{1,18})[^)]*\)$")
SGLANG_LOOSE = re.compile(r"^step\[")
SGLANG = re.compile(r"^step\[(EXTEND|DECODE|MIXED|TARGET_VERIFY|DRAFT_EXTEND|DRAFT_DECODE|IDLE)"
                    r"\s+bs=(\d{1,18})(?!\d)(?:\s+toks=(\d{1,18})(?!\d)|(?!\s+toks=))[^\]]*\]$")
SGLANG_PHASES = {"EXTEND": "prefill", "DECODE": "decode", "MIXED": "mixed", "TARGET_VERIFY": "verify",
                 "DRAFT_EXTEND": "draft", "DRAFT_DECODE": "draft", "IDLE": "idle"}
# TensorRT-LLM's PyExecutor (tensorrt_llm/_torch/pyexecutor/py_executor.py), NVTX around each model forward:
# `[Executor] _forward_step 12: 1 ctx reqs, 512 ctx tokens, 7 gen reqs` (the ctx tokens since 2026-05;
# older without them, without the iteration or, earliest, without `[Executor] `)
TRTLLM_LOOSE = re.compile(r"^(?:\[Executor\] )?_forward_step\b")
TRTLLM = re.compile(r"^(?:\[Executor\] )?_forward_step(?: \d{1,18})?: (\d{1,18}) ctx reqs, "
                    r"(?:(\d{1,18}) ctx tokens, )?(\d{1,18}) gen reqs$")


def engine_steps(events: EventTable) -> tuple[str, list[tuple], list[str]] | None:
    """(engine, rows, warnings) of the first engine whose step annotations the trace holds (SGLang, vLLM,
    TensorRT-LLM in that order): per parsed annotation in time order (event, phase, prefill requests, decode
    requests, prefill tokens, decode tokens[, decode context]); a warning where some did not parse."""
    notes = np.flatnonzero(events.category_mask(cat.ANNOTATION_CATEGORIES))
    names = events.names
    for engine, loose, parse in (("sglang", SGLANG_LOOSE, _sglang), ("vllm", VLLM_LOOSE, _vllm),
                                 ("tensorrt_llm", TRTLLM_LOOSE, _trtllm)):
        index = [i for i in notes.tolist() if loose.match(names[events.name[i]])]
        if not index:
            continue
        rows, warnings = [], []
        for i in sorted(index, key=lambda i: events.ts[i]):
            row = parse(names[events.name[i]])
            if row is None:
                if not warnings:
                    warnings.append(f"engine annotation {names[events.name[i]][:120]!r}: its numbers do not "
                                    "parse; such steps are left out")
                continue
            rows.append((i, *row))
        return engine, rows, warnings
    return None


def _sglang(name: str) -> tuple | None:
    """(phase, prefill requests, decode requests, prefill tokens, decode tokens) of `step[...]`."""
    match = SGLANG.match(name)
    if not match:
        return None
    phase = SGLANG_PHASES[match.group(1)]
    bs = int(match.group(2))
    toks = int(match.group(3)) if match.group(3) else (bs if phase == "decode" else -1)
    if phase in ("prefill", "draft", "verify", "mixed"):
        return phase, bs, 0, toks, 0
    return phase, 0, bs, 0, toks


def _vllm(name: str) -> tuple | None:
    match = VLLM.match(name)
    if not match:
        return None
    ctx_reqs, ctx_toks, gen_reqs, gen_toks, gen_context = (int(match.group(k)) for k in (2, 3, 5, 6, 7))
    phase = "mixed" if ctx_reqs and gen_reqs else "prefill" if ctx_reqs else "decode"
    return phase, ctx_reqs, gen_reqs, ctx_toks, gen_toks, gen_context


def _trtllm(name: str) -> tuple | None:
    """A `_forward_step` range: context requests (their tokens where the label states them, else unknown)
    and generation requests, one new token each."""
    match = TRTLLM.match(name)
    if not match:
        return None
    ctx_reqs, gen_reqs = int(match.group(1)), int(match.group(3))
    ctx_toks = int(match.group(2)) if match.group(2) is not None else -1
    phase = "mixed" if ctx_reqs and gen_reqs else "prefill" if ctx_reqs else "decode" if gen_reqs else "idle"
    return phase, ctx_reqs, gen_reqs, ctx_toks if ctx_reqs else 0, gen_reqs
