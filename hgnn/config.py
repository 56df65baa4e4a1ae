"""Settings of stage 3: HGNN training (``HGNNConfig``) and export (``ExportConfig``). Frozen
dataclasses that validate themselves; light to import."""

from __future__ import annotations

from dataclasses import dataclass, field

from audiograph.core.config import DEFAULT_CACHE, Validated
from audiograph.core.errors import ContractError, check_choice, check_device, check_min
from audiograph.core.precision import PRECISIONS

CONVS = ("maxpool", "maxpool-pyg", "sage-mean", "gatv2")
"""Relation operators of :class:`~audiograph.hgnn.model.HeteroSAGE`."""

PAPER_RECIPE = {
    "hidden": 128,
    "loss": "margin",
    "num_negatives": 1,
    "lr": 1e-3,
    "lr_decay": 1.0,
    "fanout": [15, 10],
    "batch_size": 256,
    "max_epoch_edges": None,
    "precision": "fp32",
}
"""The 2T-HGNN paper's training recipe (hidden 128, max-margin, one negative, constant
Adam 1e-3, fan-out [15, 10], batch 256, every balanced edge each epoch, float32): the
defaults before they were tuned for time to quality, and what the recorded benchmark
figures were trained with."""


@dataclass(frozen=True)
class HGNNConfig(Validated):
    """Options of ``train-hgnn``.

    The model follows the 2T-HGNN paper; the training defaults are tuned to reach good
    quality in minutes on a laptop (hidden 256, in-batch softmax over batches of 1,024,
    fan-out [10, 5], Adam 2e-3, 110,000 supervision edges per epoch in the multi-link mix,
    at most 30 epochs (a budget of 3.3 M supervision edges on any graph) with early stopping
    after 5 without progress, bf16 matrix products where the hardware
    has them; measured in ``benchmarks/train_defaults.py``);
    :data:`PAPER_RECIPE` holds the paper's recipe.

    Attributes:
        hidden: hidden and output size of every layer.
        num_layers: message-passing layers (hops).
        conv: relation operator: maxpool (the paper's, fused aggregation), maxpool-pyg (the
            same layer through PyG's MessagePassing, for comparison), sage-mean or gatv2.
        fanout: neighbours sampled per hop and edge type, one size per layer (-1: all).
        batch_size: positive (supervision) edges per batch.
        num_negatives: negatives per positive.
        negative_sampling: uniform, or popularity (degree^0.75) over nodes with an edge.
        loss: margin (max-margin, the paper's) or softmax (in-batch).
        margin: the max-margin loss's margin.
        temperature: the softmax loss's temperature.
        logq: the softmax loss subtracts each in-batch destination's log sampling
            probability from its logit (logQ correction; see
            :func:`~audiograph.hgnn.loss.in_batch_softmax_loss`).
        lr: Adam learning rate of the first epoch.
        lr_decay: the learning rate is multiplied by this after every epoch (epoch e trains
            at ``lr * lr_decay**e``; 1: constant). A function of the epoch alone, so a
            resumed or extended run keeps the schedule.
        epochs: training epochs (multi-link sampler epochs).
        patience: stop after this many epochs without a better validation score.
        selection: the validation score that keeps the best weights and stops training:
            recommendation (HGNN-KNN recall@10 of the split's validation users,
            :mod:`audiograph.hgnn.rec_validation`), edges (mean MRR of held-out edges) or
            auto (recommendation where the graph is a split's graph part, else edges).
        val_type: the item type the recommendation validation ranks (none: every type).
        val_fraction: share of each edge type held out for validation.
        balance: multi-link target per epoch: min (undersample every edge type to the
            rarest), none, an int cap of edges per type or a float ratio to the rarest.
        weighted: sample neighbours in proportion to the edge weight (shared users).
        eval_candidates: candidates ranked per validation edge.
        max_val_edges: validation edges per edge type at most.
        seed: seeds the model, the sampler and the validation split.
        device: cpu or cuda[:i].
        prefetch: batches sampled ahead in a background thread (0: none).
        max_epoch_edges: supervision edges per epoch: the training budget is
            ``epochs x max_epoch_edges`` edges, stopped early at a validation plateau
            (``patience``). With balancing, every epoch has exactly this many in the
            balanced mix (a fresh uniform sample when the balanced edges are more, the
            rare types' edges repeated when they are fewer: balancing sets the mix, never
            the budget). None or 0: every balanced edge once per epoch.
        accumulate: micro-batches (of batch_size each) per optimizer step, gradients
            averaged; on W ranks a step takes W x accumulate micro-batches.
        precision: fp32, bf16 (the training step's matrix products in bfloat16 under
            ``torch.autocast``; weights, max-pool, loss, validation and export stay
            float32) or auto (bf16 where the device has bf16 matrix units, else fp32).
            The run saves the precision it resolved to, so a resume keeps it.
    """

    hidden: int = 256
    num_layers: int = 2
    conv: str = "maxpool"
    fanout: list[int] = field(default_factory=lambda: [10, 5])
    batch_size: int = 1024
    num_negatives: int = 1
    negative_sampling: str = "uniform"
    loss: str = "softmax"
    margin: float = 0.3
    temperature: float = 0.05
    logq: bool = True
    lr: float = 2e-3
    lr_decay: float = 1.0
    epochs: int = 30
    patience: int = 5
    selection: str = "auto"
    val_type: str | None = None
    val_fraction: float = 0.1
    balance: str | int | float = "min"
    weighted: bool = False
    eval_candidates: int = 100
    max_val_edges: int = 2000
    seed: int = 0
    device: str = "cpu"
    prefetch: int = 1
    accumulate: int = 1
    max_epoch_edges: int | None = 110_000
    precision: str = "auto"

    def validate(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        object.__setattr__(self, "fanout", list(self.fanout))
        check_choice("conv", self.conv, CONVS)
        check_choice("loss", self.loss, ("margin", "softmax"))
        check_choice("selection", self.selection, ("auto", "recommendation", "edges"))
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("negative-sampling", self.negative_sampling, ("uniform", "popularity"))
        if not (
            self.balance in ("min", "none")
            or (
                isinstance(self.balance, int | float)
                and not isinstance(self.balance, bool)
                and self.balance > 0
            )
        ):
            raise ContractError(
                f"--balance must be min, none, an int cap or a float ratio > 0, got "
                f"{self.balance!r}"
            )
        for name in (
            "hidden",
            "num_layers",
            "batch_size",
            "num_negatives",
            "eval_candidates",
            "max_val_edges",
            "patience",
        ):
            check_min(name.replace("_", "-"), getattr(self, name), 1)
        check_min("epochs", self.epochs, 0)
        check_min("prefetch", self.prefetch, 0)
        check_min("accumulate", self.accumulate, 1)
        if self.max_epoch_edges == 0:  # 0 = no limit, as on the command line
            object.__setattr__(self, "max_epoch_edges", None)
        if self.max_epoch_edges is not None:
            check_min("max-epoch-edges", self.max_epoch_edges, 1)
        if len(self.fanout) != self.num_layers or any(
            not isinstance(f, int) or (f < 1 and f != -1) for f in self.fanout
        ):
            raise ContractError(
                f"--fanout needs {self.num_layers} sizes (>= 1, or -1 for all), got {self.fanout}"
            )
        if not 0 < self.val_fraction < 1:
            raise ContractError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if not self.lr > 0 or not self.margin >= 0 or not self.temperature > 0:
            raise ContractError("--lr and --temperature must be > 0, --margin >= 0")
        if not 0 < self.lr_decay <= 1:
            raise ContractError(f"--lr-decay must be in (0, 1], got {self.lr_decay}")
        check_device(self.device)


@dataclass(frozen=True)
class ExportConfig(Validated):
    """Options of ``export``.

    Attributes:
        chunk_size: nodes per layer-wise inference chunk (bounds memory, not the result).
        device: cpu or cuda[:i].
        cache_dir: text-vector cache of the inductive items (none: no cache).
        index: ANN index: auto (faiss IVF from 100k items), exact or ivf.
        inductive: how new items (text and no neighbour: graph nodes without an edge,
            catalog items outside the graph) are embedded: head (a ridge head from text to
            the warm items' graph embeddings, fitted at export;
            :mod:`audiograph.hgnn.text_head`) or model (the HGNN run with no neighbours).
    """

    chunk_size: int = 65536
    device: str = "cpu"
    cache_dir: str | None = str(DEFAULT_CACHE)
    index: str = "auto"
    inductive: str = "head"

    def validate(self) -> None:
        """Raise ContractError on out-of-range options."""
        check_min("chunk-size", self.chunk_size, 1)
        check_choice("inductive", self.inductive, ("head", "model"))
        check_choice("index", self.index, ("auto", "exact", "ivf"))
        check_device(self.device)


@dataclass(frozen=True)
class TrainBenchConfig(Validated):
    """Options of ``bench-train`` (:func:`audiograph.hgnn.bench.run_train_bench`): the
    model step of ``train-hgnn`` against the same model through PyG; the model's settings
    are :class:`HGNNConfig`'s defaults unless given here.

    Attributes:
        graph: graph directory (none: the 1 M-item synthetic graph of bench-sampler,
            featureless).
        batches: timed batches per side.
        device: cpu or cuda[:i].
        scale: synthetic graph size factor.
        hidden: the model width (none: train-hgnn's).
        fanout: neighbours per hop, e.g. 15,10 (none: train-hgnn's).
        batch_size: positive edges per batch (none: train-hgnn's).
        precision: fp32, bf16 or auto, both sides (none: train-hgnn's).
        seed_type: supervise one link type on both sides: SRC__REL__DST, or a node type T
            for T's link type with itself (none: audiograph all types, PyG the first).
        load: busy single-threaded processes running beside both sides (the training step
            beside another job); the ratio should hold, not only the idle speed.
    """

    graph: str | None = None
    batches: int = 20
    device: str = "cpu"
    scale: float = 1.0
    hidden: int | None = None
    fanout: list[int] | None = None
    batch_size: int | None = None
    precision: str | None = None
    seed_type: str | None = None
    load: int = 0

    def validate(self) -> None:
        """Raise ContractError on out-of-range options (the model's own are checked by
        :class:`HGNNConfig`)."""
        check_min("batches", self.batches, 1)
        check_min("load", self.load, 0)
        if not self.scale > 0:
            raise ContractError(f"--scale must be > 0, got {self.scale}")
        check_device(self.device)

    def model(self) -> HGNNConfig:
        """train-hgnn's settings with this benchmark's changes."""
        changes = {
            "hidden": self.hidden,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "fanout": self.fanout,
        }
        given = {k: v for k, v in changes.items() if v is not None}
        return HGNNConfig(device=self.device, **given)
