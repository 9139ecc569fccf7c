"""msign.optim.Muon against torch.optim.Muon / AdamW, resume, sharding, bad input."""

import io

import pytest
import torch
from torch import nn

import msign
from msign.optim import Layout, Muon, infer_layout, muon_param_groups

JORDAN = msign.get_schedule("jordan").coeffs[0]


def torch_muon_rule_fp64(W, buf, g, lr, mu, wd, adjust):
    """torch.optim.Muon's update rule written out, evaluated in float64."""
    buf.lerp_(g, 1 - mu)
    u = g.lerp(buf, mu)
    X = u.T if u.shape[0] > u.shape[1] else u
    X = X / X.norm().clamp(min=1e-7)
    a, b, c = JORDAN
    for _ in range(5):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    X = X.T if u.shape[0] > u.shape[1] else X
    rows, cols = W.shape
    scale = (max(1, rows / cols) ** 0.5 if adjust == "original" else 0.2 * max(rows, cols) ** 0.5)
    W.mul_(1 - lr * wd)
    W.add_(X, alpha=-lr * scale)


@pytest.mark.parametrize("adjust", ["original", "match_rms_adamw"])
def test_equals_torch_rule_in_float64(adjust):
    g = torch.Generator().manual_seed(0)
    shapes = [(16, 32), (40, 12)]
    Ws = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    params = [nn.Parameter(W.clone()) for W in Ws]
    opt = Muon(params, lr=0.05, momentum=0.9, weight_decay=0.1, msign="jordan",
               msign_dtype=torch.float64, adjust_lr_fn=adjust)
    bufs = [torch.zeros_like(W) for W in Ws]
    for _ in range(4):
        grads = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        for p, gr in zip(params, grads, strict=True):
            p.grad = gr.clone()
        opt.step()
        for W, b, gr in zip(Ws, bufs, grads, strict=True):
            torch_muon_rule_fp64(W, b, gr, 0.05, 0.9, 0.1, adjust)
    for p, W in zip(params, Ws, strict=True):
        assert (p.detach() - W).abs().max() < 1e-12


def step_in_lockstep(ours, ref, o1, o2, steps, g):
    """Give both parameter lists the same random gradients and step both optimizers."""
    for _ in range(steps):
        for a, b in zip(ours, ref, strict=True):
            gr = torch.randn(a.shape, generator=g)
            a.grad, b.grad = gr.clone(), gr.clone()
        o1.step()
        o2.step()


@pytest.mark.parametrize("nesterov", [True, False])
def test_matches_torch_optim_muon_bf16(nesterov):
    g = torch.Generator().manual_seed(1)
    shapes = [(32, 64), (48, 16)]
    ours = [nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    ref = [nn.Parameter(p.detach().clone()) for p in ours]
    o1 = Muon(ours, lr=0.02, momentum=0.95, nesterov=nesterov, weight_decay=0.1,
              msign="jordan", msign_dtype=torch.bfloat16, adjust_lr_fn="original",
              msign_gemm="native")
    o2 = torch.optim.Muon(ref, lr=0.02, momentum=0.95, nesterov=nesterov, weight_decay=0.1,
                          adjust_lr_fn="original")
    step_in_lockstep(ours, ref, o1, o2, 5, g)
    for a, b in zip(ours, ref, strict=True):
        # Same bf16 kernel sequence: equal up to bf16 noise (in practice identical).
        assert (a - b).abs().max() < 1e-3
        assert torch.equal(o1.state[a]["momentum_buffer"], o2.state[b]["momentum_buffer"])


def test_adamw_side_equals_torch_adamw():
    g = torch.Generator().manual_seed(2)
    ours = [nn.Parameter(torch.randn(7, generator=g)), nn.Parameter(torch.randn(5, 3, generator=g))]
    ref = [nn.Parameter(p.detach().clone()) for p in ours]
    o1 = Muon([{"params": ours, "use_muon": False}], adamw_lr=1e-2, adamw_betas=(0.9, 0.99),
              adamw_eps=1e-8, adamw_weight_decay=0.05)
    o2 = torch.optim.AdamW(ref, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
    step_in_lockstep(ours, ref, o1, o2, 10, g)
    for a, b in zip(ours, ref, strict=True):
        assert (a - b).abs().max() < 1e-6


class TinyGPT(nn.Module):
    def __init__(self, vocab=32, d=16, tied=True):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(8, d)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"ln": nn.LayerNorm(d), "qkv": nn.Linear(d, 3 * d),
                           "proj": nn.Linear(d, d, bias=False), "fc": nn.Linear(d, 4 * d)})
            for _ in range(2))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        if tied:
            self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            h = b["ln"](x)
            q, k, v = b["qkv"](h).chunk(3, dim=-1)
            att = torch.softmax((q @ k.mT) / 4 + torch.full((idx.shape[1],) * 2, -1e9).triu(1), -1)
            x = x + b["proj"](att @ v)
            x = x + b["fc"](h).relu()[..., :16]
        return self.lm_head(self.ln_f(x))


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.classifier = nn.Linear(8, 10)

    def forward(self, x):
        return self.classifier(self.conv2(self.bn(self.conv1(x)).relu()).mean((-2, -1)))


