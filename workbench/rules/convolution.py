"""Convolution networks in NCHW float32: layout transposes and no tensor cores."""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import kernel_rows

CONV_OP = re.compile(r"^aten::(cudnn|miopen|mkldnn)?_?convolution|^aten::conv\dd$|^aten::_convolution")
LAYOUT_KERNEL = re.compile(r"nchwToNhwc|nhwcToNchw|NCHW|convertTensor", re.IGNORECASE)
FP32_CONV = re.compile(r"<float, float|scudnn|sgemm|_f32f32|fp32", re.IGNORECASE)
MIN_CONV_SHARE = 0.1
AMP_SPEEDUP = 2.0

CODE = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Sequential(  # stands for your network; the trace's convolution input: {shape}
    torch.nn.Conv2d({channels}, 64, 3, padding=1), torch.nn.BatchNorm2d(64), torch.nn.ReLU()
).to(device)
model = model.to(memory_format=torch.channels_last)
x = torch.randn(2, {channels}, 32, 32, device=device).to(memory_format=torch.channels_last)
with torch.autocast(device_type=device, dtype=torch.bfloat16):
    y = model(x)
y.float().mean().backward()
'''


@rule("channels-last", "compute", TRACE_KINDS,
      "convolutions in NCHW layout or float32: layout transposes and no tensor cores")
@on_traces
def channels_last(ctx: TraceContext) -> Iterator[Finding]:
    e = ctx.events
    convs = ctx.named(CONV_OP, cat.HOST_OP_CATEGORIES)
    if not len(convs):
        return
    conv_gpu = ctx.gpu_of_ops(convs)
    kernels = np.flatnonzero(ctx.kinds == cat.COMPUTE)
    kernel_us = float(e.dur[kernels].sum())
    conv_us = float(e.dur[conv_gpu].sum())
    if not kernel_us or conv_us / kernel_us < MIN_CONV_SHARE:
        return
    layout = kernels[[bool(LAYOUT_KERNEL.search(e.names[c])) for c in e.name[kernels].tolist()]]
    fp32 = conv_gpu[[bool(FP32_CONV.search(e.names[c])) for c in e.name[conv_gpu].tolist()]]
    if not len(layout) and not len(fp32):
        return
    layout_us = float(e.dur[layout].sum())
    fp32_us = float(e.dur[fp32].sum())
    gain = ctx.gain(layout_us + fp32_us * (1 - 1 / AMP_SPEEDUP),
                    "layout-conversion kernel time, plus half the float32 convolution time: channels_last with "
                    "autocast runs convolutions on tensor cores without NCHW<->NHWC transposes")
    dims = next((ctx.input_dims(i)[0] for i in convs.tolist() if ctx.input_dims(i)), [None, 3])
    yield finding_of(
        "channels-last",
        title="Convolutions run in NCHW" + (" float32" if len(fp32) else "") + ": use channels_last with autocast",
        evidence={
            "convolution_share_of_kernel_time_pct": round(100 * conv_us / kernel_us, 2),
            "fp32_convolution_ms_per_step": round(ctx.per_step_ms(fp32_us), 3),
            "layout_conversion_ms_per_step": round(ctx.per_step_ms(layout_us), 3),
            "convolution_kernels": kernel_rows(ctx, conv_gpu),
            "layout_kernels": kernel_rows(ctx, layout),
            "convolution_input_shape": dims,
        },
        gain=gain,
        fix=Fix(summary="Convert the model and inputs to torch.channels_last and run under autocast "
                        "(bf16 on Ampere+, fp16 with a GradScaler on Volta/Turing).",
                code=CODE.format(shape=dims, channels=dims[1] if isinstance(dims, list) and len(dims) > 1 else 3),
                docs=["https://pytorch.org/tutorials/intermediate/memory_format_tutorial.html"]),
    )
