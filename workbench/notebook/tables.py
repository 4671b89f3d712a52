"""Kernels & operators tab: the report's kernel and operator tables, sortable, with their shares."""

from __future__ import annotations

from workbench.notebook.parts import Column, Part, Table, inputs_with
from workbench.notebook.sources import DashboardData

KERNELS = [Column("name", "Kernel"), Column("kind", "Kind"), Column("count", "Count"),
           Column("total_ms", "Total ms"), Column("mean_us", "Mean µs"), Column("share_pct", "Share of kernel time %")]
OPERATORS = [Column("name", "Operator"), Column("count", "Count"), Column("self_cpu_ms", "Self CPU ms"),
             Column("cpu_total_ms", "CPU total ms"), Column("gpu_ms", "GPU ms (kernels launched)"),
             Column("input_shapes", "Input shapes")]


def parts(data: DashboardData) -> list[Part]:
    out: list[Part] = []
    for _, tables, title in inputs_with(data.report, {"kernels", "operators"}):
        out += title + [Table(name.capitalize(), columns, tables[name])
                        for name, columns in (("kernels", KERNELS), ("operators", OPERATORS)) if tables.get(name)]
    return out
