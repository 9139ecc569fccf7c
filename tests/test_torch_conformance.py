"""PyTorch's generic optimizer tests, ported, run on msign's Muon (and on torch.optim.Muon).

Origin: the ``TestOptimRenewed`` tests of PyTorch's ``test/test_optim.py`` (BSD-3-Clause)
that run on CPU for an optimizer like Muon (no foreach/fused/capturable/complex/sparse
support).  They are re-implemented here from their descriptions, with torch's own Muon
inputs: ``optim_inputs_func_muon`` and ``optim_error_inputs_func_muon`` of
``torch.testing._internal.common_optimizers`` (shipped with torch).  Every test runs on
both optimizers, so a failure of the port shows on torch's own Muon too.

PyTorch's generic tests use 1-D biases; torch.optim.Muon (since 2.9) takes only 2-D
parameters, so biases here are (n, 1) matrices, as common_optimizers' own error inputs do.

Deliberate differences (msign's Muon, listed here and in docs/guides/muon.md):

- "only support 2D parameters": msign's Muon accepts >2-D parameters (conv weights are
  flattened, expert stacks batched: msign.optim.Layout), so that error input does not apply.
- "does not support complex parameters": torch raises RuntimeError at ``step()``; msign
  raises TypeError at construction, before any state exists, with the same words.
"""

import copy
import io
import pickle

import pytest
import torch
from torch.nn import Parameter
from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

import msign
from msign.optim import Muon

common = pytest.importorskip("torch.testing._internal.common_optimizers")

OPTIMS = {"msign": Muon, "torch": torch.optim.Muon}
NOT_APPLICABLE = {"only support 2D parameters"}


def inputs():
    return common.optim_inputs_func_muon(device="cpu")


@pytest.fixture(params=sorted(OPTIMS))
def optim_cls(request):
    return OPTIMS[request.param]


def weight_bias(contiguous=True, dtype=torch.float32):
    if contiguous:
        return (Parameter(torch.randn(10, 5, dtype=dtype)), Parameter(torch.randn(10, 1,
                                                                                  dtype=dtype)))
    return (Parameter(torch.randn(10, 5, 2, dtype=dtype)[..., 0]),
            Parameter(torch.randn(10, 1, 2, dtype=dtype)[..., 0]))


def loss_fn(w, b, x):
    return (w @ x + b).pow(2).sum()


SCHEDULERS = [[lambda opt: StepLR(opt, gamma=0.9, step_size=10)],
              [lambda opt: ReduceLROnPlateau(opt)]]


def test_inputs_carry_no_global_cliquey_kwargs():
    for oi in inputs():
        assert not any(f in oi.kwargs for f in ("foreach", "fused", "differentiable"))


def test_errors(optim_cls):
    for ei in common.optim_error_inputs_func_muon(device="cpu", dtype=torch.float32):
        oi = ei.optimizer_error_input
        if oi.desc in NOT_APPLICABLE:
            continue
        if optim_cls is Muon and oi.desc == "does not support complex parameters":
            with pytest.raises(TypeError, match=ei.error_regex):
                optim_cls(oi.params, **oi.kwargs)
            continue
        params = [Parameter(torch.randn(2, 2))] if oi.params is None else oi.params
        if ei.error_on == common.OptimizerErrorEnum.CONSTRUCTION_ERROR:
            if issubclass(ei.error_type, Warning):
                with pytest.warns(ei.error_type, match=ei.error_regex):
                    optim_cls(params, **oi.kwargs)
            else:
                with pytest.raises(ei.error_type, match=ei.error_regex):
                    optim_cls(params, **oi.kwargs)
        else:
            opt = optim_cls(params, **oi.kwargs)
            with pytest.raises(ei.error_type, match=ei.error_regex):
                opt.step()


def test_3d_parameters_are_a_deliberate_difference():
    p = Parameter(torch.rand(2, 3, 4))
    p.grad = torch.rand_like(p)
    Muon([p]).step()  # torch.optim.Muon refuses; msign flattens (conv) or batches (experts)
    assert torch.isfinite(p).all()


