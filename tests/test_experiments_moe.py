"""The MoE language model and the SFT data: routing, the load-balancing loss, the pairs and
their mask, and the errors a user meets."""

import json

import numpy as np
import pytest
import torch

from experiments.lm import sft
from experiments.lm.model import GPT, GPTConfig
from msign.optim import Layout, Muon, muon_param_groups

PLAY = """THE TRAGEDY OF NOBODY

Act I. Scene I.

Ber.
Who's there?

Fran.
Nay, answer me: stand, and unfold yourself.
[Enter Horatio.]

Long live the king!

Hor.
Friends to this ground.
"""


def test_speeches_and_pairs_from_a_play():
    sp = sftspeeches = sft.speeches(PLAY)
    assert sftspeeches == [("Ber.", "Who's there?"),
                           ("Fran.", "Nay, answer me: stand, and unfold yourself. "
                                     "Long live the king!"),
                           ("Hor.", "Friends to this ground.")]
    pairs = sft.pairs(PLAY)
    assert pairs[0] == {"prompt": "Who's there?\nFran.", "response": sp[1][1]}
    assert pairs[1]["prompt"].endswith("king!\nHor.") and len(pairs) == 2


def test_the_mask_covers_the_response_and_end_only():
    ids, mask = sft.encode("ab\nX.", "cd", block=32)
    assert ids.tolist() == [sft.USER, *b"ab\nX.", sft.ASSISTANT, *b"cd", sft.END]
    # targets are ids[1:]: the loss sees exactly "c", "d", <end>
    assert ids[1:][mask].tolist() == [*b"cd", sft.END]
    x, y, m = sft.batch([(ids, mask)], 2, 32, np.random.default_rng(0))
    assert y[0][m[0]].tolist() == [*b"cd", sft.END] and not m[0, len(ids) - 1:].any()


def test_bad_pair_files_are_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="empty"):
        sft.load(tmp_path / "empty.jsonl", 64)
    (tmp_path / "long.jsonl").write_text(json.dumps({"prompt": "x" * 70, "response": "y"}))
    with pytest.raises(ValueError, match="long.jsonl:1: the prompt .* fills the whole context"):
        sft.load(tmp_path / "long.jsonl", 64)


def test_top_k_above_experts_is_refused():
    with pytest.raises(ValueError, match="top_k must lie in"):
        GPTConfig(experts=2, top_k=3)


def tiny(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab=sft.VOCAB, block=16, layers=2, heads=2, d_model=16, experts=4,
                         top_k=2, **kw))


def test_moe_loss_is_lm_plus_the_switch_aux_loss():
    model = tiny(aux_coef=0.1)
    x = torch.randint(0, 256, (3, 16))
    loss = model(x, x)
    moe = model.blocks[0].moe
    # aux = E sum_e f_e P_e: 1 when balanced, up to E when collapsed
    assert moe.load.sum().item() == pytest.approx(1.0)
    assert 0.99 < float(moe.aux) < 4.0
    aux = torch.stack([b.moe.aux for b in model.blocks]).mean()
    assert float(loss) == pytest.approx(float(model.last_lm_loss + 0.1 * aux), rel=1e-6)


def test_moe_routes_by_top_k_and_keeps_the_dense_path():
    model = tiny()
    moe = model.blocks[0].moe
    x = torch.randn(5, 16)
    out = moe(x)
    probs = torch.softmax(moe.gate(x), -1)
    top_p, top_i = probs.topk(2, -1)
    top_p = top_p / top_p.sum(-1, keepdim=True)
    ref = sum(top_p[:, j, None] * torch.stack([
        torch.nn.functional.gelu(x[t] @ moe.w_in[top_i[t, j]].T) @ moe.w_out[top_i[t, j]].T
        for t in range(5)]) for j in range(2))
    assert torch.allclose(out, ref, atol=1e-6)


def test_experts_go_to_muon_per_expert_and_the_router_to_adamw():
    model = tiny(shared_expert=True)
    muon, adamw = muon_param_groups(model)
    names = dict(zip([n for n, _ in muon["params"]], muon["layouts"], strict=True))
    assert names["blocks.0.moe.w_in"] == Layout.experts()
    assert "blocks.0.moe.gate.weight" in [n for n, _ in adamw["params"]]
    moved = muon_param_groups(model, muon=["*.moe.gate.weight"])[0]
    assert "blocks.0.moe.gate.weight" in [n for n, _ in moved["params"]]
    opt = Muon(muon_param_groups(model), lr=0.02, msign="jordan")
    x = torch.randint(0, 256, (4, 16))
    first = float(model(x, x))
    for _ in range(5):
        opt.zero_grad()
        model(x, x).backward()
        opt.step()
    assert float(model(x, x)) < first


def tiny_plays(root):
    from experiments.lm import data

    texts = root / "shakespeare" / "texts"
    texts.mkdir(parents=True)
    rng = np.random.default_rng(0)
    words = ["thou", "art", "the", "king", "of", "love", "and", "night", "O", "my", "lord"]
    for work in ["lear", "macbeth", "tempest", "twelfth_night", "much_ado_about_nothing"]:
        paras = [f"{rng.choice(['Lear.', 'Kent.', 'Fool.'])}\n" + " ".join(rng.choice(words, 9))
                 + "." for _ in range(120)]
        (texts / f"{work}_gut.txt").write_text("\n\n".join(paras))
    data.write_manifest(texts, root / "shakespeare" / "manifest.json")
    return root


def test_moe_study_smoke_end_to_end(tmp_path, monkeypatch):
    from experiments.lm import moe

    monkeypatch.setenv("MSIGN_CACHE", str(tiny_plays(tmp_path / "cache")))
    args = ["--preset", "smoke", "--jobs", "1", "--runs", str(tmp_path / "runs"), "--out",
            str(tmp_path / "out")]
    s = moe.main(args)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["pretrain"]) == {"adamw", "muon", "muon-router"}
    assert set(summary["sft"]) == {"adamw->adamw", "adamw->muon", "muon->adamw", "muon->muon"}
    for stage in ("pretrain", "sft"):
        for row in summary[stage].values():
            assert len(row["val_loss"]) == 2 and 0 < row["final_load_entropy"] <= 1
            assert 0.5 < row["final_aux_loss"] < 4  # 1 when balanced, E = 4 when collapsed
    rec = summary["runs"][0]["log"][-1]
    assert {"lm_loss", "aux_loss", "load", "load_entropy"} <= set(rec)
    assert all(sum(layer) == pytest.approx(1.0, abs=1e-3) for layer in rec["load"])
    assert (tmp_path / "out" / "moe.png").stat().st_size > 1000
    assert moe.main(args)["best_lr"] == s["best_lr"]  # resumed: every run reused
