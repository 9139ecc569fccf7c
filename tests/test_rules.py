"""The Muon family: NorMuon, cautious weight decay (both sides) and QK-clip, each against a
direct float64 transcription of the formula it implements (docs/guides/muon.md)."""

import copy
import io

import pytest
import torch
from torch import nn

import msign
from experiments.lm.model import GPT, GPTConfig
from msign.exact import svd_msign
from msign.optim import Heads, Layout, Muon, qk_clip

B2, EPS, LR, WD, MU = 0.9, 1e-8, 0.05, 0.1, 0.9


def grads(shapes, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
            for _ in range(steps)]


def reference_step(W, B, v, G, layout, cautious, normuon):
    """One step, written out from the formulas in float64 (numbers from docs/guides/muon.md)."""
    B.lerp_(G, 1 - MU)
    M = G.lerp(B, MU)
    outs, offset = [], 0
    for blk in layout.to_blocks(M):
        out = []
        for m in blk:
            o, i = m.shape
            s = max(1, o / i) ** 0.5
            upd = s * svd_msign(m)
            if normuon:
                vm = v[offset: offset + o]
                vm.mul_(B2).add_((1 - B2) * (upd**2).mean(dim=1))
                un = upd / (vm.sqrt() + EPS)[:, None]
                upd = un * (upd.norm() / un.norm())
                offset += o
            out.append(upd)
        outs.append(torch.stack(out))
    U = layout.from_blocks(outs, W.shape)
    if cautious:
        W -= LR * WD * W * ((W * U) > 0)
    else:
        W *= 1 - LR * WD
    W -= LR * U


@pytest.mark.parametrize("normuon", [False, True])
@pytest.mark.parametrize("cautious", [False, True])
def test_muon_side_equals_transcription(normuon, cautious):
    shapes = [(12, 20), (30, 8), (12, 6)]
    layouts = [Layout.linear(), Layout.linear(), Layout.linear(split=(4, 8))]
    g = torch.Generator().manual_seed(7)
    Ws = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    params = [nn.Parameter(W.clone()) for W in Ws]
    opt = Muon([{"params": params, "layouts": layouts}], lr=LR, momentum=MU, weight_decay=WD,
               msign="svd", msign_dtype=torch.float64, cautious_weight_decay=cautious,
               normuon_beta2=B2 if normuon else None, normuon_eps=EPS)
    Bs = [torch.zeros_like(W) for W in Ws]
    vs = [torch.zeros(lay.rows(s), dtype=torch.float64) for lay, s in zip(layouts, shapes,
                                                                       strict=True)]
    for gs in grads(shapes, 5):
        for p, gr in zip(params, gs, strict=True):
            p.grad = gr.clone()
        opt.step()
        for W, B, v, gr, lay in zip(Ws, Bs, vs, gs, layouts, strict=True):
            reference_step(W, B, v, gr, lay, cautious, normuon)
    for p, W, v in zip(params, Ws, vs, strict=True):
        assert (p.detach() - W).abs().max() < 1e-12
        if normuon:
            assert (opt.state[p]["normuon_v"] - v).abs().max() < 1e-12


def test_normuon_changes_the_step_and_keeps_its_norm():
    torch.manual_seed(0)
    # tall: msign's rows are not equal-norm (a wide one's are, and NorMuon is then a no-op)
    W = nn.Parameter(torch.zeros(24, 16, dtype=torch.float64))
    W.grad = torch.randn(24, 16, dtype=torch.float64)
    Muon([W], lr=1.0, momentum=0.0, msign="svd", msign_dtype=torch.float64,
         normuon_beta2=0.95).step()
    U = -W.detach()
    plain = svd_msign(W.grad) * 1.5**0.5  # O = s(W) msign(G), s(W) = sqrt(24 / 16)
    # floats: newer pytest's approx does not take a 0-d tensor
    assert float(U.norm()) == pytest.approx(float(plain.norm()), rel=1e-12)  # O's norm
    assert (U - plain).abs().max() > 1e-3  # but not the plain Muon step
    rms = U.square().mean(dim=1).sqrt()
    assert rms.max() / rms.min() < 1.01  # rows equalized (one step, v from this O alone)


