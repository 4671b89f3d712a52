"""Forward passes of a model called in a loop (Hugging Face `generate()`, a hand-written decoder): which
model ran each pass, what its KV cache held before it, and the phases that follow.

The model is the module event (`nn.Module: LlamaForCausalLM_1`, recorded with `with_stack=True`) that
holds exactly one token-embedding call and other modules; without module events, the embedding table's
shape. A pass's past is its first attention call's key length less its new tokens, kept only where
every next pass of that model confirms it (a cache that grows by what it kept: a static cache's fixed
key length does not). With two models interleaved, the smaller one drafts and the larger verifies;
with one, a multi-token pass over a non-empty cache verifies candidates found elsewhere (prompt
lookup, n-grams). A verify pass proposes the draft passes since the previous verify (else its new
tokens less one); the next pass's past says how many it kept: accepted = proposed - (past + new - next past).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.decode_bytes import SDPA, pass_weights
from workbench.analyses.stacks import PYTHON_CATEGORIES
from workbench.models.trace import EventTable

MODULE_PREFIX = "nn.Module: "
UNKNOWN = -1


@dataclass
class ModelPasses:
    """Per pass (in time order): the model, the host span of its forward, past tokens, phase, proposed and
    accepted candidate tokens (-1 where unknown)."""

    model: list[str]
    start_us: np.ndarray
    end_us: np.ndarray
    past: np.ndarray
    phase: list[str]
    proposed: np.ndarray
    accepted: np.ndarray
    from_modules: bool


def model_passes(events: EventTable, calls: np.ndarray, batch: np.ndarray, tokens: np.ndarray) -> ModelPasses:
    """The passes of the token-embedding `calls` (time order) with `batch` sequences of `tokens` new tokens."""
    module, from_modules = _model_modules(events, calls)
    names = events.names
    model = [names[events.name[m]][len(MODULE_PREFIX):] if m >= 0 else _table_of(events, c)
             for m, c in zip(module.tolist(), calls.tolist())]
    start = np.where(module >= 0, events.ts[np.maximum(module, 0)], events.ts[calls])
    end = np.where(module >= 0, events.end[np.maximum(module, 0)], events.end[calls])
    host = events.category_mask(cat.HOST_OP_CATEGORIES)
    # where a pass's own operators end: its module's end, else the next pass's start
    limit = np.where(module >= 0, end, np.append(start[1:], float(events.end[host].max()) if host.any() else np.inf))
    target = _target(events, host, model, start, limit, tokens)
    past = _past(events, [m if target is None or m == target else None for m in model], start, limit, tokens)
    phase, proposed, accepted = _phases(model, target, batch, tokens, past)
    return ModelPasses(model, start, end, past, phase, proposed, accepted, from_modules)


def _model_modules(events: EventTable, calls: np.ndarray) -> tuple[np.ndarray, bool]:
    """Per call, the longest module event on its thread that holds it, no other call and other modules; all
    -1 unless every call has one."""
    out = np.full(len(calls), UNKNOWN, dtype=np.int64)
    mods = np.flatnonzero(events.category_mask(PYTHON_CATEGORIES) & events.name_mask(
        lambda n: n.startswith(MODULE_PREFIX)))
    if not len(mods) or not len(calls):
        return out, False
    mods = mods[np.argsort(events.ts[mods], kind="stable")]
    mod_ts, mod_end = events.ts[mods], events.end[mods]
    call_ts = events.ts[calls]
    holds = np.searchsorted(call_ts, mod_end, side="right") - np.searchsorted(call_ts, mod_ts, side="left")
    nested = np.searchsorted(mod_ts, mod_end, side="right") - np.arange(1, len(mods) + 1)
    best = np.full(len(calls), -np.inf)
    for j in np.flatnonzero((holds == 1) & (nested >= 2)).tolist():
        k = int(np.searchsorted(call_ts, mod_ts[j], side="left"))
        m, c = int(mods[j]), int(calls[k])
        if events.end[c] <= mod_end[j] and events.tid[m] == events.tid[c] and events.pid[m] == events.pid[c] \
                and events.dur[m] > best[k]:
            best[k], out[k] = events.dur[m], m
    found = bool((out >= 0).all())
    return (out if found else np.full(len(calls), UNKNOWN, dtype=np.int64)), found


def _table_of(events: EventTable, call: int) -> str:
    """A model named by its embedding table's shape, where no module event says which model ran."""
    dims = events.dims_of_code(int(events.shapes[call]))
    return f"embedding{dims[0]}" if dims else "embedding"


