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
    # Mixture of experts in place of the MLP (miniMind's MoE FFN): ``experts`` > 0 stacks of
    # (E, out, in) expert weights, ``top_k`` of them per token, an optional shared expert,
    # and the Switch load-balancing loss added to the LM loss with weight ``aux_coef``.
    experts: int = 0
    top_k: int = 2
    expert_hidden: int = 0  # 0: 4 d_model / top_k, so that the active FLOPs match the MLP's
    shared_expert: bool = False
    aux_coef: float = 0.01

    def __post_init__(self) -> None:
        if self.experts and not 1 <= self.top_k <= self.experts:
            raise ValueError(f"top_k must lie in [1, experts={self.experts}]; got {self.top_k}")
        if self.experts < 0 or self.aux_coef < 0:
            raise ValueError("experts and aux_coef must be >= 0")


class MoE(nn.Module):
    """Top-k routed experts (no capacity limit: no token is dropped) and the Switch
    Transformer / miniMind load-balancing loss aux = E sum_e f_e P_e, with f_e the share of
    the top-k assignments that go to expert e and P_e its mean router probability."""

    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        h = c.expert_hidden or 4 * c.d_model // c.top_k
        self.k = c.top_k
        self.gate = nn.Linear(c.d_model, c.experts, bias=False)  # the router
        self.w_in = nn.Parameter(torch.empty(c.experts, h, c.d_model))  # (E, out, in)
        self.w_out = nn.Parameter(torch.empty(c.experts, c.d_model, h))
        self.shared = nn.Sequential(nn.Linear(c.d_model, h, bias=False), nn.GELU(),
                                    nn.Linear(h, c.d_model, bias=False)) \
            if c.shared_expert else None
        self.aux: torch.Tensor | None = None
        self.load: torch.Tensor | None = None  # f_e of the last forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        probs = F.softmax(self.gate(x), dim=-1)
        top_p, top_i = probs.topk(self.k, dim=-1)
        top_p = top_p / top_p.sum(-1, keepdim=True)
        y = torch.zeros_like(x)
        for e in range(self.w_in.shape[0]):
            tok, slot = (top_i == e).nonzero(as_tuple=True)
            if tok.numel():
                h = F.gelu(x[tok] @ self.w_in[e].T) @ self.w_out[e].T
                y.index_add_(0, tok, h * top_p[tok, slot, None])
        experts = self.w_in.shape[0]
        self.load = torch.bincount(top_i.flatten(), minlength=experts).float() / top_i.numel()
        self.aux = experts * (self.load * probs.mean(0)).sum()
        if self.shared is not None:
            y = y + self.shared(x)
        return y.reshape(shape)


class Block(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.ln1 = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model, bias=False)
        self.proj = nn.Linear(c.d_model, c.d_model, bias=False)
        self.ln2 = nn.LayerNorm(c.d_model)
        if c.experts:
            self.moe = MoE(c)
        else:
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
        if hasattr(self, "moe"):
            return x + self.moe(self.ln2(x))
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
            outs = (b.proj.weight, b.moe.w_out) if c.experts else (b.proj.weight,
                                                                   b.fc_proj.weight)
            if c.experts:
                nn.init.normal_(b.moe.w_in, std=0.02)
            for w in outs:
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * c.layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                mask: torch.Tensor | None = None):
        """Logits, or with ``targets`` the loss: cross-entropy over the positions where
        ``mask`` holds (all without one; SFT masks all but the response), plus for an MoE
        model ``aux_coef`` times the layers' mean load-balancing loss.  ``last_lm_loss`` and
        ``last_aux`` keep the two parts."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for b in self.blocks:
            x = b(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        lm = ce.mean() if mask is None else (ce * mask.flatten()).sum() / mask.sum()
        self.last_lm_loss = lm.detach()
        if not self.config.experts:
            return lm
        aux = torch.stack([b.moe.aux for b in self.blocks]).mean()
        self.last_aux = aux.detach()
        return lm + self.config.aux_coef * aux

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