def test_cautious_adamw_side_equals_transcription():
    g = torch.Generator().manual_seed(3)
    W0 = torch.randn(5, 7, generator=g, dtype=torch.float64)
    p = nn.Parameter(W0.clone())
    opt = Muon([{"params": [p], "use_muon": False}], adamw_lr=0.01, adamw_betas=(0.9, 0.99),
               adamw_eps=1e-8, adamw_weight_decay=0.2, cautious_weight_decay=True)
    W, m, s = W0.clone(), torch.zeros_like(W0), torch.zeros_like(W0)
    for t in range(1, 6):
        gr = torch.randn(5, 7, generator=g, dtype=torch.float64)
        p.grad = gr.clone()
        opt.step()
        m = 0.9 * m + 0.1 * gr
        s = 0.99 * s + 0.01 * gr * gr
        U = (m / (1 - 0.9**t)) / ((s / (1 - 0.99**t)).sqrt() + 1e-8)
        W = W - 0.01 * 0.2 * W * ((W * U) > 0) - 0.01 * U
    assert (p.detach() - W).abs().max() < 1e-12


def test_normuon_state_resumes_bit_exactly():
    def make():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16, bias=False), nn.Linear(16, 4, bias=False))
        return model, Muon(model.parameters(), lr=0.02, normuon_beta2=0.95,
                           cautious_weight_decay=True, weight_decay=0.1)

    def steps(model, opt, seed, n):
        g = torch.Generator().manual_seed(seed)
        for _ in range(n):
            opt.zero_grad()
            model(torch.randn(4, 8, generator=g)).square().mean().backward()
            opt.step()

    m1, o1 = make()
    steps(m1, o1, 1, 3)
    buf = io.BytesIO()
    torch.save({"m": m1.state_dict(), "o": o1.state_dict()}, buf)
    steps(m1, o1, 2, 3)
    m2, o2 = make()
    buf.seek(0)
    ck = torch.load(buf)
    m2.load_state_dict(ck["m"])
    o2.load_state_dict(ck["o"])
    assert all("normuon_v" in o2.state[p] for p in m2.parameters())
    steps(m2, o2, 2, 3)
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))


@pytest.mark.parametrize("bad", [{"normuon_beta2": 1.0}, {"normuon_eps": 0.0},
                                 {"cautious_weight_decay": "yes"}])
def test_bad_family_arguments(bad):
    with pytest.raises((ValueError, TypeError), match=next(iter(bad))):
        Muon([nn.Parameter(torch.zeros(3, 3))], **bad)


# -- QK-clip ------------------------------------------------------------------------------

def gpt_with_big_logits():
    # One block: a clip in block 0 would change the inputs of block 1, whose logits are then
    # not the same batch's logits any more.
    torch.manual_seed(0)
    model = GPT(GPTConfig(block=16, layers=1, heads=4, d_model=32, vocab=64))
    with torch.no_grad():
        for b in model.blocks:  # grow the query/key rows of heads 0 and 2 so they exceed tau
            q, k = model.qk_heads(b)
            M = q.multiplier(torch.tensor([8.0, 1.0, 8.0, 1.0]))
            b.qkv.weight.mul_(M * k.multiplier(torch.tensor([8.0, 1.0, 8.0, 1.0])))
    return model


def test_qk_clip_caps_the_same_batch_at_tau():
    model = gpt_with_big_logits()
    model.track_qk(True)
    x = torch.randint(0, 64, (3, 16), generator=torch.Generator().manual_seed(1))
    model(x)
    before = [b.qk_max.clone() for b in model.blocks]
    tau = float(torch.stack(before).median())  # some heads over, some under
    weights = [b.qkv.weight.detach().clone() for b in model.blocks]
    clipped = [qk_clip(b.qk_max, *model.qk_heads(b), tau=tau) for b in model.blocks]
    assert clipped[0].any() and not clipped[0].all()
    model(x)
    for b, s0, c, W in zip(model.blocks, before, clipped, weights, strict=True):
        s1 = b.qk_max
        assert torch.allclose(s1[c], torch.full_like(s1[c], tau), rtol=1e-5)
        assert torch.equal(s1[~c], s0[~c])  # heads under tau: logits unchanged
        d = b.qkv.weight.shape[1]
        rows = torch.arange(3 * d)
        head = (rows % d) // (d // 4)
        untouched = ~c[head] | (rows >= 2 * d)  # unclipped heads' q/k rows, and all of v
        assert torch.equal(b.qkv.weight.detach()[untouched], W[untouched])