def _past(events: EventTable, model: list[str | None], start: np.ndarray, bounds: np.ndarray,
          tokens: np.ndarray) -> np.ndarray:
    """Per pass, the KV positions cached before it: the first SDPA call's key length less its new tokens;
    -1 for a draft (model None) and for every pass of a model whose next passes contradict a cache that
    grows by what it keeps (static, paged, absent): after a pass, the next one's past is 0 (a new
    sequence) or at most this past plus its tokens, and exactly one more after a one-token pass."""
    sdpa = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(SDPA.match))
    sdpa = sdpa[np.argsort(events.ts[sdpa], kind="stable")]
    at = np.searchsorted(events.ts[sdpa], start, side="left")
    past = np.full(len(start), UNKNOWN, dtype=np.int64)
    for k, i in enumerate(at.tolist()):
        if model[k] is not None and i < len(sdpa) and events.ts[sdpa[i]] < bounds[k]:
            dims = events.dims_of_code(int(events.shapes[sdpa[i]]))
            key = dims[1] if len(dims) > 1 else None
            if isinstance(key, list) and len(key) == 4 and type(key[2]) is int and key[2] >= tokens[k]:
                past[k] = key[2] - tokens[k]
    for name in set(model) - {None}:
        mine = [k for k, m in enumerate(model) if m == name]
        if any(past[k] < 0 for k in mine) or not all(
                past[n] == 0 or (past[n] == past[k] + 1 if tokens[k] == 1 else past[n] <= past[k] + tokens[k])
                for k, n in zip(mine, mine[1:])):
            past[mine] = UNKNOWN
    return past


def _phases(model: list[str], target: str | None, batch: np.ndarray, tokens: np.ndarray,
            past: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(phase, proposed, accepted) per pass; see the module docstring."""
    n = len(model)
    phase = ["draft" if target is not None and m != target else
             "decode" if tokens[k] == 1 else
             "verify" if target is not None or past[k] > 0 else "prefill"
             for k, m in enumerate(model)]
    proposed = np.full(n, UNKNOWN, dtype=np.int64)
    accepted = np.full(n, UNKNOWN, dtype=np.int64)
    drafted = 0
    next_of = _next_of_same_model(model)
    for k in range(n):
        if phase[k] == "draft":
            drafted += 1
            continue
        if phase[k] == "verify" and batch[k] == 1:
            proposed[k] = drafted if target is not None else tokens[k] - 1
            nxt = next_of[k]
            if nxt >= 0 and past[k] >= 0 and past[nxt] > 0:
                rejected = past[k] + tokens[k] - past[nxt]
                accepted[k] = proposed[k] - rejected if 0 <= rejected <= proposed[k] else UNKNOWN
        drafted = 0
    return phase, proposed, accepted


def _target(events: EventTable, host: np.ndarray, model: list[str], start: np.ndarray, limit: np.ndarray,
            tokens: np.ndarray) -> str | None:
    """The verifying model when two models take turns (a draft model's passes between its passes): the
    one whose first pass reads more weights (more operators at a tie), provided one of its later passes
    takes the drafted tokens plus one; else None (two models that merely alternate)."""
    names = list(dict.fromkeys(model))
    if len(names) != 2 or sum(1 for a, b in zip(model, model[1:]) if a != b) < 3:
        return None

    def size(name: str) -> tuple[int, int]:
        k = model.index(name)
        start_us, end_us = float(start[k]), float(limit[k])
        return (pass_weights(events, start_us, end_us)[0],
                int((host & (events.ts >= start_us) & (events.ts < end_us)).sum()))

    target = max(names, key=size)
    drafted, seen = 0, False
    for k, name in enumerate(model):
        if name != target:
            drafted += 1
            continue
        if seen and drafted and tokens[k] == drafted + 1:
            return target
        drafted, seen = 0, True
    return None


def _next_of_same_model(model: list[str]) -> np.ndarray:
    out = np.full(len(model), UNKNOWN, dtype=np.int64)
    last: dict[str, int] = {}
    for k in range(len(model) - 1, -1, -1):
        out[k] = last.get(model[k], UNKNOWN)
        last[model[k]] = k
    return out
