"""Kernels & operators tab: the report's kernel and operator tables, sortable, with their shares."""

from __future__ import annotations

from workbench.notebook.parts import Column, Part, Table, input_title
from workbench.notebook.sources import DashboardData

KERNELS = [Column("name", "Kernel"), Column("kind", "Kind"), Column("count", "Count"),
           Column("total_ms", "Total ms"), Column("mean_us", "Mean µs"), Column("share_pct", "Share of kernel time %")]
OPERATORS = [Column("name", "Operator"), Column("count", "Count"), Column("self_cpu_ms", "Self CPU ms"),
             Column("cpu_total_ms", "CPU total ms"), Column("gpu_ms", "GPU ms (kernels launched)"),
             Column("input_shapes", "Input shapes")]


def parts(data: DashboardData) -> list[Part]:
    inputs = data.report["inputs"]
    out: list[Part] = []
    for input_ in inputs:
        tables = input_.get("tables", {})
        found = [Table(title, columns, tables[name]) for name, title, columns in
                 (("kernels", "Kernels", KERNELS), ("operators", "Operators", OPERATORS)) if tables.get(name)]
        if found:
            out += input_title(input_, len(inputs) > 1) + found
    return out