def _go_right_direction(optim_cls, kwargs, contiguous, schedulers, steps=20):
    w, b = weight_bias(contiguous)
    x = torch.randn(5, 1)
    opt = optim_cls([w, b], **kwargs)
    scheds = [s(opt) for s in schedulers]

    def closure():
        opt.zero_grad()
        loss = loss_fn(w, b, x)
        loss.backward()
        return loss

    initial = closure().item()
    for _ in range(steps):
        loss = closure()
        opt.step()
        for s in scheds:
            s.step(loss) if isinstance(s, ReduceLROnPlateau) else s.step()
    assert closure().item() < initial


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("with_lrsched", [True, False])
def test_forloop_goes_right_direction(optim_cls, contiguous, with_lrsched):
    for schedulers in SCHEDULERS if with_lrsched else [[]]:
        for oi in inputs():  # fresh inputs per scheduler: a Tensor lr is mutated
            _go_right_direction(optim_cls, oi.kwargs, contiguous, schedulers)


def test_param_group_with_lrscheduler_goes_right_direction(optim_cls):
    for schedulers in SCHEDULERS:
        w, b = weight_bias()
        x = torch.randn(5, 1)
        opt = optim_cls([{"params": [w]}, {"params": [b], "lr": 0.01}])
        scheds = [s(opt) for s in schedulers]

        def closure(opt=opt, w=w, b=b, x=x):
            opt.zero_grad()
            loss = loss_fn(w, b, x)
            loss.backward()
            return loss

        initial = closure().item()
        for _ in range(20):
            loss = opt.step(closure)
            for s in scheds:
                s.step(loss) if isinstance(s, ReduceLROnPlateau) else s.step()
        assert closure().item() < initial


def test_tensor_lr(optim_cls):
    for oi in inputs():
        w, b = weight_bias()
        wc, bc = (Parameter(t.detach().clone()) for t in (w, b))
        x = torch.randn(5, 1)
        kwargs = {k: v for k, v in oi.kwargs.items() if k != "lr"}
        opt_r = optim_cls([w, b], lr=1e-3, **kwargs)
        opt_t = optim_cls([wc, bc], lr=torch.tensor(1e-3), **kwargs)
        for _ in range(5):
            for opt, ww, bb in ((opt_r, w, b), (opt_t, wc, bc)):
                opt.zero_grad()
                loss_fn(ww, bb, x).backward()
                opt.step()
            # (as torch's test: equal to float32 tolerance; a Tensor lr is float32)
            torch.testing.assert_close(w, wc)
            torch.testing.assert_close(b, bc)


def test_param_groups_weight_decay(optim_cls):
    for oi in inputs():
        w, b = weight_bias()
        x = torch.randn(5, 1)
        opt = optim_cls([dict(params=[w], **oi.kwargs),
                         dict(params=[b], **{**oi.kwargs, "weight_decay": 0.0})])
        initial = loss_fn(w, b, x).item()
        for _ in range(20):
            opt.zero_grad()
            loss = loss_fn(w, b, x)
            loss.backward()
            opt.step()
        assert loss.item() < initial


def test_param_groups_lr(optim_cls):
    for oi in inputs():
        kwargs = dict(oi.kwargs)
        if "lr" not in kwargs or kwargs["lr"] == 0:
            kwargs["lr"] = 1e-3
        w, b = weight_bias()
        irrelevant = Parameter(torch.randn(2, 1))
        irrelevant_clone = irrelevant.detach().clone()
        x = torch.randn(5, 1)
        opt = optim_cls([dict(params=[w, b], **kwargs), dict(params=[irrelevant])], lr=1e-28)
        initial = loss_fn(w, b, x).item()
        for _ in range(20):
            opt.zero_grad()
            loss = loss_fn(w, b, x)
            loss.backward()
            irrelevant.grad = torch.rand_like(irrelevant)
            opt.step()
        assert loss.item() < initial
        assert torch.equal(irrelevant.detach(), irrelevant_clone)


def test_step_is_noop_when_params_have_no_grad(optim_cls):
    params = [torch.randn(2, 3, requires_grad=False) for _ in range(2)]
    old = [p.clone() for p in params]
    for oi in inputs():
        optim_cls(params, **oi.kwargs).step(lambda: torch.tensor([1.0]))
    assert all(torch.equal(a, b) for a, b in zip(params, old, strict=True))


def test_step_is_noop_for_zero_grads(optim_cls):
    param = torch.randn(5, 1, requires_grad=True)
    old = param.detach().clone()
    for oi in inputs():
        opt = optim_cls([param], **oi.kwargs)
        if opt.param_groups[0]["weight_decay"] != 0:
            continue  # decay moves parameters whatever the gradient (torch's default is 0.1)
        param.grad = torch.zeros_like(param)
        opt.step(lambda: torch.tensor([1.0]))
        assert torch.equal(param.detach(), old)


