"""Capture Hugging Face `generate()` on the CPU with tiny randomly initialised Llama models (no weights
downloaded), one `workbench.capture` run folder per case: what the inference analyses see of each way
of decoding. The traces show structure (passes, shapes, operators), not speed.

Usage: HF_HUB_OFFLINE=1 python tools/capture/tiny_generate.py OUT [CASE ...]
       (needs `transformers`; OUT/<case> gets a new suffix if it exists; all cases when none is named)

Cases: dynamic (DynamicCache, batch 2), static (`cache_implementation="static"`), assisted (a 1-layer
draft model proposes 4 tokens per round), prompt_lookup (`prompt_lookup_num_tokens=3`), and three ways
of int8 weights: quantize_dynamic (fbgemm `quantized::linear_dynamic`), int8pack
(`torch._weight_int8pack_mm`) and dequantize (int8 weights turned to float32 before a dense `linear`).
Each case runs `generate()` twice: the first call is skipped, the second recorded.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import workbench  # noqa: E402

TARGET = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256)
DRAFT = {**TARGET, "num_hidden_layers": 1}  # the target's embedding, first layer and head: a layer-skip draft
PROMPT_TOKENS = 12
NEW_TOKENS = 8
SPECULATIVE_NEW_TOKENS = 12


def llama(config: dict[str, Any], seed: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**config)).eval()


class DequantizeLinear(torch.nn.Module):
    """int8 weights with a scale per output channel, turned back to float32 before a dense matmul."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        scale = linear.weight.detach().abs().amax(dim=1).clamp(min=1e-8) / 127
        self.register_buffer("weight_int8", torch.round(linear.weight.detach() / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight_int8.to(x.dtype) * self.scale[:, None])


class Int8PackLinear(DequantizeLinear):
    """The same int8 weights read by the fused weight-only kernel `torch._weight_int8pack_mm`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch._weight_int8pack_mm(x.reshape(-1, x.shape[-1]), self.weight_int8, self.scale)
        return out.reshape(*x.shape[:-1], -1)


def replace_linears(model: torch.nn.Module, make: Callable[[torch.nn.Linear], torch.nn.Module]) -> torch.nn.Module:
    """Every Linear of the decoder layers replaced (the embedding and lm_head stay float32)."""
    for layer in model.model.layers:
        for name, child in list(layer.named_modules()):
            if isinstance(child, torch.nn.Linear):
                parent_name, _, attr = name.rpartition(".")
                setattr(layer.get_submodule(parent_name) if parent_name else layer, attr, make(child))
    return model


def prompt(batch: int = 1, repeat: bool = False) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    ids = torch.randint(3, 512, (batch, PROMPT_TOKENS // 3 if repeat else PROMPT_TOKENS))
    if repeat:  # text that repeats itself: what prompt lookup finds its candidates in
        ids = ids.repeat(1, 3)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def case(name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model, generate() arguments) of a case."""
    greedy = dict(do_sample=False, pad_token_id=0, max_new_tokens=NEW_TOKENS)
    if name == "dynamic":
        return llama(TARGET, 0), {**prompt(batch=2), **greedy}
    if name == "static":
        return llama(TARGET, 0), {**prompt(), **greedy, "cache_implementation": "static"}
    if name == "assisted":
        target = llama(TARGET, 0)
        draft = llama(DRAFT, 2)
        draft.load_state_dict(target.state_dict(), strict=False)  # layer 1 and up are not in the draft
        draft.generation_config.num_assistant_tokens = 4
        draft.generation_config.num_assistant_tokens_schedule = "constant"
        draft.generation_config.assistant_confidence_threshold = 0.0  # always propose all 4
        return target, {**prompt(), **greedy, "max_new_tokens": SPECULATIVE_NEW_TOKENS, "assistant_model": draft}
    if name == "prompt_lookup":
        return llama(TARGET, 0), {**prompt(repeat=True), **greedy, "max_new_tokens": SPECULATIVE_NEW_TOKENS,
                                   "prompt_lookup_num_tokens": 3}
    if name == "quantize_dynamic":
        model = torch.ao.quantization.quantize_dynamic(llama(TARGET, 0), {torch.nn.Linear}, dtype=torch.qint8)
        return model, {**prompt(), **greedy}
    if name == "int8pack":
        return replace_linears(llama(TARGET, 0), Int8PackLinear), {**prompt(), **greedy}
    if name == "dequantize":
        return replace_linears(llama(TARGET, 0), DequantizeLinear), {**prompt(), **greedy}
    raise SystemExit(f"unknown case {name!r}; cases: {', '.join(CASES)}")


CASES = ("dynamic", "static", "assisted", "prompt_lookup", "quantize_dynamic", "int8pack", "dequantize")


def capture(out: str, name: str) -> None:
    model, kwargs = case(name)
    with torch.no_grad(), workbench.capture(out=os.path.join(out, name), steps={"wait": 1, "warmup": 0, "active": 1},
                                            memory=False) as cap:
        for _ in cap.wrap(range(2)):
            generated = model.generate(**kwargs)
    print(name, cap.path, "generated", tuple(generated.shape))


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    torch.set_num_threads(1)
    for name in argv[1:] or CASES:
        capture(argv[0], name)


if __name__ == "__main__":
    main(sys.argv[1:])
