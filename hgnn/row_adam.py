"""``RowAdam``: ``torch.optim.SparseAdam``'s update, fused over the touched rows on CPU.

For the per-node embedding tables (``nn.Embedding(sparse=True)``), SparseAdam spends most
of a step building sparse tensors (coalesce, masks, several sparse adds) for what is, per
touched row ``r`` of the gradient ``g``::

    m[r] += (1 - b1) (g[r] - m[r]);   v[r] += (1 - b2) (g[r]² - v[r])
    p[r] -= lr · sqrt(1 - b2^t) / (1 - b1^t) · m[r] / (sqrt(v[r]) + eps)

``RowAdam`` is SparseAdam with the same state (``step``, dense ``exp_avg`` /
``exp_avg_sq``), so checkpoints load either way, and this update done in place by one
parallel numba loop over the rows (rows of a batch's gradient are distinct unless it was
summed over ranks; then it is coalesced first). Non-CPU or non-float32 parameters take
SparseAdam's own step. Tested equal to SparseAdam within float rounding.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from audiograph.samplers.threads import numba_threads


@numba.njit(parallel=True, cache=True)
def _update(param, m, v, rows, grad, b1, b2, step_size, eps):  # pragma: no cover - compiled
    for k in numba.prange(rows.shape[0]):
        r = rows[k]
        for j in range(param.shape[1]):
            g = grad[k, j]
            mj = m[r, j] + (1 - b1) * (g - m[r, j])
            vj = v[r, j] + (1 - b2) * (g * g - v[r, j])
            m[r, j] = mj
            v[r, j] = vj
            param[r, j] -= step_size * mj / (math.sqrt(vj) + eps)


@numba.njit(cache=True)
def _distinct(rows: np.ndarray, n: int) -> bool:
    seen = np.zeros(n, np.bool_)
    for r in rows:
        if seen[r]:
            return False
        seen[r] = True
    return True


def _rows(grad: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(row ids [k], values [k, dim])`` of a sparse row gradient, each row once."""
    if not grad.is_coalesced():
        rows = grad._indices()[0].numpy()
        if not _distinct(rows, grad.shape[0]):
            grad = grad.coalesce()
    rows, values = grad._indices()[0], grad._values()
    return rows.numpy(), values.contiguous().numpy()


class RowAdam(torch.optim.SparseAdam):
    """SparseAdam (same arguments, state and result) with a fused CPU step."""

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if any(
            p.device.type != "cpu" or p.dtype != torch.float32 or p.dim() != 2 for p in params
        ) or any(g.get("maximize") for g in self.param_groups):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError("RowAdam (SparseAdam) needs sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                step_size = float(group["lr"]) * math.sqrt(1 - b2**t) / (1 - b1**t)
                rows, values = _rows(p.grad)
                numba_threads()
                _update(
                    p.detach().numpy(),
                    state["exp_avg"].numpy(),
                    state["exp_avg_sq"].numpy(),
                    rows,
                    values,
                    b1,
                    b2,
                    step_size,
                    group["eps"],
                )
        return loss