def test_optimizer_can_be_printed(optim_cls):
    params = [Parameter(torch.randn(2, 3)) for _ in range(2)]
    for oi in inputs():
        assert optim_cls.__name__ in repr(optim_cls(params, **oi.kwargs))


def named(params, is_named):
    return [(f"name{i}", p) for i, p in enumerate(params)] if is_named else params


def without_names(sd):
    sd = copy.deepcopy(sd)
    for g in sd["param_groups"]:
        g.pop("param_names", None)
    return sd


@pytest.mark.parametrize("named0", [True, False])
@pytest.mark.parametrize("named1", [True, False])
def test_state_dict_deterministic(optim_cls, named0, named1):
    for oi in inputs():
        w, b = Parameter(torch.randn(2, 3)), Parameter(torch.randn(2, 1))
        x = torch.randn(3, 1)
        opt = optim_cls(named([w, b], named0), **oi.kwargs)

        def fwd_bwd(o, ww, bb, x=x):
            o.zero_grad()
            loss_fn(ww, bb, x).backward()

        for _ in range(10):
            fwd_bwd(opt, w, b)
            opt.step()
        with torch.no_grad():
            wc, bc = Parameter(w.clone()), Parameter(b.clone())
        opt_c = optim_cls(named([wc, bc], named1), **oi.kwargs)
        opt_c.load_state_dict(copy.deepcopy(opt.state_dict()))
        for _ in range(10):
            fwd_bwd(opt, w, b)
            fwd_bwd(opt_c, wc, bc)
            opt.step()
            opt_c.step()
            assert torch.equal(w, wc) and torch.equal(b, bc)
        assert _equal(without_names(opt.state_dict()), without_names(opt_c.state_dict()))
        opt_c.param_groups.extend(opt_c.param_groups)
        assert _equal(without_names(opt.state_dict())["param_groups"][-1],
                      without_names(opt_c.state_dict())["param_groups"][-1])


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _two_layer():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False),
                               torch.nn.Linear(3, 2, bias=False))


def test_can_load_older_state_dict(optim_cls):
    for oi in inputs():
        model = _two_layer()
        x = torch.rand(5, 4)
        opt = optim_cls(model.parameters(), **oi.kwargs)
        for _ in range(3):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
        old = copy.deepcopy(opt.state_dict())  # Muon has no not_og_supported flags to drop
        opt.load_state_dict(old)
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()


@pytest.mark.parametrize("named0", [True, False])
@pytest.mark.parametrize("named1", [True, False])
def test_can_load_from_to_named_state_dict(optim_cls, named0, named1):
    for oi in inputs():
        model = _two_layer()
        x = torch.rand(5, 4)
        opt = optim_cls(model.named_parameters() if named0 else model.parameters(),
                        **oi.kwargs)
        for _ in range(3):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
        old = copy.deepcopy(opt.state_dict())
        opt2 = optim_cls(model.named_parameters() if named1 else model.parameters(),
                         **oi.kwargs)
        opt2.load_state_dict(old)
        opt2.zero_grad()
        model(x).sum().backward()
        opt2.step()
        if named0 or named1:
            assert opt2.state_dict()["param_groups"][0]["param_names"] == ["0.weight",
                                                                          "1.weight"]


@pytest.mark.parametrize("is_named", [True, False])
def test_save_load_equality_with_weights_only(optim_cls, is_named):
    for oi in inputs():
        w, b = Parameter(torch.randn(2, 3)), Parameter(torch.randn(2, 1))
        x = torch.randn(3, 1)
        opt = optim_cls(named([w, b], is_named), **oi.kwargs)

        def closure(opt=opt, w=w, b=b, x=x):
            opt.zero_grad()
            loss = loss_fn(w, b, x)
            loss.backward()
            return loss

        for _ in range(3):
            opt.step(closure)
        sd = opt.state_dict()
        f = io.BytesIO()
        torch.save(sd, f)
        f.seek(0)
        assert _equal(torch.load(f), sd)
        f.seek(0)
        assert _equal(torch.load(f, weights_only=True), sd)