@pytest.mark.parametrize("tied", [True, False])
def test_param_groups_gpt(tied):
    model = TinyGPT(tied=tied)
    groups = muon_param_groups(model)
    muon_names = [n for n, _ in groups[0]["params"]]
    adamw_names = [n for n, _ in groups[1]["params"]]
    all_params = list(model.parameters())
    grouped = [p for g in groups for _, p in g["params"]]
    assert len(grouped) == len(all_params)
    assert {id(p) for p in grouped} == {id(p) for p in all_params}
    assert sorted(muon_names) == sorted(f"blocks.{i}.{n}.weight" for i in range(2)
                                        for n in ("qkv", "proj", "fc"))
    assert "wte.weight" in adamw_names and "wpe.weight" in adamw_names
    assert ("lm_head.weight" in adamw_names) == (not tied)  # tied: listed once, as wte
    assert all("ln" in n or n.endswith("bias") or "w" in n.split(".")[0] or "lm_head" in n
               for n in adamw_names)


def test_param_groups_cnn_and_overrides():
    model = TinyCNN()
    def names(g):
        return [n for n, _ in g["params"]]

    groups = muon_param_groups(model)
    assert names(groups[0]) == ["conv1.weight", "conv2.weight"]
    assert set(names(groups[1])) == {"conv1.bias", "bn.weight", "bn.bias", "conv2.bias",
                                     "classifier.weight", "classifier.bias"}
    groups = muon_param_groups(model, adamw=["conv1.*"], muon=["classifier.weight"])
    assert names(groups[0]) == ["conv2.weight", "classifier.weight"]


def test_conv_flatten_split_and_batch():
    torch.manual_seed(0)
    conv = nn.Parameter(torch.zeros(8, 3, 3, 3, dtype=torch.float64))
    qkv = nn.Parameter(torch.zeros(12, 4, dtype=torch.float64))
    heads = nn.Parameter(torch.zeros(3, 5, 4, dtype=torch.float64))
    opt = Muon([{"params": [conv]}, {"params": [qkv], "split": 3}, {"params": [heads]}],
               lr=1.0, msign="svd", msign_dtype=torch.float64, adjust_lr_fn="unscaled")
    for p in (conv, qkv, heads):
        p.grad = torch.randn(p.shape, dtype=torch.float64)
    opt.step()
    eye = torch.eye
    W = -conv.detach().reshape(8, 27)
    assert torch.allclose(W @ W.T, eye(8, dtype=torch.float64), atol=1e-12)
    for blk in (-qkv.detach()).reshape(3, 4, 4):
        assert torch.allclose(blk @ blk.T, eye(4, dtype=torch.float64), atol=1e-12)
    for h in -heads.detach():
        assert torch.allclose(h.T @ h, eye(4, dtype=torch.float64), atol=1e-12)


def make_model_and_opt(method="polar-express", seed=0, **kw):
    torch.manual_seed(seed)
    model = TinyGPT(tied=False)
    opt = Muon(muon_param_groups(model), lr=0.02, msign=method, **kw)
    return model, opt


