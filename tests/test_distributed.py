"""Muon under torch.distributed on CPU (gloo): replicated ranks, FSDP2, DCP checkpoints.

Every multi-rank result is compared with one process running the same data.
"""

import os

import pytest
import torch
import torch.distributed as dist
from gloo import run
from torch import nn

import msign
from experiments.lm.model import GPT, GPTConfig
from msign.optim import Muon, muon_param_groups

STEPS = 3


def small_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(block=16, layers=2, heads=2, d_model=32, vocab=64))


def tiny_llama(seed: int = 0):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=64,
                                   max_position_embeddings=32)
    return transformers.LlamaForCausalLM(cfg)


MODELS = {"gpt": small_gpt, "llama": tiny_llama}


def batch(step: int):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randint(0, 64, (4, 17), generator=g)
    return x[:, :-1], x[:, 1:]


def loss_of(model, x, y):
    if isinstance(model, GPT):
        return model(x, y)
    return model(input_ids=x, labels=x).loss


def make_opt(model, dtype, **kw):
    return Muon(muon_param_groups(model), lr=0.02, msign="polar-express", msign_dtype=dtype,
                adamw_lr=1e-3, **kw)


def train(model, opt, start: int, stop: int) -> None:
    for s in range(start, stop):
        x, y = batch(s)
        opt.zero_grad()
        loss_of(model, x, y).backward()
        opt.step()


def fully_shard_model(model, world):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))
    layers = model.blocks if isinstance(model, GPT) else model.model.layers
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return mesh


