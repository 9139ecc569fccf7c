"""Muon on the models people train: tiny transformers models built from configs (random init).

GPT-2 (Conv1D weights stored (in, out)), Llama (separate q/k/v, GQA), Mixtral and Qwen2-MoE
(3-D expert stacks, routers): the grouping, that every matrix of the layout gets an
orthogonal update with the right shape scale, and that the loss goes down.
"""

import pytest
import torch

from msign.optim import Layout, Muon, muon_param_groups

transformers = pytest.importorskip("transformers")

V = 64


def build(name: str):
    torch.manual_seed(0)
    T = transformers
    common = {"vocab_size": V, "num_attention_heads": 4}
    if name == "gpt2":
        cfg = T.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=V, n_positions=32,
                           bos_token_id=0, eos_token_id=0)
    elif name == "llama":
        cfg = T.LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                            num_key_value_heads=2, **common)
    elif name == "mixtral":
        cfg = T.MixtralConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                              num_key_value_heads=2, num_local_experts=4,
                              num_experts_per_tok=2, **common)
    else:
        cfg = T.Qwen2MoeConfig(hidden_size=32, intermediate_size=48, moe_intermediate_size=24,
                               shared_expert_intermediate_size=40, num_hidden_layers=2,
                               num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
                               **common)
    return T.AutoModelForCausalLM.from_config(cfg)


# What must go where: Muon's hidden matrices and their per-matrix (out, in) shapes.
EXPECTED = {
    "gpt2": {"attn.c_attn.weight": (1, 96, 32), "attn.c_proj.weight": (1, 32, 32),
             "mlp.c_fc.weight": (1, 128, 32), "mlp.c_proj.weight": (1, 32, 128)},
    "llama": {"q_proj.weight": (1, 32, 32), "k_proj.weight": (1, 16, 32),
              "v_proj.weight": (1, 16, 32), "o_proj.weight": (1, 32, 32),
              "gate_proj.weight": (1, 48, 32), "up_proj.weight": (1, 48, 32),
              "down_proj.weight": (1, 32, 48)},
    "mixtral": {"q_proj.weight": (1, 32, 32), "k_proj.weight": (1, 16, 32),
                "v_proj.weight": (1, 16, 32), "o_proj.weight": (1, 32, 32),
                "experts.gate_up_proj": (4, 96, 32), "experts.down_proj": (4, 32, 48)},
    "qwen2moe": {"q_proj.weight": (1, 32, 32), "k_proj.weight": (1, 16, 32),
                 "v_proj.weight": (1, 16, 32), "o_proj.weight": (1, 32, 32),
                 "experts.gate_up_proj": (4, 48, 32), "experts.down_proj": (4, 32, 24),
                 "shared_expert.gate_proj.weight": (1, 40, 32),
                 "shared_expert.up_proj.weight": (1, 40, 32),
                 "shared_expert.down_proj.weight": (1, 32, 40)},
}
MODELS = sorted(EXPECTED)


def names(group):
    return [n for n, _ in group["params"]]


@pytest.mark.parametrize("name", MODELS)
def test_grouping_and_layouts(name):
    model = build(name)
    muon, adamw = muon_param_groups(model)
    expected = EXPECTED[name]
    got = {}
    for (n, p), lay in zip(muon["params"], muon["layouts"], strict=True):
        key = next(k for k in expected if n.endswith(k))
        got.setdefault(key, set()).add(tuple(lay.matrix_shapes(p.shape)[0]))
    assert got == {k: {v} for k, v in expected.items()}
    rest = names(adamw)
    assert all(("embed" in n or "wte" in n or "wpe" in n or "lm_head" in n or "norm" in n
                or "ln_" in n or n.endswith("bias") or ".gate." in n or n.endswith("gate.weight"))
               for n in rest), rest
    everything = {id(p) for p in model.parameters()}
    assert {id(p) for g in (muon, adamw) for _, p in g["params"]} == everything
    if name in ("mixtral", "qwen2moe"):  # routers go to AdamW (docs/guides/muon.md)
        assert any(n.endswith("mlp.gate.weight") for n in rest)
        moved = muon_param_groups(model, muon=["*.mlp.gate.weight"])[0]
        assert any(n.endswith("mlp.gate.weight") for n in names(moved))


