"""Which steps a capture records: skip the first steps (compilation, caches), warm up, record a few."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Schedule:
    """`torch.profiler.schedule` arguments: `wait` steps skipped, `warmup` steps traced but dropped,
    `active` steps recorded, the cycle done `repeat` times (one trace file per cycle)."""

    wait: int = 1
    warmup: int = 1
    active: int = 3
    repeat: int = 1

    def __post_init__(self) -> None:
        if min(self.wait, self.warmup, self.repeat) < 0 or self.active < 1 or self.repeat < 1:
            raise ValueError(f"invalid capture schedule {self}: active and repeat must be >= 1, the rest >= 0")

    @property
    def total(self) -> int:
        """Steps after which nothing more is recorded."""
        return (self.wait + self.warmup + self.active) * self.repeat

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def to_torch(self) -> Callable[[int], Any]:
        """The `torch.profiler.schedule` function (without its warning when `warmup` is 0)."""
        import warnings

        import torch.profiler

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Profiler won't be using warmup")
            return torch.profiler.schedule(wait=self.wait, warmup=self.warmup, active=self.active,
                                           repeat=self.repeat)


def schedule_of(steps: int | Schedule | dict[str, int] | None) -> Schedule:
    """The schedule for `capture(steps=...)`: None is the default (skip 1, warm up 1, record 3);
    an int N records N steps after the same skip and warm-up; a dict names the fields."""
    if steps is None:
        return Schedule()
    if isinstance(steps, Schedule):
        return steps
    if isinstance(steps, int) and not isinstance(steps, bool):
        return Schedule(active=steps)
    if isinstance(steps, dict):
        return Schedule(**steps)
    raise TypeError("steps must be an int, a dict of schedule fields or a Schedule")