def train_steps(model, opt, n, seed):
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(n):
        # learnable data: each sequence counts up by a fixed stride mod 32
        start = torch.randint(0, 32, (4, 1), generator=g)
        idx = (start + 3 * torch.arange(8)) % 32
        loss = nn.functional.cross_entropy(model(idx[:, :-1]).flatten(0, 1), idx[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_resume_is_bit_exact():
    m1, o1 = make_model_and_opt()
    train_steps(m1, o1, 3, seed=10)
    buf = io.BytesIO()
    torch.save({"model": m1.state_dict(), "opt": o1.state_dict()}, buf)
    train_steps(m1, o1, 3, seed=11)

    m2, o2 = make_model_and_opt(seed=99)
    buf.seek(0)
    ck = torch.load(buf)
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["opt"])
    train_steps(m2, o2, 3, seed=11)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("mode", ["raise", "skip"])
def test_nonfinite_gradient_leaves_everything_untouched(mode):
    model, opt = make_model_and_opt(nonfinite=mode)
    train_steps(model, opt, 2, seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    state_before = io.BytesIO()
    torch.save(opt.state_dict(), state_before)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    next(model.parameters()).grad[0, 0] = float("nan")
    if mode == "raise":
        with pytest.raises(FloatingPointError, match="NaN or Inf"):
            opt.step()
    else:
        opt.step()
        assert opt.skipped_steps == 1
        assert all(g["skipped_steps"] == 1 for g in opt.state_dict()["param_groups"])
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)
    state_before.seek(0)
    old = torch.load(state_before)["state"]
    new = opt.state_dict()["state"]
    for k in old:
        for name, v in old[k].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(new[k][name]))


@pytest.mark.parametrize("method", sorted(msign.METHODS))
def test_every_method_trains(method):
    model, opt = make_model_and_opt(method=method, msign_dtype=torch.float32)
    losses = train_steps(model, opt, 25, seed=5)
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:3]) / 3


def test_schedule_and_callable_msign():
    s = msign.design.polar_express(lower=1e-2, steps=5)
    model, opt = make_model_and_opt(method=s)
    losses = train_steps(model, opt, 25, seed=3)
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:3]) / 3
    seen = []

    def fn(M):
        seen.append((M.shape, M.dtype))
        return msign.msign(M, "svd")

    model, opt = make_model_and_opt(method=fn)
    train_steps(model, opt, 1, seed=3)
    assert len(seen) == 6 and all(d == torch.float32 for _, d in seen)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [({"lr": -1.0}, ValueError, "lr"), ({"momentum": 1.0}, ValueError, "momentum"),
     ({"adjust_lr_fn": "sqrt"}, ValueError, "adjust_lr_fn"),
     ({"msign": "nope"}, ValueError, "nope"),
     ({"msign": 3}, TypeError, "msign"), ({"nonfinite": "ignore"}, ValueError, "nonfinite"),
     ({"msign_dtype": "int8"}, ValueError, "msign_dtype")],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Muon([nn.Parameter(torch.zeros(3, 3))], **kwargs)


def test_rejects_vectors_in_muon_group_and_bad_split():
    with pytest.raises(ValueError, match="use_muon=False"):
        Muon([nn.Parameter(torch.zeros(3))])
    with pytest.raises(ValueError, match="split"):
        Muon([{"params": [nn.Parameter(torch.zeros(10, 3))], "split": 3}])


def test_heads_score_and_top_level_fc_go_to_adamw():
    class Classifier(nn.Module):  # transformers' *ForSequenceClassification: `score`
        def __init__(self):
            super().__init__()
            self.body = nn.ModuleDict({"fc": nn.Linear(8, 8), "proj": nn.Linear(8, 8)})
            self.score = nn.Linear(8, 3, bias=False)

    class ResNetish(nn.Module):  # torchvision's ResNet: a top-level `fc`
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.fc = nn.Linear(8, 10)

    muon, adamw = muon_param_groups(Classifier())
    assert [n for n, _ in muon["params"]] == ["body.fc.weight", "body.proj.weight"]
    assert "score.weight" in [n for n, _ in adamw["params"]]  # a nested `fc` is hidden
    muon, adamw = muon_param_groups(ResNetish())
    assert [n for n, _ in muon["params"]] == ["conv.weight"]
    assert "fc.weight" in [n for n, _ in adamw["params"]]


def _one_step(opt, params, seed=0):
    g = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
    before = [p.detach().clone() for p in params]
    opt.step()
    return [p.detach() - b for p, b in zip(params, before, strict=True)]