@pytest.mark.parametrize("name", MODELS)
def test_each_matrix_gets_an_orthogonal_update_with_its_scale(name):
    model = build(name).double()
    groups = muon_param_groups(model)
    lr = 0.5
    opt = Muon(groups, lr=lr, momentum=0.0, msign="svd", msign_dtype=torch.float64)
    muon = opt.param_groups[0]
    named = list(zip(muon["param_names"], muon["params"], strict=True))
    before = [p.detach().clone() for _, p in named]
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
    opt.step()
    for (n, p), lay, b in zip(named, muon["layouts"], before, strict=True):
        delta = (b - p.detach()) / lr  # = s * msign(G) per matrix of the layout
        for blk, s in zip(lay.to_blocks(delta), lay.scales(p.shape, "original"), strict=True):
            sv = torch.linalg.svdvals(blk)
            assert torch.allclose(sv, torch.full_like(sv, s), atol=1e-9), (n, sv[:, :3], s)
    scale = {n: lay.scales(p.shape, "original")[0]
             for (n, p), lay in zip(named, muon["layouts"], strict=True)}
    if name == "gpt2":  # (in, out) storage read as (out, in): the wrong scales fixed
        assert scale["transformer.h.0.attn.c_attn.weight"] == pytest.approx(3**0.5)
        assert scale["transformer.h.0.mlp.c_fc.weight"] == pytest.approx(2.0)
        assert scale["transformer.h.0.mlp.c_proj.weight"] == pytest.approx(1.0)
    if name == "mixtral":
        assert scale["model.layers.0.mlp.experts.gate_up_proj"] == pytest.approx(3**0.5)


@pytest.mark.parametrize("name", MODELS)
def test_loss_decreases(name):
    model = build(name)
    opt = Muon(muon_param_groups(model), lr=0.02, adamw_lr=3e-3)
    g = torch.Generator().manual_seed(2)
    start = torch.randint(0, V, (8, 1), generator=g)
    ids = (start + 3 * torch.arange(16)) % V  # learnable: each row counts up by 3
    losses = []
    for _ in range(20):
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_fused_qkv_split_by_pattern():
    # GPT-2's c_attn holds Q/K/V as column blocks of its (in, out) storage: split along out.
    model = build("gpt2").double()
    lay = Layout.transposed(split=(32, 32, 32))
    groups = muon_param_groups(model, layouts={"*.attn.c_attn.weight": lay})
    opt = Muon(groups, lr=1.0, momentum=0.0, msign="svd", msign_dtype=torch.float64)
    W = model.transformer.h[0].attn.c_attn.weight
    before = W.detach().clone()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    for blk in lay.to_blocks(before - W.detach()):  # each of Q, K, V: 32 x 32, orthogonal
        assert torch.allclose(blk[0] @ blk[0].T, torch.eye(32, dtype=torch.float64), atol=1e-9)


def test_per_head_layout_on_llama():
    model = build("llama").double()
    heads = {"*.q_proj.weight": Layout.linear(heads=4), "*.k_proj.weight": Layout.linear(heads=2)}
    opt = Muon(muon_param_groups(model), lr=1.0, momentum=0.0, msign="svd",
               msign_dtype=torch.float64, layouts=heads)
    q = model.model.layers[0].self_attn.q_proj.weight
    before = q.detach().clone()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    d = (before - q.detach()).reshape(4, 8, 32)  # 4 heads of 8 rows: each has orthonormal rows
    eye = torch.eye(8, dtype=torch.float64)
    assert all(torch.allclose(h @ h.T, eye, atol=1e-9) for h in d)


def test_compiled_model_groups():
    model = build("llama")
    plain = muon_param_groups(model)
    compiled = muon_param_groups(torch.compile(model))
    for a, b in zip(plain, compiled, strict=True):
        assert [id(p) for _, p in a["params"]] == [id(p) for _, p in b["params"]]