def reference(name: str, dtype, steps: int = STEPS, **kw) -> dict:
    """One process, one thread (as each rank), the same data."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = MODELS[name]()
        opt = make_opt(model, dtype, **kw)
        train(model, opt, 0, steps)
    finally:
        torch.set_num_threads(threads)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


# -- FSDP2 ------------------------------------------------------------------------------------

FAMILY = {"normuon_beta2": 0.95, "cautious_weight_decay": True, "weight_decay": 0.1}


def _fsdp_worker(rank, world, name, dtype, out, kw):
    model = MODELS[name]()
    mesh = fully_shard_model(model, world)
    opt = make_opt(model, dtype, **kw)
    train(model, opt, 0, STEPS)
    full = {n: p.full_tensor() for n, p in model.named_parameters()}
    muon_bytes = sum(p.numel() * p.element_size() for g in opt.param_groups if g["use_muon"]
                     for p in g["params"])
    torch.save({"params": full, "sent": opt.last_step_bytes_sent, "muon_bytes": muon_bytes,
                "momentum_is_dtensor": all(
                    type(opt.state[p]["momentum_buffer"]).__name__ == "DTensor"
                    for g in opt.param_groups if g["use_muon"] for p in g["params"])},
               os.path.join(out, f"rank{rank}.pt"))
    if name == "gpt":
        # A placement Muon cannot gather is refused at construction, never mis-stepped.
        from torch.distributed.tensor import DTensor, Partial

        part = nn.Parameter(DTensor.from_local(torch.randn(8, 4), mesh, [Partial()]))
        with pytest.raises(ValueError, match=r"placements \(Partial"):
            Muon([("w", part)])


@pytest.mark.parametrize("name,world,dtype,kw", [
    ("gpt", 2, torch.float32, {}), ("gpt", 4, torch.float32, {}),
    ("llama", 2, torch.float32, {}), ("gpt", 2, torch.bfloat16, {}),
    ("gpt", 2, torch.float32, FAMILY)], ids=["gpt-2", "gpt-4", "llama-2", "gpt-2-bf16",
                                             "gpt-2-normuon-cautious"])
def test_fsdp2_equals_single_process(tmp_path, name, world, dtype, kw):
    ref = reference(name, dtype, **kw)
    run(_fsdp_worker, world, name, dtype, str(tmp_path), kw)
    res = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    for r in res[1:]:
        for n in ref:  # every rank holds the same full parameters
            assert torch.equal(r["params"][n], res[0]["params"][n])
    # fp32 msign: 1e-6 relative; bf16: identical inputs give identical bf16 arithmetic
    # here, the bound allows bf16 rounding of the update (lr 0.02 x 2^-8).
    tol = 1e-6 if dtype == torch.float32 else 1e-3
    assert max(rel(res[0]["params"][n], ref[n]) for n in ref) <= tol
    assert all(r["momentum_is_dtensor"] for r in res)
    # Each rank sends (W - 1)/W of its shards to owners and owners send back (W - 1)/W of
    # their results: about 2 (W - 1) / W^2 of the Muon parameters' bytes.
    ratios = [r["sent"] / r["muon_bytes"] for r in res]
    assert max(ratios) <= 2.0
    if not kw:  # (NorMuon adds its row statistics, O(rows), to the exchange)
        assert abs(sum(ratios) / world - 2 * (world - 1) / world**2) < 0.15


def _nan_worker(rank, world, out):
    model = small_gpt()
    fully_shard_model(model, world)
    opt = make_opt(model, torch.float32, nonfinite="skip")
    train(model, opt, 0, 1)
    before = {n: p.full_tensor() for n, p in model.named_parameters()}
    x, y = batch(7)
    opt.zero_grad()
    loss_of(model, x, y).backward()
    if rank == 1:  # a NaN in one rank's shard only
        next(model.parameters()).grad.to_local().view(-1)[0] = float("nan")
    opt.step()
    after = {n: p.full_tensor() for n, p in model.named_parameters()}
    torch.save({"same": all(torch.equal(before[n], after[n]) for n in before),
                "skipped": opt.skipped_steps}, os.path.join(out, f"rank{rank}.pt"))


def test_fsdp2_nan_on_one_rank_skips_everywhere(tmp_path):
    run(_nan_worker, 2, str(tmp_path))
    for r in range(2):
        res = torch.load(tmp_path / f"rank{r}.pt")
        assert res["same"] and res["skipped"] == 1


# -- DCP: save with 2 ranks, load with 1 and with 2 --------------------------------------------

def _dcp_state(model, opt):
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}


def _dcp_restore(model, opt, sd):
    from torch.distributed.checkpoint.state_dict import (
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    set_model_state_dict(model, sd["model"])
    set_optimizer_state_dict(model, opt, sd["optim"])


def _dcp_worker(rank, world, mode, ckpt, out):
    import torch.distributed.checkpoint as dcp

    model = small_gpt()
    fully_shard_model(model, world)
    opt = make_opt(model, torch.float32, nonfinite="skip", **FAMILY)
    if mode == "save":
        train(model, opt, 0, 2)
        x, y = batch(99)  # a skipped step: it must be remembered across the checkpoint
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
    full = {n: p.full_tensor() for n, p in model.named_parameters()}
    torch.save({"params": full, "skipped": skipped}, os.path.join(out, f"load{world}_{rank}.pt"))


def test_dcp_reshard_and_resume(tmp_path):
    import torch.distributed.checkpoint as dcp

    ref = reference("gpt", torch.float32, steps=4, nonfinite="skip", **FAMILY)
    ckpt = str(tmp_path / "ckpt")
    run(_dcp_worker, 2, "save", ckpt, str(tmp_path))
    run(_dcp_worker, 2, "load", ckpt, str(tmp_path))
    two = torch.load(tmp_path / "load2_0.pt")
    assert two["skipped"] == 1
    # one plain process (no FSDP, no process group) resumes the 2-rank checkpoint
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = small_gpt()
        opt = make_opt(model, torch.float32, nonfinite="skip", **FAMILY)
        sd = _dcp_state(model, opt)
        dcp.load(sd, checkpoint_id=ckpt, no_dist=True)
        _dcp_restore(model, opt, sd)
        assert opt.skipped_steps == 1
        train(model, opt, 2, 4)
    finally:
        torch.set_num_threads(threads)
    for n, p in model.named_parameters():
        assert rel(p.detach(), ref[n]) <= 1e-6
        assert rel(two["params"][n], ref[n]) <= 1e-6


# -- replicated ranks (DDP-style) -----------------------------------------------------------

def _shapes():
    return [(16, 8), (16, 8), (8, 24), (16, 8), (8, 24), (12, 12), (12, 12)]


def _replicated(rank, world, out):
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in _shapes()]
    calls = []

    def counting(M):
        calls.append(tuple(M.shape))
        return msign.msign(M, "polar-express")

    opt = Muon(params, lr=0.05, msign=counting)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
        opt.step()
    torch.save({"params": [p.detach() for p in params], "calls": calls,
                "sent": opt.last_step_bytes_sent},
               os.path.join(out, f"rank{rank}_of{world}.pt"))


def test_replicated_ranks_equal_single_process(tmp_path):
    assert not dist.is_initialized()
    _replicated(0, 1, str(tmp_path))
    run(_replicated, 2, str(tmp_path))
    single = torch.load(tmp_path / "rank0_of1.pt")
    r0, r1 = (torch.load(tmp_path / f"rank{r}_of2.pt") for r in range(2))
    for a, b, c in zip(single["params"], r0["params"], r1["params"], strict=True):
        assert torch.equal(b, c)  # every rank ends identical
        assert torch.allclose(a, b, rtol=0, atol=1e-12)  # and equal to one process
    n = len(_shapes()) * 3
    assert len(single["calls"]) == n
    assert len(r0["calls"]) + len(r1["calls"]) == n  # each matrix orthogonalized once
    assert abs(len(r0["calls"]) - len(r1["calls"])) <= 3  # dealt by cost, balanced
    assert r0["sent"] > 0 and single["sent"] == 0
