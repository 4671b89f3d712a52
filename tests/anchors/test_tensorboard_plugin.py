"""workbench's findings against the TensorBoard profiler plugin's seven recommendations (torch-tb-profiler 0.4.3).

The plugin's own code runs here (`RunProfileData.parse`, which computes `recommendations`). For
each rule: the traces where it fires and where workbench fires its counterpart, and, where they
differ, the fact in the trace that makes the plugin's rule wrong there. docs/interop.md keeps the
same list.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest

from tests.anchors.conftest import SKIP_REASON
from tests.conftest import GRAPH, NAIVE, OPTIMIZED, RANKS, SAMPLES, SHARED, shared_path
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.loaders.kineto import load_kineto
from workbench.rules import run_rules

pytest.importorskip("torch_tb_profiler", reason=SKIP_REASON)
from torch_tb_profiler.profiler.data import RunProfileData  # noqa: E402
from torch_tb_profiler.profiler.event_parser import ProfileRole  # noqa: E402

DDP_GLOO = SAMPLES / "cpu" / "ddp_gloo_straggler"
RESNET = "public/kineto/tb_plugin_samples/resnet50_num_workers_{}/worker0.{}.pt.trace.json.gz"
RESNET_0 = [RESNET.format(0, 1623143089861), RESNET.format(0, 1623143566756)]  # DataLoader in the main process
RESNET_4 = [RESNET.format(4, 1623212756351), RESNET.format(4, 1623213129365)]  # four loader workers
HTA = "public/hta/"
# the plugin's text of each rule, and workbench's counterpart findings
RULES = {
    "data_loader": ("time cost on input data loading", {"input-bound"}),
    "data_parallel": ("DistributedDataParallel instead of DataParallel", set()),
    "ddp_backend": ("Nccl backend is currently the fastest", set()),
    "communication": ("time cost on communication", {"exposed-communication", "straggler-rank"}),
    "gpu_utilization": ("low utilization", {"low-gpu-utilization", "gpu-gaps"}),
    "tensor_cores": ("Tensor Cores eligible operators", {"fp32-matmul", "channels-last"}),
    "peak_memory": ("at the limit of device memory capacity", set()),
}


def path_of(name: str | Path) -> Path:
    return shared_path(name) if isinstance(name, str) else name


@cache
def plugin(name: str | Path) -> RunProfileData:
    with tempfile.TemporaryDirectory() as cache_dir:
        return RunProfileData.parse("worker", "span", str(path_of(name)), cache_dir)


def plugin_fires(name: str | Path, rule: str) -> bool:
    return any(RULES[rule][0] in text for text in plugin(name).recommendations)


@cache
def workbench_ids(name: str | Path) -> frozenset[str]:
    return frozenset(f.id for f in run_rules(analyze_path(path_of(name), AnalyzeOptions())))


def workbench_fires(name: str | Path, rule: str) -> bool:
    return bool(workbench_ids(name) & RULES[rule][1])


def share(name: str | Path, role: ProfileRole) -> float:
    costs = plugin(name).avg_costs.costs
    return costs[role] / costs[ProfileRole.Total]


def categories_of(name: str | Path, event: str) -> set[str]:
    events = load_kineto(path_of(name)).events
    mask = events.name_mask(lambda n: n.startswith(event))
    return {events.categories[c] for c in events.cat[mask]}


LOW_UTILIZATION = [OPTIMIZED, RANKS / "sampled_rank-0.json.gz", RANKS / "sampled_rank-1.json.gz",
                   "h100/infer_decode/infer_decode.pt.trace.json.gz",
                   HTA + "nccl_parser_config/nccl_data.json.gz", HTA + "negative_queue_length/rank0.json.gz",
                   HTA + "amd_mi250/mi250_minitoy_train_ROCm6_2_kineto.json.gz",
                   HTA + "critical_path_alexnet/benchmark_result_2869224_1695835535_trace.json.gz",
                   HTA + "edge_cases/inference_rank_1.json.gz"]
BUSY = [NAIVE, GRAPH, *RESNET_0, *RESNET_4, HTA + "ns_resolution/rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz",
        HTA + "trace_diff/test/test.json.gz", HTA + "trace_diff/control/control.json.gz",
        HTA + "df_index_resolver/df_index_resolver.json.gz"]
AGREEING = [  # (trace, rule, both fire?)
    *[(p, "data_loader", True) for p in RESNET_0],
    *[(p, "data_loader", False) for p in RESNET_4],
    *[(p, "tensor_cores", True) for p in RESNET_0 + RESNET_4],
    *[(p, "gpu_utilization", True) for p in LOW_UTILIZATION],
    *[(p, "gpu_utilization", False) for p in BUSY],
    *[(p, "communication", True) for p in sorted(DDP_GLOO.iterdir())],
]


def case_id(case) -> str:
    name = case[0] if isinstance(case[0], str) else case[0].name
    return f"{case[1]}:{name.split('/')[-1]}"


@pytest.mark.parametrize(("trace", "rule", "fires"), AGREEING, ids=[case_id(c) for c in AGREEING])
def test_workbench_fires_where_the_plugin_fires(trace, rule, fires):
    assert plugin_fires(trace, rule) is fires
    if isinstance(trace, Path) and trace.parent == DDP_GLOO:
        trace = DDP_GLOO  # straggler-rank is a finding of the job, not of one rank's file
    assert workbench_fires(trace, rule) is fires


def test_data_loader_rule_misses_pytorch2_dataloader_annotations():
    """PyTorch 2 records `enumerate(DataLoader)#…__next__` as a user_annotation; the plugin drops those events.

    train_naive spends 32.8 ms in DataLoader iterations with the GPU idle (10 % of the GPU
    window): workbench's input-bound fires; the plugin counts 0 % DataLoader time.
    """
    assert categories_of(NAIVE, "enumerate(DataLoader)") == {"user_annotation"}
    assert categories_of(RESNET_0[0], "enumerate(DataLoader)") == {"cpu_op"}  # PyTorch 1.9: seen
    assert share(NAIVE, ProfileRole.DataLoader) == 0.0 and not plugin_fires(NAIVE, "data_loader")
    assert "input-bound" in workbench_ids(NAIVE)


def test_communication_rule_ignores_all_to_all_and_send_recv():
    """The plugin's communication ops are `nccl:`/`gloo:` broadcast, reduce, all_reduce, all_gather, reduce_scatter.

    The sampled ranks spend most of their collective time in all_to_all: 0.02 % communication
    for the plugin, exposed-communication (over 150 ms per step) for workbench.
    """
    [job] = analyze_path(RANKS, AnalyzeOptions())
    for rank in job.ranks:
        name = RANKS / Path(rank.path).name
        assert rank.tables["collectives"][0]["kind"] == "all_to_all"
        assert share(name, ProfileRole.Communication) < 0.001 and not plugin_fires(name, "communication")
    assert "exposed-communication" in workbench_ids(RANKS)


def test_communication_rule_counts_host_time_when_no_kernel_was_recorded():
    """nccl_healthy recorded no GPU kernel: the plugin's 11.6 % is the host time of asynchronous `nccl:` calls."""
    trace = "h100/nccl_timeout/nccl_healthy.pt.trace.json.gz"
    assert share(trace, ProfileRole.Communication) == pytest.approx(0.116, abs=0.001)
    assert plugin_fires(trace, "communication")
    [result] = analyze_path(shared_path(trace), AnalyzeOptions())
    assert result.metrics["kernel_count"] == 0 and result.metrics["collective_ms"] == 0.0
    assert not workbench_fires(trace, "communication")


