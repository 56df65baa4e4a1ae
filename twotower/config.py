"""Settings of the two-tower stage (one dataclass; it validates itself)."""

from __future__ import annotations

from dataclasses import dataclass, field

from audiograph.core.errors import ContractError, check_device, check_min


@dataclass(frozen=True)
class TwoTowerConfig:
    """Options of the two-tower trainer (defaults follow the 2T-HGNN paper where it says)."""

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
    skip: bool = True  # towers start at the history-mean k-NN and learn a correction
    resample: bool = True  # a fresh random history/label split of the train users per epoch
    weighted: bool = True
    target_type: str | None = None  # positives, negatives and validation of this type only
    val_type: str | None = None  # split windows: validate on this type's labels only
    encoder: str | None = None  # text encoder folder (None: the bundled MiniLM)
    cache_dir: str | None = None  # text-vector cache (None: the default ~/.cache/audiograph)
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        """Validate (one-line errors, before anything is written)."""
        object.__setattr__(self, "tower_dims", list(self.tower_dims))
        if not self.tower_dims or any(d < 1 for d in self.tower_dims):
            raise ContractError(f"tower_dims must be sizes >= 1, got {self.tower_dims}")
        check_min("batch-size", self.batch_size, 2)
        for name in ("cat_dim", "patience", "max_val_users"):
            check_min(name.replace("_", "-"), getattr(self, name), 1)
        check_min("epochs", self.epochs, 0)
        check_min("extra-negatives", self.extra_negatives, 0)
        for name in ("label_fraction", "val_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ContractError(f"--{name.replace('_', '-')} must be in (0, 1), "
                                    f"got {getattr(self, name)}")  # fmt: skip
        if not self.lr > 0 or not self.temperature > 0:
            raise ContractError("--lr and --temperature must be > 0")
        check_device(self.device)
