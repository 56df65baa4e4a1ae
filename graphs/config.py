"""Settings of stage 1: building the graph (``GraphConfig``), splitting a dataset
(``SplitConfig``) and the synthetic catalog (``SyntheticConfig``). Frozen dataclasses that
validate themselves; light to import (the command line builds its options from them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from audiograph.core.config import DEFAULT_CACHE, Validated
from audiograph.core.errors import ContractError, check_choice, check_device

METHODS = ("auto", "temporal", "random")
MASTER = re.compile(
    r"yarn|local(\[(\*|[1-9]\d*)(, *[1-9]\d*)?\])?"
    r"|local-cluster\[\d+, *\d+, *\d+\]|(spark|k8s)://.+"
)
"""The Spark master URLs Spark accepts (``--master``)."""


@dataclass(frozen=True)
class GraphConfig(Validated):
    """Options of ``build-graph``.

    Attributes:
        min_users: link two items when at least this many users consumed both.
        user_cap: per-user history cap (none or 0: no cap); bounds the pair count.
        cap_by: which items a capped user keeps: ``"weight"`` (heaviest) or ``"recent"``.
        top_k: per node and edge type keep the ``top_k`` heaviest neighbours (none or 0:
            all).
        signals: signals that count as consumption (``None`` = all signals).
        encoder: local model folder, ``"default"`` (bundled MiniLM) or ``"none"`` (no text
            features; every node is featureless and ``feature_dim`` is 0).
        cache_dir: text-embedding cache folder (``None`` disables the cache).
        batch_size: texts per encoder batch (32 suits a CPU; a few hundred a GPU).
        max_length: encoder token limit per text.
        device: encoder device.
        drop_unknown: drop interactions with unknown item ids instead of failing.
        engine: polars (this process) or spark (Spark SQL; the same graph).
        master: the Spark master URL with engine spark: local[*] on this machine, or
            yarn, k8s://..., spark://host:port on a cluster.
        edge_shard_rows: write the edge lists as edges-NNNNN.safetensors files of at most
            this many directed edges each, streamed part by part (with engine spark the
            driver never holds all edges); none keeps them in graph.safetensors.
    """

    min_users: int = 1
    user_cap: int | None = 100
    cap_by: str = "weight"
    top_k: int | None = 50
    signals: list[str] | None = None
    encoder: str = "default"
    cache_dir: str | None = str(DEFAULT_CACHE)
    batch_size: int = 32
    max_length: int = 128
    device: str = "cpu"
    drop_unknown: bool = False
    engine: str = "polars"
    master: str = "local[*]"
    edge_shard_rows: int | None = None

    def validate(self) -> None:
        """Raise ContractError on out-of-range options."""
        for name in ("user_cap", "top_k"):  # 0 = no limit, as on the command line
            if getattr(self, name) == 0:
                object.__setattr__(self, name, None)
        if self.signals is not None:
            object.__setattr__(self, "signals", list(self.signals))
        if self.min_users < 1:
            raise ContractError(f"--min-users must be >= 1, got {self.min_users}")
        for name in ("user_cap", "top_k", "edge_shard_rows"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ContractError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
        if self.signals is not None and not self.signals:
            raise ContractError("--signals: no signal given (omit it to count every signal)")
        check_choice("engine", self.engine, ("polars", "spark"))
        if self.cap_by not in ("weight", "recent"):
            raise ContractError(f"--cap-by must be 'weight' or 'recent', got {self.cap_by!r}")
        if not MASTER.fullmatch(self.master):
            raise ContractError(
                f"--master must be local[*], local[N], yarn, spark://HOST:PORT "
                f"or k8s://URL, got {self.master!r}"
            )
        check_device(self.device)


@dataclass(frozen=True)
class FeaturizeConfig(Validated):
    """Options of ``featurize`` (the text-encoder fields of :class:`GraphConfig`).

    Attributes:
        encoder: local model folder or "default" (the bundled MiniLM).
        cache_dir: the text-vector cache the vectors go to (build-graph and export read it).
        batch_size: texts per encoder batch (32 suits a CPU; a few hundred a GPU).
        max_length: encoder token limit per text.
        device: encoder device (with --distributed on CUDA: each rank's cuda:LOCAL_RANK).
    """

    encoder: str = "default"
    cache_dir: str = str(DEFAULT_CACHE)
    batch_size: int = 32
    max_length: int = 128
    device: str = "cpu"

    def validate(self) -> None:
        """Raise ContractError on out-of-range options."""
        if self.encoder == "none":
            raise ContractError("--encoder none: nothing to featurize")
        for name in ("batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ContractError(f"--{name.replace('_', '-')} must be >= 1")
        check_device(self.device)


@dataclass(frozen=True)
class SplitConfig(Validated):
    """Options of ``split``.

    Attributes:
        test_fraction: held-out share in (0, 1). Temporal: the cut is the
            ``1 - test_fraction`` quantile of ``ts`` (nearest observed value). Random: each
            user with ``n >= 2`` distinct items holds out
            ``clip(round_half_up(test_fraction * n), 1, n - 1)`` of them.
        seed: seed of the random hold-outs, the adopters and the downsampling.
        method: auto (temporal when every row has a ts, else random), temporal or random;
            the label window uses the same method.
        downsample: TYPE=KEEP: after the split keep only this share of the type's training
            (user, item) pairs; the test part is untouched.
        adopters: TYPE=SHARE: only this seeded share of the type's users keep any training
            interaction of it (before downsample); the others are cold for the type.
        label_fraction: share of train in the label window (the two-tower's positives), in
            (0, 1); temporal: pairs first seen at or after the ``1 - label_fraction``
            quantile of the training ts, random: per user as for test.
        retype: TYPE=TAG: right after the test hold-out (before adopters and downsample),
            items whose most-used tag on the train side is one of the TAGs get item type
            TYPE in every part, counted from train rows only so no test tag decides it
            (e.g. vertical=electronic; several tags per type in a TOML table:
            retype = {vertical = ["electronic", "house"]}).
        new_items: TYPE=SHARE: this seeded share of the type's items is released only
            after the cut: every training row of them is dropped (after retype, before
            adopters), so their test pairs are the new-item slice (no training user).
        val_users: per item type, this seeded share of the users with label-window pairs
            (at least 100, at most half) validate model selection; their label-window
            pairs stay out of the ``graph`` part, the graph is built from.
    """

    test_fraction: float = 0.2
    seed: int = 0
    method: str = "auto"
    downsample: dict[str, float] | None = None
    adopters: dict[str, float] | None = None
    label_fraction: float = 0.2
    retype: dict[str, list[str]] | None = None
    new_items: dict[str, float] | None = None
    val_users: float = 0.1

    def validate(self) -> None:
        """Raise ContractError on out-of-range options."""
        for item_type, share in (self.new_items or {}).items():
            if not 0.0 < share < 1.0:
                raise ContractError(
                    f"--new-items {item_type}: share must be in (0, 1), got {share}"
                )
        for name in ("test_fraction", "label_fraction", "val_users"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ContractError(f"--{name.replace('_', '-')} must be in (0, 1), got {value}")
        check_choice("method", self.method, METHODS)
        if self.retype:
            rules = {
                str(t).strip(): [str(g).strip() for g in tags if str(g).strip()]
                for t, tags in self.retype.items()
            }
            for new_type, tags in rules.items():
                if not new_type or not tags:
                    raise ContractError(
                        f"--retype: {new_type or '(empty)'!r} needs a type "
                        "name and at least one tag (TYPE=TAG)"
                    )
            object.__setattr__(self, "retype", rules)


@dataclass(frozen=True)
class SyntheticConfig(Validated):
    """Parameters of the synthetic catalog (``prepare synthetic``, see
    :mod:`audiograph.graphs.adapters.synthetic`).

    Attributes:
        users: number of users (each has at least one interaction).
        items: items per type, default ``{"music": 2000, "podcast": 1000, "audiobook": 300}``;
            ids are ``"<type>:<n>"``, unique across types.
        seed: seed of ``np.random.default_rng``; the same seed gives identical frames.
        topics: number of latent topics.
        interactions_per_user: mean number of listening events per user (an event is one
            item choice; repeats of a choice are merged into one row's play count).
        tastes: latent tastes per topic (1: none), shared by every item type; see the
            adapter's docstring for the rule.
    """

    users: int = 3000
    items: dict[str, int] | None = None
    seed: int = 0
    topics: int = 16
    interactions_per_user: float = 12.0
    tastes: int = 1

    def validate(self) -> None:
        """Raise ContractError on a count below 1."""
        if min(self.users, self.topics, self.interactions_per_user, self.tastes) < 1:
            raise ContractError(
                "synthetic: users, topics, tastes and interactions_per_user must be >= 1"
            )
        if self.items is not None and (not self.items or min(self.items.values()) < 1):
            raise ContractError(f"synthetic: every item type needs >= 1 item (got {self.items})")
