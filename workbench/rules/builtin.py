"""Imports every module that registers rules, so that `RULES` is complete."""

import workbench.rules.attention  # noqa: F401
import workbench.rules.blocking_copies  # noqa: F401
import workbench.rules.convolution  # noqa: F401
import workbench.rules.cuda_graphs  # noqa: F401
import workbench.rules.distributed  # noqa: F401
import workbench.rules.distributed_perf  # noqa: F401
import workbench.rules.gpu_idle  # noqa: F401
import workbench.rules.inference  # noqa: F401
import workbench.rules.kv_cache  # noqa: F401
import workbench.rules.quantization  # noqa: F401
import workbench.rules.input  # noqa: F401
import workbench.rules.launch  # noqa: F401
import workbench.rules.optimizer  # noqa: F401
import workbench.rules.precision  # noqa: F401
import workbench.rules.serving  # noqa: F401
import workbench.rules.speculative  # noqa: F401
import workbench.rules.sync  # noqa: F401
import workbench.rules.memory  # noqa: F401
import workbench.rules.memory_causes  # noqa: F401
import workbench.rules.distributed_failures  # noqa: F401
