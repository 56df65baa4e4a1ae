"""Settings of stage 5: Semantic IDs (``SemanticIDConfig``), the generative model
(``GenerativeConfig``), bi-encoder fine-tuning (``FinetuneConfig``), the user vectors
and the user prefix (``UserVectorsConfig``, ``PrefixConfig``). Frozen dataclasses
that validate themselves; light to import."""

from __future__ import annotations

from dataclasses import dataclass

from audiograph.core.config import Validated
from audiograph.core.errors import ContractError, check_choice, check_device, check_min
from audiograph.core.precision import PRECISIONS

TASKS = ("search", "rec")


@dataclass(frozen=True)
class SemanticIDConfig(Validated):
    """Options of ``semantic-ids``.

    Attributes:
        levels: residual k-means codebooks (>= 1); an ID has ``levels + 1`` codes.
        codebook_size: codes per level, at least 2 and at most the number of items.
        iters: Lloyd iterations per level.
        seed: seeds the training sample and k-means++ (same seed, same IDs).
        device: cpu or cuda[:i].
        sample_per_code: fit each level on this many rows per code (none: all rows); every
            row is encoded.
    """

    levels: int = 2
    codebook_size: int = 256
    iters: int = 20
    seed: int = 0
    device: str = "cpu"
    sample_per_code: int | None = 256

    def validate(self) -> None:
        """Raise ContractError on out-of-range options."""
        check_min("levels", self.levels, 1)
        check_min("codebook-size", self.codebook_size, 2)
        check_min("iters", self.iters, 0)
        if self.sample_per_code is not None:
            check_min("sample-per-code", self.sample_per_code, 1)
        check_device(self.device)


@dataclass(frozen=True)
class SidTraining(Validated):
    """The training settings the generative model and the user prefix share (both learn to
    decode Semantic IDs from search and rec examples).

    Attributes:
        tasks: tasks trained: search, rec or both.
        epochs: training epochs at most (see ``patience``).
        batch_size: examples per batch.
        lr: AdamW peak learning rate.
        warmup_steps: linear warm-up steps.
        search_per_epoch: search examples per epoch at most (none: all).
        rec_per_epoch: recommendation examples per epoch at most (none: all; a fresh draw
            each epoch).
        val_examples: examples per task held out of training (seeded) to measure the
            validation loss after every epoch; 0: none (every epoch's model is kept).
        patience: stop after this many epochs without a lower validation loss; the run
            keeps the epoch with the lowest.
        seed: seeds the model, the held-out examples and the example draws.
        device: cpu or cuda[:i].
    """

    tasks: tuple[str, ...] = TASKS
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    warmup_steps: int = 200
    search_per_epoch: int | None = 30000
    rec_per_epoch: int | None = 30000
    val_examples: int = 1000
    patience: int = 2
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """The shared checks (one-line errors, before anything is written)."""
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if set(self.tasks) - set(TASKS) or not self.tasks:
            raise ContractError(
                f"--tasks must be a non-empty subset of {','.join(TASKS)}, "
                f"got {','.join(map(str, self.tasks))}"
            )
        check_min("warmup-steps", self.warmup_steps, 0)
        check_min("val-examples", self.val_examples, 0)
        check_min("patience", self.patience, 1)
        check_min("batch-size", self.batch_size, 1)
        for name in ("search_per_epoch", "rec_per_epoch"):
            if getattr(self, name) is not None:
                check_min(name.replace("_", "-"), getattr(self, name), 1)
        if not self.lr > 0:
            raise ContractError(f"--lr must be > 0, got {self.lr}")
        check_device(self.device)


