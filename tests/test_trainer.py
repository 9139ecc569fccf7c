"""msign.optim.for_trainer with a real transformers Trainer on CPU: training, checkpoints,
resume.  A tiny GPT-2 from a config (random init), on a sequence it can learn."""

import pytest
import torch

from msign.optim import Muon, for_trainer
from msign.optim.trainer import WarmupCosine

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it


class Counting(torch.utils.data.Dataset):
    """Token i + 1 follows token i (mod the vocabulary): a pattern a tiny model learns fast."""

    def __init__(self, n: int = 64, length: int = 16, vocab: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        starts = torch.randint(0, vocab, (n, 1), generator=g)
        self.ids = (starts + torch.arange(length)) % vocab

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def make(out, steps):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=32, n_positions=16, n_embd=32, n_layer=2,
                                  n_head=2, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    opt, sched = for_trainer(model, num_training_steps=steps, warmup_steps=2, lr=0.02,
                             adamw_lr=3e-3, msign="jordan")
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=8, save_steps=15,
        logging_steps=1, report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
        data_seed=0, dataloader_num_workers=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Counting(),
                                   optimizers=(opt, sched))
    return model, trainer


def test_trainer_trains_saves_and_resumes(tmp_path):
    model, trainer = make(tmp_path / "full", 30)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 30 and losses[-1] < 0.65 * losses[0]
    muon = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it
    assert isinstance(muon, Muon) and muon.param_groups[0]["use_muon"]
    assert (tmp_path / "full" / "checkpoint-15" / "optimizer.pt").exists()
    # The same run, restarted from its step-15 checkpoint by the Trainer's own mechanism.
    resumed, trainer2 = make(tmp_path / "full", 30)
    trainer2.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-15"))
    assert trainer2.state.global_step == 30
    for (name, a), b in zip(model.named_parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_warmup_cosine_and_its_errors():
    f = WarmupCosine(total=10, warmup=2, floor=0.1)
    assert [f(0), f(1), f(2)] == [0.5, 1.0, 1.0]
    assert f(10) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="num_training_steps"):
        WarmupCosine(total=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(total=10, warmup=10)
