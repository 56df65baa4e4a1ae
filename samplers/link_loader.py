"""Link-prediction loader: multi-link balanced edges → batches → sampled subgraphs.

One epoch = the multi-link balanced supervision edges of every link type (with
``max_epoch_edges``, that many spread as evenly over the link types as their sizes allow),
shuffled together, cut into batches of ``batch_size`` (mixed link types). For each batch:

* negatives: ``num_negatives`` destinations per positive, uniform over the destination
  type's nodes with at least one training edge (default) or proportional to degree
  ``** 0.75`` (``negative_sampling="popularity"``); isolated nodes are never negatives;
* seeds: the distinct source, destination and negative nodes of every type (so seeds
  are of several node types at once);
* the batch's supervision edges, in both directions, are excluded from its
  message-passing subgraph (no label leakage);
* the subgraph comes from :class:`~audiograph.samplers.neighbor.NeighborSampler` and gets, per link
  type, ``edge_label_index`` ``[2, B]`` (local ids) and ``neg_dst`` ``[B, num_negatives]``
  (local ids of the destination type), and ``dst_log_q`` ``[B]``: the log of the
  probability that a supervision edge of the link type has the positive's destination
  (its share of the type's edges), the correction of a sampled softmax (logQ).

Every random draw is a function of ``(seed, epoch, batch)``, so an epoch is replayable
and resuming from a checkpointed epoch reproduces an uninterrupted run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Collection, Iterator

import torch
from torch_geometric.data import HeteroData

from audiograph.samplers.multilink import (
    EdgeType,
    balanced_counts,
    balanced_epoch,
    epoch_generator,
    fill_epoch,
    link_edges,
)
from audiograph.samplers.neighbor import FanOut, NeighborSampler


class LinkNeighborLoader:
    """Iterate link-prediction batches with multi-link balancing.

    Args:
        data: co-interaction graph (``HeteroData`` from ``graphs.load_graph``).
        num_neighbors: fan-out per hop (list) or per edge type (dict with ``"default"``).
        batch_size: positive edges per batch.
        num_negatives: negatives per positive.
        negative_sampling: ``"uniform"`` or ``"popularity"``.
        balance_target: multi-link target (``"min"``, int cap, float ratio) or ``None`` to
            use every edge every epoch (unbalanced).
        balance: link types to balance (default all).
        edges: supervision edges per link type (default: every edge of ``data``).
        weighted: edge-weight-biased neighbour sampling.
        seed: base seed.
        device: sampling device.
        prefetch: batches prepared ahead in a background thread (0 = none).
        max_epoch_edges: supervision edges per epoch (at most). With balancing they are
            spread over the link types as evenly as the types' sizes (or the cap) allow,
            a fresh sample every epoch, no edge twice (:func:`fill_epoch`: balancing never
            shrinks the budget). Unbalanced: a uniform sample of every edge. ``None``:
            every (balanced) edge once.
    """

    def __init__(
        self,
        data: HeteroData,
        num_neighbors: FanOut,
        batch_size: int = 256,
        num_negatives: int = 1,
        negative_sampling: str = "uniform",
        balance_target: str | int | float | None = "min",
        balance: list[EdgeType] | None = None,
        edges: dict[EdgeType, torch.Tensor] | None = None,
        weighted: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        prefetch: int = 0,
        max_epoch_edges: int | None = None,
    ) -> None:
        if negative_sampling not in ("uniform", "popularity"):
            raise ValueError(
                f"negative_sampling must be uniform|popularity, got {negative_sampling!r}"
            )
        self.sampler = NeighborSampler(data, num_neighbors, weighted=weighted, device=device)
        self.device = self.sampler.device
        self.edges = {et: e.to(self.device) for et, e in (edges or link_edges(data)).items()}
        self.batch_size, self.num_negatives = batch_size, num_negatives
        self.negative_sampling = negative_sampling
        self.balance_target, self.balance = balance_target, balance
        self.max_epoch_edges = max_epoch_edges
        self.seed, self.prefetch = seed, prefetch
        self.num_nodes = self.sampler.num_nodes
        # negatives come from nodes with >= 1 training edge: an isolated node is a
        # trivially separable negative that only inflates the metrics
        self._dst_log_q = {  # log share of a link type's edges that end at each node
            et: torch.log(
                torch.bincount(e[1], minlength=self.num_nodes[et[2]]).float() / max(e.shape[1], 1)
            )
            for et, e in self.edges.items()
        }
        degree = node_degrees(self.sampler)
        self._active = {t: active_nodes(deg) for t, deg in degree.items()}
        self._popularity = {
            t: deg.float().pow(0.75)
            if bool((deg > 0).any())
            else torch.ones_like(deg, dtype=torch.float)
            for t, deg in degree.items()
        }

    def epoch_edges(self, epoch: int) -> dict[EdgeType, torch.Tensor]:
        """Supervision edges of ``epoch`` per link type (balanced unless target is None)."""
        if self.balance_target is None:
            return self.edges
        if self.max_epoch_edges is None:
            return balanced_epoch(self.edges, epoch, self.seed, self.balance_target, self.balance)
        return fill_epoch(self.edges, self._bounds(), self.max_epoch_edges, self.seed, epoch)

    def _bounds(self) -> dict[EdgeType, int]:
        """Edges per link type an epoch may draw: all of them under ``"min"`` (the budget
        is spread evenly), else the balancing cap or ratio's counts."""
        sizes = {et: int(e.shape[1]) for et, e in self.edges.items()}
        if self.balance_target == "min" and self.balance is None:
            return sizes
        return balanced_counts(sizes, self.balance_target, self.balance)

    def num_batches(self, epoch: int = 0) -> int:
        """Batches in ``epoch`` (counted from the balanced sizes; nothing is drawn)."""
        sizes = {et: int(e.shape[1]) for et, e in self.edges.items()}
        if self.balance_target is not None:
            sizes = (
                self._bounds()
                if self.max_epoch_edges
                else balanced_counts(sizes, self.balance_target, self.balance)
            )
        total = sum(sizes.values())
        if self.max_epoch_edges is not None:
            total = min(total, self.max_epoch_edges)
        return -(-total // self.batch_size)

    def iter_epoch(
        self, epoch: int, start_batch: int = 0, only: Collection[int] | None = None
    ) -> Iterator[HeteroData]:
        """Batches of ``epoch`` (from ``start_batch``; only the batch numbers in ``only``
        when given, e.g. one rank's share), optionally prefetched."""
        gen = self._batches(epoch, start_batch, None if only is None else set(only))
        return _prefetch(gen, self.prefetch) if self.prefetch > 0 else gen

    def _batches(self, epoch: int, start_batch: int, only: set[int] | None) -> Iterator[HeteroData]:
        per_type = self.epoch_edges(epoch)
        types = list(per_type)
        edges = torch.cat([e for e in per_type.values()], 1) if types else None
        if edges is None or edges.shape[1] == 0:
            return
        type_id = torch.cat(
            [
                torch.full((e.shape[1],), i, device=self.device)
                for i, e in enumerate(per_type.values())
            ]
        )
        g = epoch_generator(self.seed, epoch, salt=7919, device=self.device)
        order = torch.randperm(edges.shape[1], generator=g, device=self.device)
        if self.max_epoch_edges is not None:  # a uniform sample of the epoch's edges
            order = order[: self.max_epoch_edges]
        for b, lo in enumerate(range(0, order.numel(), self.batch_size)):
            if b < start_batch or (only is not None and b not in only):
                continue
            idx = order[lo : lo + self.batch_size]
            batch = {types[i]: edges[:, idx[type_id[idx] == i]] for i in range(len(types))}
            gb = epoch_generator(self.seed, epoch, salt=1_000_000 + b, device=self.device)
            yield self.sample_batch({et: e for et, e in batch.items() if e.shape[1]}, gb)

    def sample_batch(
        self, pos: dict[EdgeType, torch.Tensor], generator: torch.Generator | None = None
    ) -> HeteroData:
        """Subgraph + labels for positive edges ``{link type: [2, B]}`` (global ids)."""
        neg = {et: self._negatives(et[2], e.shape[1], generator) for et, e in pos.items()}
        ids: dict[str, list[torch.Tensor]] = {}
        for et, e in pos.items():
            ids.setdefault(et[0], []).append(e[0])
            ids.setdefault(et[2], []).extend([e[1], neg[et].flatten()])
        seeds = {t: torch.unique(torch.cat(v)) for t, v in ids.items()}
        out = self.sampler.sample(seeds, generator, exclude=self._exclude(pos))
        for et, e in pos.items():
            s, _, d = et
            out[et].edge_label_index = torch.stack(
                [torch.searchsorted(seeds[s], e[0]), torch.searchsorted(seeds[d], e[1])]
            )
            out[et].neg_dst = torch.searchsorted(seeds[d], neg[et])
            out[et].dst_log_q = self._dst_log_q[et][e[1]]
        return out

    def _negatives(self, t: str, count: int, g: torch.Generator | None) -> torch.Tensor:
        k = self.num_negatives
        if self.negative_sampling == "popularity":
            return torch.multinomial(
                self._popularity[t], count * k, replacement=True, generator=g
            ).view(count, k)
        active = self._active[t]
        pick = torch.randint(len(active), (count, k), generator=g, device=self.device)
        return active[pick]

    def _exclude(self, pos: dict[EdgeType, torch.Tensor]) -> dict[EdgeType, torch.Tensor]:
        keys: dict[EdgeType, list[torch.Tensor]] = {}
        for (s, r, d), e in pos.items():
            keys.setdefault((s, r, d), []).append(e[0] * self.num_nodes[d] + e[1])
            keys.setdefault((d, r, s), []).append(e[1] * self.num_nodes[s] + e[0])
        return {et: torch.cat(v) for et, v in keys.items()}


def _prefetch(gen: Iterator[HeteroData], depth: int) -> Iterator[HeteroData]:
    """Run ``gen`` in a background thread, ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():  # never block forever: the consumer may have left
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in gen:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # a consumer that leaves early waits for the batch in progress: a thread
        stop.set()  # still sampling when the interpreter exits aborts the process
        worker.join()


def node_degrees(sampler: NeighborSampler) -> dict[str, torch.Tensor]:
    """In-degree ``[N_t]`` (int64) of every node type over the sampler's relations."""
    out = {
        t: torch.zeros(n, dtype=torch.long, device=sampler.device)
        for t, n in sampler.num_nodes.items()
    }
    for (_, _, d), adj in sampler.adj.items():
        out[d] += (adj.colptr[1:] - adj.colptr[:-1]).to(out[d].device)
    return out


def active_nodes(degree: torch.Tensor) -> torch.Tensor:
    """Indices of the nodes with >= 1 edge (all nodes when none has one)."""
    active = torch.nonzero(degree > 0).view(-1)
    return active if len(active) else torch.arange(len(degree), device=degree.device)
