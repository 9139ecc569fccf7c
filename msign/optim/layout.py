"""Which axes of a parameter form the (out, in) matrices that msign orthogonalizes.

A :class:`Layout` is fixed per parameter when the optimizer is built (never per step), in
the spirit of optax's ``MuonDimensionNumbers``:

- ``out_axes`` / ``in_axes``: the storage axes flattened into the matrix's rows (outputs)
  and columns (inputs); every other axis is a batch axis (experts, stacked heads).  A
  ``nn.Linear`` weight is ``out_axes=(0,), in_axes=(1,)``; a transformers ``Conv1D``
  weight, stored (in, out), is ``(1,), (0,)``; a conv weight (out, in, kh, kw) is
  ``(0,), (1, 2, 3)``; an expert stack (E, out, in) is ``(1,), (2,)``.
- ``split``: block sizes of a fused parameter along ``split_along`` ("out" or "in"),
  unequal allowed (fused GQA q/k/v, gate/up); each block is orthogonalized alone.
- ``heads``: orthogonalize each block per head, its out rows cut into ``heads`` equal
  parts (dion's and modded-nanogpt's per-head Q/K); an int, or one int per block.

The shape scale s(W) of the learning rate is computed on each orthogonalized matrix in
(out, in) orientation (:func:`shape_scale`).

Examples
--------
>>> import torch
>>> lay = Layout.transposed(split=(4, 4, 4))         # GPT-2's c_attn: (in, out), fused Q/K/V
>>> [tuple(b.shape) for b in lay.to_blocks(torch.zeros(4, 12))]
[(1, 4, 4), (1, 4, 4), (1, 4, 4)]
>>> Layout.experts().matrix_shapes((8, 96, 32))      # Mixtral's gate_up_proj: 8 experts
[(8, 96, 32)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Layout", "shape_scale", "infer_layout", "ADJUST_MODES"]

#: learning-rate shape scale modes; torch.optim.Muon's adjust_lr_fn=None is "original".
ADJUST_MODES = ("original", "match_rms_adamw", "unscaled", "keller_jordan")


def shape_scale(rows: int, cols: int, mode: str | None) -> float:
    """s(W) for one (rows=out, cols=in) matrix: Jordan/torch, Moonlight, or 1.

    ``None`` means "original", as torch.optim.Muon's ``adjust_lr_fn=None`` does.
    """
    if mode is None or mode == "original":
        return math.sqrt(max(1.0, rows / cols)) if cols else 1.0  # 0-size: nothing to scale
    if mode == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    if mode == "unscaled":
        return 1.0
    raise ValueError(f"adjust_lr_fn must be one of {ADJUST_MODES}; got {mode!r}")


def _ints(v: int | Sequence[int] | None, what: str) -> tuple[int, ...] | None:
    if v is None:
        return None
    t = (v,) if isinstance(v, int) else tuple(v)
    if not t or any(isinstance(x, bool) or not isinstance(x, int) for x in t):
        raise TypeError(f"{what} must be an int or a sequence of ints; got {v!r}")
    return t


@dataclass(frozen=True)
class Layout:
    """The matrix view of one parameter (see the module docstring)."""

    out_axes: tuple[int, ...] = (0,)
    in_axes: tuple[int, ...] = (1,)
    split: tuple[int, ...] | None = None
    split_along: str = "out"
    heads: int | tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_axes", _ints(self.out_axes, "out_axes"))
        object.__setattr__(self, "in_axes", _ints(self.in_axes, "in_axes"))
        object.__setattr__(self, "split", _ints(self.split, "split"))
        if self.heads is not None:
            h = _ints(self.heads, "heads")
            object.__setattr__(self, "heads", h[0] if isinstance(self.heads, int) else h)
        if self.split_along not in ("out", "in"):
            raise ValueError(f"split_along must be 'out' or 'in'; got {self.split_along!r}")
        if self.split is not None and min(self.split) < 1:
            raise ValueError(f"split sizes must be positive; got {self.split}")
        for h in (self.heads,) if isinstance(self.heads, int) else (self.heads or ()):
            if h < 1:
                raise ValueError(f"heads must be positive; got {self.heads}")

    # -- the common layouts ---------------------------------------------------------------
    @classmethod
    def linear(cls, **kw) -> Layout:
        """(out, in) storage: nn.Linear."""
        return cls((0,), (1,), **kw)

    @classmethod
    def transposed(cls, **kw) -> Layout:
        """(in, out) storage: transformers' Conv1D (GPT-2)."""
        return cls((1,), (0,), **kw)

    @classmethod
    def conv(cls, ndim: int, **kw) -> Layout:
        """(out, in, k...) storage flattened to (out, in * k...): nn.Conv1d/2d/3d."""
        return cls((0,), tuple(range(1, ndim)), **kw)

    @classmethod
    def experts(cls, **kw) -> Layout:
        """(E, out, in) storage: a batch of E matrices (MoE expert stacks, stacked heads)."""
        return cls((1,), (2,), **kw)

    # -- checks and geometry ----------------------------------------------------------------
    def _axes(self, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        def norm(a: int) -> int:
            if not -ndim <= a < ndim:
                raise ValueError(f"axis {a} is out of range for a {ndim}-D parameter")
            return a % ndim

        out = tuple(norm(a) for a in self.out_axes)
        inn = tuple(norm(a) for a in self.in_axes)
        if not out or not inn:
            raise ValueError("a layout needs at least one out axis and one in axis")
        if len(set(out + inn)) != len(out) + len(inn):
            raise ValueError(f"out_axes {self.out_axes} and in_axes {self.in_axes} overlap")
        batch = tuple(a for a in range(ndim) if a not in out + inn)
        return batch, out, inn

    def batch_axes(self, ndim: int) -> tuple[int, ...]:
        """The axes that index matrices rather than their entries (an expert stack's E)."""
        return self._axes(ndim)[0]

    def _sizes(self, shape: Sequence[int]) -> tuple[int, int, int]:
        batch, out, inn = self._axes(len(shape))
        return (math.prod(shape[a] for a in batch), math.prod(shape[a] for a in out),
                math.prod(shape[a] for a in inn))

    def _block_sizes(self, shape: Sequence[int]) -> tuple[list[int], int]:
        """The split sizes (along ``split_along``) and the length of that axis."""
        _, rows, cols = self._sizes(shape)
        total = rows if self.split_along == "out" else cols
        sizes = list(self.split) if self.split is not None else [total]
        if sum(sizes) != total:
            raise ValueError(f"split {self.split} must sum to the {self.split_along} size "
                             f"{total}")
        return sizes, total

    def _heads(self, nblocks: int) -> list[int]:
        if self.heads is None:
            return [1] * nblocks
        if isinstance(self.heads, int):
            return [self.heads] * nblocks
        if len(self.heads) != nblocks:
            raise ValueError(f"heads {self.heads} must give one count per block "
                             f"({nblocks} blocks)")
        return list(self.heads)

    def matrix_shapes(self, shape: Sequence[int]) -> list[tuple[int, int, int]]:
        """(batch, rows, cols) of each block msign sees, for a parameter of ``shape``."""
        b, rows, cols = self._sizes(shape)
        sizes, _ = self._block_sizes(shape)
        out = []
        for size, h in zip(sizes, self._heads(len(sizes)), strict=True):
            o, i = (size, cols) if self.split_along == "out" else (rows, size)
            if o % h:
                raise ValueError(f"{h} heads do not divide a block's {o} out rows")
            out.append((b * h, o // h, i))
        return out

    def check(self, shape: Sequence[int], name: str) -> None:
        """ValueError naming the parameter unless this layout fits ``shape``."""
        try:
            if len(shape) < 2:
                raise ValueError("Muon needs parameters with >= 2 dimensions")
            self.matrix_shapes(shape)
        except ValueError as e:
            raise ValueError(f"layout {self} does not fit parameter {name} of shape "
                             f"{tuple(shape)}: {e}") from None

    def scales(self, shape: Sequence[int], mode: str | None) -> list[float]:
        """The shape scale of each block (see :func:`shape_scale`).

        ``"keller_jordan"`` is KellerJordan/Muon muon.py's rule, sqrt(max(1, size(-2) /
        size(-1))) of the stored tensor, one scale for every block: for a 2-D (out, in)
        weight it equals "original", for a conv weight (out, in, kh, kw) it is
        sqrt(max(1, kh / kw)), where msign's "original" scales the flattened
        (out, in kh kw) matrix.
        """
        blocks = self.matrix_shapes(shape)
        if mode == "keller_jordan":
            s = math.sqrt(max(1.0, shape[-2] / shape[-1])) if shape[-1] else 1.0
            return [s] * len(blocks)
        return [shape_scale(o, i, mode) for _, o, i in blocks]

    def rows(self, shape: Sequence[int]) -> int:
        """Total output rows over all blocks and batches (NorMuon keeps one entry each)."""
        return sum(b * o for b, o, _ in self.matrix_shapes(shape))

    # -- tensors ------------------------------------------------------------------------------
    def _perm(self, ndim: int) -> list[int]:
        batch, out, inn = self._axes(ndim)
        return [*batch, *out, *inn]

    def to_blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The (B, rows, cols) matrices of ``x`` (a tensor of the parameter's shape)."""
        b, rows, cols = self._sizes(x.shape)
        y = x.permute(self._perm(x.dim())).reshape(b, rows, cols)
        sizes, _ = self._block_sizes(x.shape)
        parts = y.split(sizes, dim=1 if self.split_along == "out" else 2)
        out = []
        for blk, h in zip(parts, self._heads(len(parts)), strict=True):
            bb, o, i = blk.shape
            out.append(blk.reshape(bb * h, o // h, i) if h > 1 else blk)
        return out

    def from_blocks(self, blocks: Sequence[torch.Tensor], shape: Sequence[int]) -> torch.Tensor:
        """Inverse of :meth:`to_blocks`: a tensor of ``shape`` from its blocks."""
        b, rows, cols = self._sizes(shape)
        heads = self._heads(len(blocks))
        parts = [blk.reshape(b, h * o, i) for blk, h, (_, o, i)
                 in zip(blocks, heads, self.matrix_shapes(shape), strict=True)]
        y = torch.cat(parts, dim=1 if self.split_along == "out" else 2) if len(parts) > 1 \
            else parts[0]
        perm = self._perm(len(shape))
        permuted = [shape[a] for a in perm]
        inverse = [perm.index(a) for a in range(len(shape))]
        return y.reshape(permuted).permute(inverse)


def _is_transposed_conv1d(module: nn.Module) -> bool:
    # transformers.pytorch_utils.Conv1D: weight (nx, nf) used as x @ W, so stored (in, out);
    # recognized by class name and attribute so that msign never imports transformers.
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def infer_layout(shape: Sequence[int], module: nn.Module | None = None) -> Layout:
    """The layout of a parameter of ``shape``, owned by ``module`` where that is known.

    The one rule of both ``Muon(model.parameters())`` and ``Muon(muon_param_groups(model))``:

    - transformers' ``Conv1D`` weight: (in, out) storage;
    - a ``nn.Conv1d/2d/3d`` weight: flattened to (out, in * k...);
    - 2-D: (out, in);
    - 3-D: a batch of (out, in) matrices (MoE expert stacks are the 3-D parameters people
      train; a ``nn.Conv1d`` weight is 3-D too, and is recognized by its module only);
    - 4-D and more: conv-like, flattened to (out, in * ...).

    Examples
    --------
    >>> infer_layout((8, 96, 32)) == Layout.experts()
    True
    >>> infer_layout((16, 8, 3), nn.Conv1d(8, 16, 3)) == Layout.conv(3)
    True
    """
    if len(shape) < 2:
        raise ValueError(f"Muon needs parameters with >= 2 dimensions; got shape "
                         f"{tuple(shape)} (put it in a use_muon=False group)")
    if module is not None and _is_transposed_conv1d(module) and len(shape) == 2:
        return Layout.transposed()
    if isinstance(module, nn.modules.conv._ConvNd):
        return Layout.conv(len(shape))
    if len(shape) == 2:
        return Layout.linear()
    if len(shape) == 3:
        return Layout.experts()
    return Layout.conv(len(shape))
