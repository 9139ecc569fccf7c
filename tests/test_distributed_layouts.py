"""Muon on HSDP, tensor parallel, TP x FSDP and expert parallel (gloo, CPU), and DCP
across layouts.  Each multi-rank run is compared with one process on the same data."""

import os

import pytest
import torch
from gloo import run
from test_distributed import FAMILY, batch, loss_of, rel, small_gpt, train

from experiments.lm.parallel import HEADS, shard, tiny_llama
from msign.optim import Muon, muon_param_groups

transformers = pytest.importorskip("transformers")

STEPS = 3


def tiny_mixtral(seed: int = 0):
    torch.manual_seed(seed)
    cfg = transformers.MixtralConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2,
                                     vocab_size=64, num_local_experts=4, num_experts_per_tok=2,
                                     max_position_embeddings=32)
    return transformers.MixtralForCausalLM(cfg)


MODELS = {"gpt": small_gpt, "llama": tiny_llama, "mixtral": tiny_mixtral}


def make_opt(model, **kw):
    layouts = HEADS if not hasattr(model, "blocks") else None
    return Muon(muon_param_groups(model, layouts=layouts), lr=0.02, msign="polar-express",
                msign_dtype=torch.float32, adamw_lr=1e-3, **kw)


def reference(name: str, steps: int = STEPS, **kw) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = MODELS[name]()
        opt = make_opt(model, **kw)
        train(model, opt, 0, steps)
    finally:
        torch.set_num_threads(threads)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def full(p):
    return p.full_tensor() if type(p).__name__ == "DTensor" else p.detach()


def replay(name: str, grads: list[dict], **kw) -> dict:
    """One process stepping the optimizer on recorded gradients."""
    model = MODELS[name]()
    opt = make_opt(model, **kw)
    for g in grads:
        for n, p in model.named_parameters():
            p.grad = g[n].clone()
        opt.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _worker(rank, world, name, layout, out, kw):
    model = MODELS[name]()
    shard(model, layout, world)
    opt = make_opt(model, **kw)
    grads = []
    for s in range(STEPS):
        x, y = batch(s)
        opt.zero_grad()
        loss_of(model, x, y).backward()
        grads.append({n: full(p.grad) for n, p in model.named_parameters()})
        opt.step()
    muon_bytes = sum(p.numel() * p.element_size() for g in opt.param_groups if g["use_muon"]
                     for p in g["params"])
    torch.save({"params": {n: full(p) for n, p in model.named_parameters()}, "grads": grads,
                "sent": opt.last_step_bytes_sent, "muon_bytes": muon_bytes,
                "placements": {n: str(tuple(p.placements)) for n, p in model.named_parameters()
                               if type(p).__name__ == "DTensor"}},
               os.path.join(out, f"rank{rank}.pt"))


@pytest.mark.parametrize("name,layout,world,kw", [
    ("gpt", "hsdp", 4, {}), ("llama", "tp", 2, {}), ("llama", "tp-fsdp", 4, {}),
    ("llama", "tp", 2, FAMILY)], ids=["hsdp-2x2-gpt", "tp-2-llama", "tp-x-fsdp-2x2-llama",
                                      "tp-2-llama-normuon-cautious"])
def test_layout_equals_single_process(tmp_path, name, layout, world, kw):
    ref = reference(name, **kw)
    run(_worker, world, name, layout, str(tmp_path), kw)
    res = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    # Given the same gradients, every rank ends where one process does.
    same = replay(name, res[0]["grads"], **kw)
    for r in res:
        assert max(rel(r["params"][n], same[n]) for n in same) <= 1e-6
    # End to end: FSDP and HSDP reduce identical gradients exactly; tensor parallel sums
    # its partial products in another order (gradients differ by ~1e-8 relative), which the
    # polar factor amplifies by up to 1 / sigma_min of the update.
    tol = 1e-6 if layout == "hsdp" else 1e-4
    assert max(rel(res[0]["params"][n], ref[n]) for n in ref) <= tol
    placements = set(res[0]["placements"].values())
    expect = {"hsdp": "Replicate()", "tp": "Shard(dim=1)", "tp-fsdp": "_StridedShard"}[layout]
    assert any(expect in p for p in placements)  # the layout really is what it says
    # Within a shard group of S ranks each sends about 2 (S - 1) / S^2 of the Muon bytes.
    s = 2 if layout in ("hsdp", "tp") else world
    for r in res:
        assert 0 < r["sent"] / r["muon_bytes"] <= 2.5 * (s - 1) / s**2


# -- expert parallel: each rank holds whole experts ------------------------------------------

def _expert_names(model):
    return [n for n, p in model.named_parameters() if ".experts." in n]


def _ep_worker(rank, world, out):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("ep",))
    model = tiny_mixtral()
    experts = _expert_names(model)  # a list: every rank runs the collectives in one order
    params = dict(model.named_parameters())
    # The experts' optimizer parameters are sharded along E (each rank its own experts);
    # the forward runs on the full weights, rebuilt from the shards after every step.
    shadow = {n: torch.nn.Parameter(distribute_tensor(params[n].detach().clone(), mesh,
                                                      [Shard(0)], src_data_rank=None))
              for n in experts}
    groups = muon_param_groups(model, layouts=HEADS)
    for g in groups:
        g["params"] = [(n, shadow.get(n, p)) for n, p in g["params"]]
    opt = Muon(groups, lr=0.02, msign="polar-express", msign_dtype=torch.float32, adamw_lr=1e-3)
    only = Muon([(n, shadow[n]) for n in experts], lr=0.02, msign="polar-express",
                msign_dtype=torch.float32)
    for s in range(STEPS):
        x, y = batch(s)
        model.zero_grad()
        loss_of(model, x, y).backward()
        for n in experts:
            shadow[n].grad = distribute_tensor(params[n].grad, mesh, [Shard(0)],
                                               src_data_rank=None)
        opt.step()
        with torch.no_grad():
            for n in experts:
                params[n].copy_(shadow[n].full_tensor())
    for n in experts:  # the experts alone: orthogonalized where they are, nothing sent
        shadow[n].grad = distribute_tensor(torch.randn(params[n].shape,
                                                       generator=torch.Generator().manual_seed(7)),
                                           mesh, [Shard(0)], src_data_rank=None)
    only.step()
    torch.save({"params": {n: p.detach().clone() for n, p in model.named_parameters()},
                "expert_bytes": only.last_step_bytes_sent},
               os.path.join(out, f"rank{rank}.pt"))


