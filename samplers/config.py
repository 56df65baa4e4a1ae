"""Settings of stage 2's command, the neighbour-sampler benchmark (``bench-sampler``): a
frozen dataclass that validates itself; light to import (the command line builds its
options from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from audiograph.core.config import Validated
from audiograph.core.errors import ContractError, check_device, check_min


@dataclass(frozen=True)
class SamplerBenchConfig(Validated):
    """Options of ``bench-sampler`` (:func:`audiograph.samplers.bench.run_sampler_bench`).

    Attributes:
        graph: graph directory (none: the 42.5 M-edge synthetic graph).
        fanout: neighbours per hop, e.g. 10,5.
        batch_size: seeds per batch.
        seed_type: node type of the seeds (none: track, or the graph's largest type).
        batches: timed batches per sampler.
        device: cpu or cuda[:i] for audiograph's sampler (the peer stays on CPU).
        scale: shrink the synthetic graph (every node count times this).
        multilink_graph: a graph directory (e.g. Douban) for one balanced and one
            unbalanced multi-link epoch.
        load: busy single-threaded processes running beside both samplers (a training step
            next to the sampler).
    """

    graph: str | None = None
    fanout: list[int] = field(default_factory=lambda: [15, 10])
    batch_size: int = 1024
    seed_type: str | None = None
    batches: int = 20
    device: str = "cpu"
    scale: float = 1.0
    multilink_graph: str | None = None
    load: int = 0

    def validate(self) -> None:
        """Raise ContractError on out-of-range options."""
        if not self.fanout or any(not isinstance(f, int) or f < 1 for f in self.fanout):
            raise ContractError(f"--fanout needs sizes >= 1, got {self.fanout}")
        check_min("batch-size", self.batch_size, 1)
        check_min("batches", self.batches, 1)
        check_min("load", self.load, 0)
        if not self.scale > 0:
            raise ContractError(f"--scale must be > 0, got {self.scale}")
        check_device(self.device)
