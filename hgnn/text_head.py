"""A text → graph-embedding head for items the graph has never seen.

A new item (no training user, so no edge) has only its text. Running the HGNN on it with
no neighbours gives a vector the model never produced while training (every trained node
had neighbours), which lands away from the warm items of its type: on real catalogs such
items were never ranked. The head instead learns where the graph puts an item *given its
text*: a ridge regression from the text features ``x`` (plus the item type) to the
warm items' full-graph embeddings, fitted in closed form at export time on the graph's
nodes that have text. A new item's vector is the head's prediction, L2-normalized, so it
lives in the same space as the warm items it is ranked against.

The ridge strength is chosen on a seeded 10 % hold-out of the warm items (mean cosine of
prediction and embedding over :data:`LAMBDAS`), then the head is refitted on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)
"""Ridge strengths tried, relative to the mean squared norm of a feature row."""


@dataclass
class TextHead:
    """``predict(x, type) = normalize([x | onehot(type) | 1] @ weight)``.

    ``weight``: float64 ``[feature_dim + n_types + 1, dim]``; ``types``: the item types in
    one-hot order; ``ridge``: the chosen strength; ``holdout_cosine``: mean cosine of the
    hold-out's predictions to their embeddings at that strength; ``fitted``: warm items
    used."""

    weight: torch.Tensor
    types: list[str]
    ridge: float
    holdout_cosine: float
    fitted: int

    def predict(self, x: torch.Tensor, node_type: str) -> torch.Tensor:
        """``[N, dim]`` float32 L2-normalized vectors of items of ``node_type`` with text
        features ``x`` ``[N, feature_dim]``."""
        design = _design(x.double(), [self.types.index(node_type)] * len(x), len(self.types))
        return F.normalize((design @ self.weight).float(), dim=-1)

    def report(self) -> dict[str, float | int]:
        """What the export's manifest records of the head."""
        return {"ridge": self.ridge, "holdout_cosine": self.holdout_cosine, "fitted": self.fitted}


def _design(x: torch.Tensor, codes: list[int] | np.ndarray, n_types: int) -> torch.Tensor:
    onehot = F.one_hot(torch.as_tensor(codes, dtype=torch.long), n_types).double()
    return torch.cat([x, onehot, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)


def _solve(a: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    gram = a.T @ a
    gram.diagonal().add_(lam)
    return torch.linalg.solve(gram, a.T @ y)


def fit_text_head(
    x: dict[str, torch.Tensor],
    y: dict[str, torch.Tensor],
    seed: int = 0,
) -> TextHead | None:
    """The head fitted on warm items: per node type, text features ``x[type]`` ``[n, F]``
    and graph embeddings ``y[type]`` ``[n, D]`` of the nodes that have text. None when
    fewer than 10 items have text (nothing to learn from)."""
    types = sorted(x)
    xs = [x[t].double() for t in types]
    n = sum(len(v) for v in xs)
    if n < 10:
        return None
    codes = np.concatenate([np.full(len(v), i) for i, v in enumerate(xs)])
    a = _design(torch.cat(xs), codes, len(types))
    target = torch.cat([y[t].double() for t in types])
    scale = float((a[:, : xs[0].shape[1]] ** 2).sum(1).mean()) or 1.0
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    held, kept = perm[: max(1, n // 10)], perm[max(1, n // 10) :]
    best = (-2.0, LAMBDAS[0])
    for lam in LAMBDAS:
        w = _solve(a[kept], target[kept], lam * scale)
        cos = float(F.cosine_similarity(a[held] @ w, target[held], dim=-1).mean())
        best = max(best, (cos, lam))
    cos, lam = best
    weight = _solve(a, target, lam * scale)
    return TextHead(weight, types, lam, round(cos, 4), n)