def test_communication_rule_on_gloo_counts_waiting_for_the_straggler():
    """ddp_gloo_straggler: ranks 0, 1, 3 spend 76-86 % of the step "in communication", rank 2 (the straggler) 18 %.

    That time is the others waiting for rank 2's data loading in the collectives: workbench names
    it (straggler-rank); the plugin recommends gradient compression. One rank's gloo trace alone
    (cpu_only_gloo, rank 34 of 300) cannot tell waiting from transfer: the plugin fires, workbench does not.
    """
    shares = {p.name: round(share(p, ProfileRole.Communication), 2) for p in sorted(DDP_GLOO.iterdir())}
    assert shares == {"rank-0.pt.trace.json.gz": 0.78, "rank-1.pt.trace.json.gz": 0.76,
                      "rank-2.pt.trace.json.gz": 0.18, "rank-3.pt.trace.json.gz": 0.86}
    [finding] = [f for f in run_rules(analyze_path(DDP_GLOO, AnalyzeOptions())) if f.id == "straggler-rank"]
    assert finding.evidence["rank"] == 2
    lone = HTA + "cpu_only_gloo/rank-34.Jul_15_10_52_41.1074.pt.trace.json.gz"
    assert plugin_fires(lone, "communication") and not workbench_fires(lone, "communication")


def test_tensor_core_rule_is_silenced_by_any_tensor_core_kernel():
    """The plugin fires only when no kernel at all uses tensor cores; train_naive's 79 % fp32 SIMT GEMMs slip by."""
    profile = plugin(NAIVE)
    assert profile.tc_used_ratio == pytest.approx(0.348, abs=0.001)
    assert not plugin_fires(NAIVE, "tensor_cores") and "fp32-matmul" in workbench_ids(NAIVE)


def test_ddp_rules_cannot_fire_on_pytorch2_traces():
    """DataParallel/DDP are found by `DataParallel.forward` / `DistributedDataParallel.forward` events,
    which PyTorch 2 records as user_annotations, which the plugin drops (and the backend rule needs a GPU)."""
    assert categories_of(DDP_GLOO / "rank-0.pt.trace.json.gz", "DistributedDataParallel.forward") == {"user_annotation"}
    assert not plugin(DDP_GLOO / "rank-0.pt.trace.json.gz").use_ddp
    traces = [NAIVE, OPTIMIZED, GRAPH, RANKS / "sampled_rank-0.json.gz", *sorted(DDP_GLOO.iterdir())]
    traces += [p for p in RESNET_0 + RESNET_4 if (SHARED / p).exists()]
    for trace in traces:
        assert not plugin_fires(trace, "data_parallel") and not plugin_fires(trace, "ddp_backend")


@pytest.mark.parametrize(("trace", "peak"), [(NAIVE, 5714351104), (OPTIMIZED, 3054834176)])
def test_peak_memory_matches_and_stays_below_the_plugin_threshold(trace, peak):
    """Same peak of allocated GPU memory from the trace's memory events; 7 % and 4 % of 80 GB, far from 90 %."""
    plugin_peak = plugin(trace).memory_snapshot.get_peak_memory()
    [gpu_peak] = [v for (_, device_id), v in plugin_peak.items() if device_id >= 0]  # -1 is the host
    [result] = analyze_path(trace, AnalyzeOptions())
    assert gpu_peak == result.metrics["memory_peak_allocated_bytes"] == peak
    assert peak < 0.9 * result.meta["devices"][0]["totalGlobalMem"]
    assert not plugin_fires(trace, "peak_memory")
