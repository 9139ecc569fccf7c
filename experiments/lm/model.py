"""A small GPT in the nanoGPT style: pre-norm blocks, causal self-attention, GELU MLP,
learned absolute positions, output head tied to the token embedding (byte vocabulary).

With ``model.track_qk(True)`` every block records ``qk_max``: each head's largest causal
pre-softmax logit q . k / sqrt(d) over the last forward's batch, what QK-clip reads
(:func:`GPT.qk_heads` says where each head's query and key rows are).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from msign.optim import Heads, Layout


@dataclass(frozen=True)
class GPTConfig:
    vocab: int = 256
    block: int = 128
    layers: int = 4
    heads: int = 4
    d_model: int = 192


class Block(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.ln1 = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model, bias=False)
        self.proj = nn.Linear(c.d_model, c.d_model, bias=False)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.fc = nn.Linear(c.d_model, 4 * c.d_model, bias=False)
        self.fc_proj = nn.Linear(4 * c.d_model, c.d_model, bias=False)
        self.track_qk = False
        self.qk_max: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if self.track_qk:
            with torch.no_grad():
                s = (q @ k.mT) / math.sqrt(d // self.heads)
                causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
                self.qk_max = s.masked_fill(~causal, float("-inf")).amax(dim=(0, 2, 3))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab, c.d_model)
        self.wpe = nn.Embedding(c.block, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init)
        for b in self.blocks:  # GPT-2: scale residual projections by depth
            for w in (b.proj.weight, b.fc_proj.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * c.layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for b in self.blocks:
            x = b(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def track_qk(self, on: bool = True) -> None:
        """Record each block's per-head largest attention logit (``block.qk_max``)."""
        for b in self.blocks:
            b.track_qk = on

    def qk_heads(self, block: Block) -> tuple[Heads, Heads]:
        """The query and key rows of ``block``'s fused qkv, per head (for qk_clip)."""
        d, h = self.config.d_model, self.config.heads
        lay = Layout.linear(split=(d, d, d))
        return Heads(block.qkv.weight, h, lay, 0), Heads(block.qkv.weight, h, lay, 1)