@pytest.mark.parametrize("make", [
    lambda: nn.Linear(8, 16, bias=False),
    lambda: nn.ParameterDict({"experts": nn.Parameter(torch.zeros(4, 16, 8))}),
    lambda: nn.Conv2d(3, 8, 3, bias=False),
    lambda: nn.Conv3d(2, 4, (3, 1, 2), bias=False),
], ids=["2-D", "3-D", "conv2d", "conv3d"])
def test_bare_parameters_and_groups_give_identical_updates(make):
    # One layout rule: Muon(model.parameters()) and Muon(muon_param_groups(model)) agree.
    updates = []
    for build in (lambda m: m.parameters(), muon_param_groups):
        torch.manual_seed(0)
        model = make().double()
        if isinstance(model, nn.ParameterDict):
            model["experts"].data.normal_()
        opt = Muon(build(model), lr=0.1, msign="svd", msign_dtype=torch.float64)
        updates.append(_one_step(opt, list(model.parameters())))
    for a, b in zip(*updates, strict=True):
        assert torch.equal(a, b)


def test_a_3d_parameter_is_a_batch_and_conv1d_is_known_by_its_module():
    conv = nn.Conv1d(8, 16, 3, bias=False).double()
    w = conv.weight
    bare = Muon([w], msign="svd", msign_dtype=torch.float64)
    assert bare.param_groups[0]["layouts"] == [Layout.experts()]  # no module: a batch
    (grouped,) = muon_param_groups(conv)
    assert grouped["layouts"] == [Layout.conv(3)]
    updates = []
    for params in ([{"params": [w], "layout": infer_layout(w.shape, conv)}], [grouped]):
        w.data = torch.ones_like(w) * 0.1
        updates.append(_one_step(Muon(params, lr=0.1, msign="svd",
                                      msign_dtype=torch.float64), [w])[0])
    assert torch.equal(updates[0], updates[1])


@pytest.mark.parametrize("default,own", [
    ({"msign": "jordan"}, {"ns_coefficients": (2.0, -1.5, 0.5)}),
    ({"ns_coefficients": (2.0, -1.5, 0.5)}, {"msign": "jordan"}),
])
def test_a_groups_orthogonalizer_overrides_the_default(default, own):
    torch.manual_seed(0)
    starts = [torch.randn(6, 4, dtype=torch.float64) for _ in range(2)]
    grads = [torch.randn(6, 4, dtype=torch.float64) for _ in range(2)]
    kw = {"lr": 0.1, "msign_dtype": torch.float64}

    def step(opt, params, gs):
        for p, gr in zip(params, gs, strict=True):
            p.grad = gr.clone()
        opt.step()
        return [p.detach().clone() for p in params]

    a, b = (nn.Parameter(s.clone()) for s in starts)
    mixed = step(Muon([{"params": [a], **own}, {"params": [b]}], **default, **kw), [a, b],
                 grads)
    for start, gr, spec, got in ((starts[0], grads[0], own, mixed[0]),
                                 (starts[1], grads[1], default, mixed[1])):
        q = nn.Parameter(start.clone())
        assert torch.equal(step(Muon([q], **spec, **kw), [q], [gr])[0], got)
    with pytest.raises(ValueError, match="not both"):
        Muon([{"params": [a], "msign": "svd", "ns_coefficients": (2.0, -1.5, 0.5)}])


def test_every_rule_option_is_a_muon_keyword():
    import inspect

    from msign.optim import rules

    keywords = set(inspect.signature(Muon).parameters)
    assert set(rules.rule_options()) <= keywords
    assert {r.slot for r in rules.RULES} == {"momentum", "post", "decay"}


def test_a_state_dict_saved_before_the_rules_redesign_loads_and_continues():
    # tests/data/muon_state_before_rules.pt: written by the optimizer of commit f2c02dc (before
    # msign/optim/rules.py held NorMuon and cautious decay as rules): the model and optimizer
    # after 3 steps, and the model after 2 more steps of that code.
    from pathlib import Path

    saved = torch.load(Path(__file__).parent / "data" / "muon_state_before_rules.pt")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    model.load_state_dict(saved["model"])
    opt = Muon(muon_param_groups(model), lr=0.02, msign="jordan", msign_dtype=torch.float64,
               weight_decay=0.1, normuon_beta2=0.95, cautious_weight_decay=True)
    opt.load_state_dict(saved["opt"])
    for _ in range(2):
        opt.zero_grad()
        model(saved["x"]).square().mean().backward()
        opt.step()
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved["after_two_more"][k]), k