def test_load_nontensor_step(optim_cls):
    params = [Parameter(torch.randn(2, 3)) for _ in range(2)]
    for p in params:
        p.grad = torch.rand_like(p)
    for oi in inputs():
        opt = optim_cls(params, **oi.kwargs)
        for _ in range(3):
            opt.step()
        sd = copy.deepcopy(opt.state_dict())
        for s in sd["state"].values():
            if torch.is_tensor(s.get("step")):
                s["step"] = s["step"].item()
        opt.load_state_dict(sd)
        opt.step()


def _sd_pre_hook(opt):
    opt.state["test"] = 1


def _sd_post_hook(opt, sd):
    if "test" in sd["state"]:
        sd["state"].pop("test")
        sd["ran_state_dict_pre_hook"] = True
    else:
        sd["ran_state_dict_pre_hook"] = False
    return sd


def _one_param(optim_cls, oi):
    return optim_cls([torch.rand(2, 3, requires_grad=True)], **oi.kwargs)


def test_state_dict_hooks(optim_cls):
    for oi in inputs():
        opt = _one_param(optim_cls, oi)
        opt.register_state_dict_pre_hook(_sd_pre_hook)
        assert opt.state_dict()["state"]["test"] == 1
        opt = _one_param(optim_cls, oi)
        opt.register_state_dict_post_hook(_sd_post_hook)
        assert opt.state_dict()["ran_state_dict_pre_hook"] is False
        opt = _one_param(optim_cls, oi)
        opt.register_state_dict_pre_hook(_sd_pre_hook)
        opt.register_state_dict_post_hook(_sd_post_hook)
        sd = opt.state_dict()
        assert "test" not in sd["state"] and sd["ran_state_dict_pre_hook"] is True


def _load_pre1(opt, sd):
    sd["param_groups"][0]["lr"] = 0.002


def _load_pre2(opt, sd):
    sd = copy.deepcopy(sd)
    sd["param_groups"][0]["lr"] = 0.003
    return sd


def _load_post(opt):
    opt.state["ran_load_state_dict_pre_hook2"] = opt.param_groups[0]["lr"] == 0.003
    opt.state["ran_load_state_dict_post_hook"] = True


def test_load_state_dict_hooks(optim_cls):
    for oi in inputs():
        opt = _one_param(optim_cls, oi)
        sd = opt.state_dict()
        opt.register_load_state_dict_pre_hook(_load_pre1)
        opt.load_state_dict(sd)
        assert opt.param_groups[0]["lr"] == 0.002
        opt.register_load_state_dict_pre_hook(_load_pre2, prepend=True)
        opt.load_state_dict(sd)
        assert opt.param_groups[0]["lr"] == 0.002  # prepended: the other hook overrides
        opt = _one_param(optim_cls, oi)
        opt.register_load_state_dict_post_hook(_load_post)
        opt.load_state_dict(opt.state_dict())
        assert not opt.state["ran_load_state_dict_pre_hook2"]
        assert opt.state["ran_load_state_dict_post_hook"]
        opt = _one_param(optim_cls, oi)
        opt.register_load_state_dict_pre_hook(_load_pre2)
        opt.register_load_state_dict_post_hook(_load_post)
        opt.load_state_dict(opt.state_dict())
        assert opt.state["ran_load_state_dict_pre_hook2"]
        assert opt.state["ran_load_state_dict_post_hook"]


def test_step_hooks(optim_cls):
    params = [torch.tensor([[1.0, 1.0]])]
    for oi in inputs():
        opt = optim_cls(params, **oi.kwargs)
        data = [2]

        def add(n, data=data):
            return lambda o, a, k: data.append(data.pop() + n)

        handle = opt.register_step_post_hook(add(2))
        opt.step()
        opt.step()
        assert data == [6]
        handle.remove()
        opt.step()
        assert data == [6]
        handle = opt.register_step_pre_hook(add(3))
        opt.step()
        assert data == [9]
        handle.remove()


def test_step_all_hooks(optim_cls):
    params = [torch.tensor([[1.0, 1.0]])]
    for oi in inputs():
        opt = optim_cls(params, **oi.kwargs)
        opt2 = torch.optim.SGD(params)
        data = []

        def note(v, data=data):
            return lambda *a: data.append(v)

        handles = [register_optimizer_step_pre_hook(note(0)),
                   register_optimizer_step_post_hook(note(5))]
        for o in (opt, opt2):
            handles += [o.register_step_pre_hook(note(1)), o.register_step_post_hook(note(2))]
        try:
            opt.step()
            opt2.step()
            opt.step()
            assert data == [0, 1, 2, 5] * 3
        finally:
            for h in handles:
                h.remove()
        opt.step()
        opt2.step()
        assert data == [0, 1, 2, 5] * 3