@dataclass(frozen=True)
class GenerativeConfig(SidTraining):
    """Options of ``train-generative``: the T5 model and its training (the training
    settings are :class:`SidTraining`'s; ``model/`` keeps the epoch with the lowest
    validation loss).

    Attributes:
        d_model: model width.
        d_ff: feed-forward width.
        layers: encoder and decoder layers each.
        heads: attention heads (d_model must be a multiple).
        dropout: dropout rate.
        history: a recommendation input's most recent items.
        max_query_tokens: search query tokens at most.
        pretrained: a local pretrained T5 folder (none: from scratch).
        precision: fp32, bf16 or auto (bf16 where the device multiplies bfloat16 in
            hardware): the matrix products under ``torch.autocast``; weights, loss and
            optimizer stay float32.
    """

    epochs: int = 50  # a safety net: training ends on the validation plateau (patience)
    d_model: int = 128
    d_ff: int = 256
    layers: int = 2
    heads: int = 4
    dropout: float = 0.0
    history: int = 10
    max_query_tokens: int = 24
    pretrained: str | None = None
    precision: str = "auto"

    def validate(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        super().validate()
        check_choice("precision", self.precision, PRECISIONS)
        for name in ("d_model", "d_ff", "layers", "heads", "history"):
            check_min(name.replace("_", "-"), getattr(self, name), 1)
        check_min("max-query-tokens", self.max_query_tokens, 2)
        check_min("epochs", self.epochs, 0)
        if self.d_model % self.heads:
            raise ContractError(
                f"--d-model ({self.d_model}) must be a multiple of --heads ({self.heads})"
            )
        if not 0 <= self.dropout < 1:
            raise ContractError("--dropout must be in [0, 1)")


@dataclass(frozen=True)
class FinetuneConfig(Validated):
    """Options of :func:`finetune_bi_encoder`. The defaults keep CPU fine-tuning short
    (Last.fm, 2 cores: ~35 s search, ~80 s multitask, 32 steps); raise ``max_pairs`` and
    ``epochs`` on a GPU.

    Attributes:
        epochs: passes over the training pairs.
        batch_size: pairs per batch (in-batch negatives).
        lr: AdamW peak learning rate.
        weight_decay: AdamW weight decay.
        warmup: share of steps with a linear warm-up, then linear decay to 0.
        max_length: tokens per text during training (Last.fm: 90% of items fit in 32).
        max_pairs: training pairs per task at most (seeded subsample).
        item_pairs_per_user: co-interaction pairs drawn per user (multi-task).
        scale: cosine similarity scale (inverse temperature).
        max_grad_norm: gradient clipping norm.
        seed: seeds the subsample and the batches.
        device: cpu or cuda[:i].
    """

    epochs: int = 1
    batch_size: int = 32
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_length: int = 32
    max_pairs: int = 1024
    item_pairs_per_user: int = 4
    scale: float = 20.0
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        for name, low in (
            ("epochs", 1),
            ("batch_size", 2),
            ("max_pairs", 2),
            ("max_length", 2),
            ("item_pairs_per_user", 1),
        ):
            check_min(name.replace("_", "-"), getattr(self, name), low)
        if not (self.lr > 0 and 0 <= self.warmup < 1 and self.scale > 0):
            raise ContractError(
                f"need lr > 0, 0 <= warmup < 1, scale > 0; got lr={self.lr}, "
                f"warmup={self.warmup}, scale={self.scale}"
            )
        check_device(self.device)


USER_SOURCES = ("twotower", "hgnn")


@dataclass(frozen=True)
class UserVectorsConfig(Validated):
    """Options of the runner's ``users`` stage: where each user's vector comes from.

    Attributes:
        source: ``twotower`` (the user tower of the two-tower run; ``export-twotower``) or
            ``hgnn`` (the mean HGNN vector of the items the user consumed; ``embed-users``).
        weighted: ``hgnn`` only: weight each item by the interaction's ``weight``.
    """

    source: str = "twotower"
    weighted: bool = True

    def validate(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        if self.source not in USER_SOURCES:
            raise ContractError(
                f"source must be one of {', '.join(USER_SOURCES)}, got {self.source!r}"
            )


@dataclass(frozen=True)
class PrefixConfig(SidTraining):
    """Options of ``train-prefix`` (Embedding-to-Prefix): a projection of a user's vector
    to soft tokens placed before a frozen generative model's input; only it trains (the
    training settings are :class:`SidTraining`'s: ``search`` examples are a user + query →
    the items the user gives/consumes for it, ``rec`` the user's tokens alone → the user's
    items; ``prefix.safetensors`` keeps the epoch with the lowest validation loss).

    Attributes:
        hidden: the projection MLP's hidden width.
        tokens: soft tokens per user.
        lr: AdamW peak learning rate.
        warmup_steps: linear warm-up steps.
    """

    hidden: int = 512
    tokens: int = 1
    lr: float = 1e-3
    warmup_steps: int = 100

    def validate(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        super().validate()
        for name in ("hidden", "tokens", "epochs"):
            check_min(name, getattr(self, name), 1)
