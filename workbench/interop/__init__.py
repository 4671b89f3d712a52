"""Interop with the tools PyTorch users already know: HTA and the TensorBoard profiler plugin.

`tensorboard` reads and writes the plugin's log-folder layout (no extra dependency); `hta`
hands an input's traces to HTA and turns workbench's per-rank numbers into the DataFrames HTA
returns (needs the `[hta]` extra: pandas, and HTA itself for `trace_analysis`).
"""