def test_expert_parallel_equals_single_process_and_sends_nothing(tmp_path):
    ref = reference("mixtral")
    run(_ep_worker, 2, str(tmp_path))
    for r in range(2):
        res = torch.load(tmp_path / f"rank{r}.pt")
        assert max(rel(res["params"][n], ref[n]) for n in ref) <= 1e-6
        assert res["expert_bytes"] == 0


# -- DCP: saved on HSDP 2 x 2, resumed on FSDP 4 and in one process ---------------------------

def _dcp_worker(rank, world, layout, mode, ckpt, out, name="gpt"):
    import torch.distributed.checkpoint as dcp
    from test_distributed import _dcp_restore, _dcp_state

    model = MODELS[name]()
    shard(model, layout, world)
    opt = make_opt(model, nonfinite="skip", **FAMILY)
    if mode == "save":
        train(model, opt, 0, 2)
        x, y = batch(99)  # a skipped step: remembered across the checkpoint
        opt.zero_grad()
        loss_of(model, x, y).backward()
        next(model.parameters()).grad.to_local().view(-1)[0] = float("inf")
        opt.step()
        dcp.save(_dcp_state(model, opt), checkpoint_id=ckpt)
        return
    sd = _dcp_state(model, opt)
    dcp.load(sd, checkpoint_id=ckpt)
    _dcp_restore(model, opt, sd)
    skipped = opt.skipped_steps
    train(model, opt, 2, 4)
    torch.save({"params": {n: full(p) for n, p in model.named_parameters()},
                "skipped": skipped}, os.path.join(out, f"{layout}{rank}.pt"))


@pytest.mark.parametrize("name,save,load", [("gpt", "hsdp", "fsdp"),
                                            ("llama", "tp-fsdp", "fsdp")],
                         ids=["hsdp-2x2-to-fsdp-4-to-one", "tp-x-fsdp-2x2-to-fsdp-4-to-one"])
def test_dcp_across_layouts(tmp_path, name, save, load):
    import torch.distributed.checkpoint as dcp
    from test_distributed import _dcp_restore, _dcp_state

    ref = reference(name, steps=4, nonfinite="skip", **FAMILY)
    ckpt = str(tmp_path / "ckpt")
    run(_dcp_worker, 4, save, "save", ckpt, str(tmp_path), name)
    run(_dcp_worker, 4, load, "load", ckpt, str(tmp_path), name)
    four = torch.load(tmp_path / f"{load}0.pt")
    assert four["skipped"] == 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = MODELS[name]()
        opt = make_opt(model, nonfinite="skip", **FAMILY)
        sd = _dcp_state(model, opt)
        dcp.load(sd, checkpoint_id=ckpt, no_dist=True)
        _dcp_restore(model, opt, sd)
        assert opt.skipped_steps == 1
        # NorMuon's row statistics came back too, on every Muon parameter
        assert all("normuon_v" in s for s in opt.state.values() if "momentum_buffer" in s)
        train(model, opt, 2, 4)
    finally:
        torch.set_num_threads(threads)
    tol = 1e-6 if name == "gpt" else 1e-4  # tensor parallel's summation order, as above
    for n, p in model.named_parameters():
        assert rel(p.detach(), ref[n]) <= tol
        assert rel(four["params"][n], ref[n]) <= tol


# -- what is still refused --------------------------------------------------------------------

def _refusal_worker(rank, world, out):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Partial, Shard, distribute_tensor

    mesh = init_device_mesh("cpu", (world,))
    w = torch.nn.Parameter(DTensor.from_local(torch.randn(4, 8, 6), mesh, [Partial()]))
    with pytest.raises(ValueError, match=r"parameter 'experts' .*Partial"):
        Muon([("experts", w)])
    # an expert stack sharded over its output axis (Shard(1)) is not refused: it goes through
    # the gather and each expert is orthogonalized whole, as in one process
    g = torch.Generator().manual_seed(5)
    full_w, full_g = torch.randn(4, 8, 6, generator=g), torch.randn(4, 8, 6, generator=g)
    dw = torch.nn.Parameter(distribute_tensor(full_w.clone(), mesh, [Shard(1)]))
    dw.grad = distribute_tensor(full_g.clone(), mesh, [Shard(1)])
    one = torch.nn.Parameter(full_w.clone())
    one.grad = full_g.clone()
    for p in (dw, one):
        Muon([("experts", p)], lr=0.1, msign="polar-express", msign_dtype=torch.float32).step()
    torch.save({"sharded": dw.full_tensor(), "one": one.detach()},
               os.path.join(out, f"ok{rank}"))


def test_unsupported_placement_is_refused_by_name(tmp_path):
    run(_refusal_worker, 2, str(tmp_path))
    for r in range(2):
        res = torch.load(tmp_path / f"ok{r}")
        assert rel(res["sharded"], res["one"]) <= 1e-6