def test_qk_clip_transcription_separate_and_transposed():
    # separate q/k projections in (in, out) storage (GPT-2 style Conv1D): rows are columns
    g = torch.Generator().manual_seed(2)
    Wq, Wk = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    q, k = nn.Parameter(Wq.clone()), nn.Parameter(Wk.clone())
    s = torch.tensor([300.0, 80.0])
    qk_clip(s, Heads(q, 2, Layout.transposed()), Heads(k, 2, Layout.transposed()), tau=100.0)
    f = torch.tensor([(100 / 300) ** 0.5] * 4 + [1.0] * 4)
    assert torch.allclose(q.detach(), Wq * f) and torch.allclose(k.detach(), Wk * f)


def test_qk_clip_gqa_scales_queries_only():
    Wq, Wk = torch.ones(8, 3), torch.ones(4, 3)  # 4 query heads, 2 shared key heads
    q, k = Wq.clone(), Wk.clone()
    qk_clip(torch.tensor([200.0, 50.0, 50.0, 50.0]), Heads(q, 4), Heads(k, 2), tau=100.0)
    assert torch.equal(k, Wk)
    assert torch.allclose(q[:2], torch.full((2, 3), 0.5)) and torch.equal(q[2:], Wq[2:])


@pytest.mark.parametrize("kwargs,match", [({"tau": 0.0}, "tau"), ({"tau": float("inf")}, "tau")])
def test_qk_clip_bad_input(kwargs, match):
    W = torch.ones(4, 2)
    with pytest.raises(ValueError, match=match):
        qk_clip(torch.ones(2), Heads(W, 2), Heads(W, 2), **kwargs)
    with pytest.raises(ValueError, match="one entry per query head"):
        qk_clip(torch.ones(3), Heads(W, 2), Heads(W, 2))
    with pytest.raises(ValueError, match="divide"):
        qk_clip(torch.ones(2), Heads(W, 2), Heads(copy.deepcopy(W), 3))


def test_diagnostics_equal_a_direct_computation():
    # The msign callable keeps its outputs, so every number can be recomputed from them.
    from msign.optim import muon_param_groups

    seen = []

    def keep(M):
        X = msign.msign(M, "jordan", compute_dtype=torch.float64)  # not orthogonal: band
        seen.append(X)
        return X

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 5))
    opt = Muon(muon_param_groups(model), lr=0.02, msign=keep, diagnostics=True,
               nonfinite="skip")
    model(torch.randn(16, 6)).square().mean().backward()
    opt.step()
    d = opt.diagnostics
    assert set(d) == {"skipped_fraction", "orth_error/0.weight", "orth_error/2.weight",
                      "update_rms/0.weight", "update_rms/2.weight"}
    for X, name in zip(seen, ["0.weight", "2.weight"], strict=True):
        s = torch.linalg.svdvals(X.double())
        assert d[f"orth_error/{name}"] == pytest.approx(float((s - 1).abs().max()), abs=1e-9)
        rows, cols = X.shape
        scale = max(1.0, rows / cols) ** 0.5
        assert d[f"update_rms/{name}"] == pytest.approx(
            scale * float(X.double().square().mean().sqrt()), rel=1e-9)
    assert d["skipped_fraction"] == 0.0
    model[0].weight.grad.fill_(float("nan"))
    opt.step()
    assert opt.diagnostics == {"skipped_fraction": 0.5}
    # QK-clip writes its numbers into the same record
    W_q, W_k = torch.ones(4, 2), torch.ones(4, 2)
    qk_clip(torch.tensor([400.0, 50.0]), Heads(W_q, 2), Heads(W_k, 2), record=opt.diagnostics)
    assert opt.diagnostics["qk/max_logit"] == 400.0 and opt.diagnostics["qk/clipped_heads"] == 1