def test_deepcopy_copies_all_public_attrs(optim_cls):
    params = [Parameter(torch.randn(2, 3)) for _ in range(2)]
    for p in params:
        p.grad = torch.rand_like(p)

    def public(obj):
        return {k for k in obj.__dict__ if not k.startswith("_")}

    for oi in inputs():
        opt = optim_cls(params, **oi.kwargs)
        for _ in range(3):
            opt.step()
        assert public(opt) == public(copy.deepcopy(opt))


def test_non_empty_state(optim_cls):
    model = torch.nn.Linear(5, 5, bias=False)
    x = torch.rand(2, 5)
    for oi in inputs():
        opt = optim_cls(model.parameters(), **oi.kwargs)
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        assert all(len(s) > 0 for s in opt.state.values())


# -- beyond the port: what a drop-in replacement owes ----------------------------------------

@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_survives_deepcopy_and_pickle_and_steps_identically(copier):
    torch.manual_seed(0)
    w = Parameter(torch.randn(6, 4))
    opt = Muon([w], lr=0.05, nonfinite="skip", msign="jordan")
    w.grad = torch.randn_like(w)
    opt.step()
    clone = copy.deepcopy(opt) if copier == "deepcopy" else pickle.loads(pickle.dumps(opt))
    w2 = clone.param_groups[0]["params"][0]
    assert clone.nonfinite == "skip" and clone.skipped_steps == 0
    g = torch.randn_like(w)
    w.grad, w2.grad = g.clone(), g.clone()
    opt.step()
    clone.step()
    assert torch.equal(w, w2)
    f = io.BytesIO()
    torch.save(opt, f)
    f.seek(0)
    loaded = torch.load(f, weights_only=False)
    p = loaded.param_groups[0]["params"][0]
    p.grad = g.clone()
    w.grad = g.clone()
    opt.step()
    loaded.step()
    assert torch.equal(w, p)


def test_zero_size_parameters_are_skipped():
    ps = [Parameter(torch.zeros(s)) for s in ((0, 5), (5, 0), (0, 0))] + [
        Parameter(torch.randn(3, 4))]
    ref = Parameter(ps[3].detach().clone())
    for p in ps + [ref]:
        p.grad = torch.ones_like(p)
    ours = Muon(ps, lr=0.1, weight_decay=0.1)
    ours.step()
    Muon([ref], lr=0.1, weight_decay=0.1).step()
    assert all(p.numel() == 0 for p in ps[:3])
    assert torch.equal(ps[3], ref)  # the empty ones change nothing for the others
    assert all("momentum_buffer" in ours.state[p] for p in ps)
    # torch.optim.Muon divides by the column count in its lr adjustment: (5, 0) raises
    p = Parameter(torch.zeros(5, 0))
    p.grad = torch.zeros(5, 0)
    with pytest.raises(ZeroDivisionError):
        torch.optim.Muon([p]).step()


@pytest.mark.parametrize("kwargs", [
    {}, {"nesterov": False}, {"adjust_lr_fn": "match_rms_adamw"}, {"momentum": 0.0},
    {"ns_steps": 3}, {"ns_coefficients": (3.4, -4.7, 2.0), "weight_decay": 0.0},
    {"lr": torch.tensor(0.01)},
])
def test_steps_equal_torch_bit_for_bit_in_bf16(kwargs):
    """With torch's keywords given explicitly, msign's Muon takes torch's steps exactly."""
    full = {**{k: v for k, v in common_defaults().items()}, **kwargs}
    g = torch.Generator().manual_seed(3)
    shapes = [(32, 16), (16, 48), (24, 24)]
    ours = [Parameter(torch.randn(s, generator=g)) for s in shapes]
    ref = [Parameter(p.detach().clone()) for p in ours]
    o1 = Muon(ours, **full, msign_gemm="native")
    o2 = torch.optim.Muon(ref, **full)
    for _ in range(8):
        for a, b in zip(ours, ref, strict=True):
            gr = torch.randn(a.shape, generator=g)
            a.grad, b.grad = gr.clone(), gr.clone()
        o1.step()
        o2.step()
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)
        assert torch.equal(o1.state[a]["momentum_buffer"], o2.state[b]["momentum_buffer"])


def common_defaults():
    from msign.optim import TORCH_MUON_DEFAULTS

    return dict(TORCH_MUON_DEFAULTS)


