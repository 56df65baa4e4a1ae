"""Settings of stage 4: the two-tower trainer (``TwoTowerConfig``), the offline evaluation
(``EvaluationConfig``) and its LightGCN baseline (``LightGCNConfig``). Frozen dataclasses
that validate themselves; light to import."""

from __future__ import annotations

from dataclasses import dataclass, field

from audiograph.core.config import Validated
from audiograph.core.errors import ContractError, check_choice, check_device, check_min

CHOOSABLE = ("skip",)
"""The two-tower switches its selection run can choose on validation (``choose``)."""
MODELS = (
    "popularity",
    "llm-knn",
    "graph-knn",
    "hgnn",
    "ease",
    "als",
    "itemknn",
    "lightgcn",
    "2t",
    "2t-hgnn",
)


@dataclass(frozen=True)
class TwoTowerConfig(Validated):
    """Options of ``train-twotower`` (defaults follow the 2T-HGNN paper where it says).

    Attributes:
        tower_dims: layer sizes of each tower's MLP; the last is the vector size.
        cat_dim: embedding size of each categorical user feature.
        temperature: in-batch softmax temperature.
        lr: Adam learning rate.
        batch_size: positives per batch.
        epochs: training epochs.
        patience: stop after this many epochs without a better validation recall.
        logq: subtract log q (sampling-probability correction) from in-batch logits.
        extra_negatives: uniformly sampled negatives added to every batch.
        label_fraction: share of each user's history used as positives when the data has
            no label window (split without windows).
        val_fraction: share of users held out for validation.
        max_val_users: validation users at most.
        use_hgnn: read HGNN embeddings as user- and item-tower inputs (false: plain 2T).
        skip: towers start at the history-mean k-NN and learn a correction.
        skip_vector: knn (the towers' outputs carry the exact HGNN-KNN cosine, LLM-KNN's
            for the plain two-tower, next to the MLPs' with a learned weight) or history
            (the earlier design: a projection of [text | HGNN] added to the MLPs').
        target_negatives: uniform negatives of the launch type (``val_type``, else
            ``target_type``) per batch, seen by the rows whose positive is of that type
            (0: none); in-batch negatives are mostly of the abundant types.
        target_weight: loss weight of the rows whose positive is of the launch type.
        resample: a fresh random history/label split of the train users every epoch.
        choose: the switches the selection run (``refit``) chooses on validation before
            the epochs: skip (on and off are both trained on the windows; the better
            validation recall@10 wins, ties keep the setting given). The choice and every
            tried setting's validation recall are recorded in the run's ``config.json``
            (``selection``); [] (or no windows to select on): the settings as given.
        refit: on the train part of a split (fit and label windows), choose the epochs on
            validation (inputs from fit, positives from the label window), then train a
            fresh model on all of train (each epoch a fresh history/label split of every
            user, so no example sees its target in its input) for that many epochs; false:
            the model trained on the windows is the run's.
        weighted: weight the history means by interaction weight.
        history_items: the user tower also attention-pools its L latest (else most played)
            history items (:mod:`audiograph.twotower.history_attention`); 0: means only.
        attention_queries: learned queries of that attention pooling.
        item_ids: size of a learned ID embedding of each warm item (training users), read
            by the item tower and the history attention; new items have none and rely on
            text and HGNN vectors (10 % of IDs hidden per batch in training); 0: none.
        target_type: positives, negatives and validation of this item type only.
        val_type: with split windows, validate on this item type's labels only.
        encoder: text encoder folder (none: the bundled MiniLM).
        cache_dir: text-vector cache (none: the default cache folder).
        seed: seeds the model, the batches and the validation users.
        device: cpu or cuda[:i].
        accumulate: batches per optimizer step, gradients averaged; on W ranks a step takes
            W x accumulate batches.
    """

    tower_dims: list[int] = field(default_factory=lambda: [512, 256, 128])
    cat_dim: int = 16
    temperature: float = 0.05
    lr: float = 1e-3
    batch_size: int = 1024
    epochs: int = 20
    patience: int = 3
    logq: bool = True
    extra_negatives: int = 0
    label_fraction: float = 0.2
    val_fraction: float = 0.1
    max_val_users: int = 5000
    use_hgnn: bool = True
    skip: bool = True
    skip_vector: str = "knn"
    target_negatives: int = 256
    target_weight: float = 1.0
    resample: bool = True
    refit: bool = True
    choose: list[str] = field(default_factory=lambda: ["skip"])
    weighted: bool = True
    history_items: int = 32
    attention_queries: int = 4
    item_ids: int = 32
    target_type: str | None = None
    val_type: str | None = None
    encoder: str | None = None
    cache_dir: str | None = None
    seed: int = 0
    device: str = "cpu"
    accumulate: int = 1

    def validate(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        object.__setattr__(self, "tower_dims", list(self.tower_dims))
        check_min("accumulate", self.accumulate, 1)
        if not self.tower_dims or any(d < 1 for d in self.tower_dims):
            raise ContractError(f"tower_dims must be sizes >= 1, got {self.tower_dims}")
        check_min("batch-size", self.batch_size, 2)
        check_min("history-items", self.history_items, 0)
        check_min("item-ids", self.item_ids, 0)
        for name in ("cat_dim", "patience", "max_val_users", "attention_queries"):
            check_min(name.replace("_", "-"), getattr(self, name), 1)
        check_min("epochs", self.epochs, 0)
        check_min("extra-negatives", self.extra_negatives, 0)
        check_min("target-negatives", self.target_negatives, 0)
        check_choice("skip-vector", self.skip_vector, ("knn", "history"))
        object.__setattr__(self, "choose", list(self.choose))
        for name in self.choose:
            check_choice("choose", name, CHOOSABLE)
        if not self.target_weight > 0:
            raise ContractError(f"--target-weight must be > 0, got {self.target_weight}")
        for name in ("label_fraction", "val_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ContractError(
                    f"--{name.replace('_', '-')} must be in (0, 1), got {getattr(self, name)}"
                )
        if not self.lr > 0 or not self.temperature > 0:
            raise ContractError("--lr and --temperature must be > 0")
        check_device(self.device)


@dataclass(frozen=True)
class EvaluationConfig(Validated):
    """Options of ``evaluate``.

    Attributes:
        target_type: item type ranked (none: the run's target type, else the catalog's
            rarest type by training interactions).
        models: the models scored, a subset of popularity, llm-knn, graph-knn, hgnn, ease,
            als, itemknn (als and itemknn need :mod:`implicit`), lightgcn, 2t, 2t-hgnn.
        graph_knn: graph-knn's weights: auto (raw or normalized, chosen on the split's
            validation users; raw without them), raw or normalized.
        k: metric cut-off.
        lightgcn_epochs: LightGCN training epochs when it is not tuned (fitted in memory,
            seeded by the run).
        lightgcn_tune: when the run trained on the train part of a split with fit/label
            windows, pick LightGCN's dim, negatives and epochs on validation (fit on the
            fit window, recall@k on the label window's target-type pairs; the test is not
            read), then refit on all of train; without windows the fixed settings.
        lightgcn_dims: the dims tried when tuning.
        lightgcn_negatives: the negatives tried when tuning (type, all).
        lightgcn_max_epochs: epochs of each tried setting at most.
        lightgcn_patience: a tried setting stops after this many epochs without a better
            validation recall (not before twice this many epochs).
    """

    target_type: str | None = None
    models: tuple[str, ...] = MODELS
    k: int = 10
    graph_knn: str = "auto"
    lightgcn_epochs: int = 20
    lightgcn_tune: bool = True
    lightgcn_dims: list[int] = field(default_factory=lambda: [64, 128])
    lightgcn_negatives: list[str] = field(default_factory=lambda: ["type", "all"])
    lightgcn_max_epochs: int = 60
    lightgcn_patience: int = 10

    def validate(self) -> None:
        """Raise ContractError on an unknown model or a bad cut-off."""
        object.__setattr__(self, "models", tuple(self.models))
        unknown = sorted(set(self.models) - set(MODELS))
        if unknown or not self.models:
            raise ContractError(
                f"unknown model {unknown[0] if unknown else ''!r} (known: {', '.join(MODELS)})"
            )
        check_min("k", self.k, 1)
        check_choice("graph-knn", self.graph_knn, ("auto", "raw", "normalized"))
        check_min("lightgcn-epochs", self.lightgcn_epochs, 0)
        for name in ("lightgcn_max_epochs", "lightgcn_patience"):
            check_min(name.replace("_", "-"), getattr(self, name), 1)
        if not self.lightgcn_dims or not self.lightgcn_negatives:
            raise ContractError("--lightgcn-dims and --lightgcn-negatives need a value each")
        for dim in self.lightgcn_dims:
            check_min("lightgcn-dims", dim, 1)
        for neg in self.lightgcn_negatives:
            check_choice("lightgcn-negatives", neg, ("type", "all"))


@dataclass(frozen=True)
class LightGCNConfig(Validated):
    """Settings of the LightGCN baseline.

    Attributes:
        dim: embedding size.
        layers: propagation layers.
        epochs: training epochs.
        lr: Adam learning rate.
        batch: positives per batch.
        reg: L2 on the batch's layer-0 embeddings.
        negatives: type (negatives of the positive's type) or all (any type).
        seed: seeds the embeddings and the batches.
        device: cpu or cuda[:i].
    """

    dim: int = 64
    layers: int = 3
    epochs: int = 20
    lr: float = 1e-2
    batch: int = 8192
    reg: float = 1e-4
    negatives: str = "type"
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """Validate (one-line errors)."""
        for name in ("dim", "layers", "batch"):
            check_min(name, getattr(self, name), 1)
        check_min("epochs", self.epochs, 0)
        check_choice("negatives", self.negatives, ("type", "all"))
        if not self.lr > 0 or self.reg < 0:
            raise ContractError("LightGCN lr must be > 0 and reg >= 0")
        check_device(self.device)