def test_per_group_ns_settings_equal_torch():
    g = torch.Generator().manual_seed(4)
    a1, a2 = (Parameter(torch.randn(20, 12, generator=g)) for _ in range(2))
    b1, b2 = (Parameter(p.detach().clone()) for p in (a1, a2))
    groups = [{"params": [a1], "ns_steps": 2},
              {"params": [a2], "ns_coefficients": (2.0, -1.5, 0.5), "lr": 0.05}]
    o1 = Muon(groups, **common_defaults(), msign_gemm="native")
    o2 = torch.optim.Muon([{"params": [b1], "ns_steps": 2},
                           {"params": [b2], "ns_coefficients": (2.0, -1.5, 0.5), "lr": 0.05}],
                          **common_defaults())
    for _ in range(4):
        for a, b in ((a1, b1), (a2, b2)):
            gr = torch.randn(a.shape, generator=g)
            a.grad, b.grad = gr.clone(), gr.clone()
        o1.step()
        o2.step()
    assert torch.equal(a1, b1) and torch.equal(a2, b2)


@pytest.mark.parametrize("direction", ["torch->msign", "msign->torch"])
def test_state_dicts_load_across_and_continue_exactly(direction):
    g = torch.Generator().manual_seed(5)
    shapes = [(12, 8), (8, 20)]
    start = [torch.randn(s, generator=g) for s in shapes]
    grads = [[torch.randn(s, generator=g) for s in shapes] for _ in range(6)]
    first, second = (torch.optim.Muon, Muon) if direction == "torch->msign" else (
        Muon, torch.optim.Muon)

    def make(cls, ps):
        kw = {"msign_gemm": "native"} if cls is Muon else {}
        return cls(ps, **common_defaults(), **kw)

    # uninterrupted torch run
    ref = [Parameter(t.clone()) for t in start]
    o = torch.optim.Muon(ref, **common_defaults())
    for gs in grads:
        for p, gr in zip(ref, gs, strict=True):
            p.grad = gr.clone()
        o.step()
    # three steps with one class, state dict into the other, three more
    ps = [Parameter(t.clone()) for t in start]
    a = make(first, ps)
    for gs in grads[:3]:
        for p, gr in zip(ps, gs, strict=True):
            p.grad = gr.clone()
        a.step()
    b = make(second, ps)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for gs in grads[3:]:
        for p, gr in zip(ps, gs, strict=True):
            p.grad = gr.clone()
        b.step()
    assert all(torch.equal(p, r) for p, r in zip(ps, ref, strict=True))


def test_argument_errors_name_the_argument():
    p = [Parameter(torch.randn(3, 3))]
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        Muon(p[0])
    with pytest.raises(TypeError, match="'adjust_lr' was removed; use adjust_lr_fn"):
        Muon(p, adjust_lr=None)
    with pytest.raises(ValueError, match="not both"):
        Muon(p, msign="jordan", ns_coefficients=(2.0, -1.5, 0.5))
    with pytest.raises(ValueError, match="momentum"):
        Muon([{"params": p, "momentum": 1.5}])
    with pytest.raises(ValueError, match="split"):
        Muon([{"params": p, "split": 0}])
    with pytest.raises(ValueError, match="steps"):
        Muon(p, ns_steps=0)
    with pytest.raises(TypeError, match="'msign_steps' was removed; use ns_steps"):
        Muon(p, ns_steps=3, msign_steps=4)
    with pytest.raises(TypeError, match="'msign_steps' was removed; use ns_steps"):
        Muon([{"params": p, "msign_steps": 4}])
    with pytest.raises(TypeError, match="unexpected keyword"):
        Muon(p, nesterow=True)
    # torch's adjust_lr_fn=None means "original" here too
    a = Muon(p, adjust_lr_fn=None)
    assert a.param_groups[0]["adjust_lr_fn"] is None


def test_registry_jordan_is_torchs_default_list():
    # The registry is the one place of Jordan's coefficients; torch.optim.Muon's own default
    # is the outside oracle that pins it.
    import inspect

    from msign.optim import TORCH_MUON_DEFAULTS

    torch_default = inspect.signature(torch.optim.Muon).parameters["ns_coefficients"].default
    assert tuple(TORCH_MUON_DEFAULTS["ns_coefficients"]) == tuple(torch_default)
    assert msign.get_schedule("jordan").coeffs == (tuple(torch_default),)
