"""The MoE language model, pretrained and then fine-tuned (SFT) with AdamW and Muon."""

from __future__ import annotations

PRETRAIN = {"adamw": "AdamW", "muon": "Muon (Jordan)", "muon-router": "Muon, router on Muon"}


def _ci(row: dict) -> str:
    m, lo, hi = row["val_loss_mean_ci95"]
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def moe_numbers(summary: dict) -> dict[str, str]:
    """Both stages' tables (loss with its 95% interval, the last aux loss, the mean and the
    lowest load entropy) and the setup."""
    pre = [f"{PRETRAIN[k]} & {r['lr']:g} & {_ci(r)} & {r['final_aux_loss']:.3f} & "
           f"{r['final_load_entropy']:.3f} ({r['min_load_entropy']:.3f})\\\\"
           for k, r in summary["pretrain"].items()]
    sft = []
    for k, r in summary["sft"].items():
        src, opt = k.split("->")
        sft.append(f"{PRETRAIN[src]} $\\rightarrow$ {PRETRAIN[opt]} & {r['lr']:g} & {_ci(r)} & "
                   f"{r['final_load_entropy']:.3f} ({r['min_load_entropy']:.3f})\\\\")
    m = summary["model"]
    return {"MoEPretrainRows": "\n".join(pre), "MoESftRows": "\n".join(sft),
            "MoEExperts": str(m["experts"]), "MoETopK": str(m["top_k"]),
            "MoEAuxCoef": f"{m['aux_coef']:g}", "MoELayers": str(m["layers"]),
            "MoEWidth": str(m["d_model"]), "MoEPreSteps": str(summary["pretrain_steps"]),
            "MoESftSteps": str(summary["sft_steps"]),
            "MoESeeds": str(len(summary["select_seeds"]) + len(summary["more_seeds"])),
            "MoEMinutes": f"{summary['runs_wall_s_sum'] / 60:.0f}",
            "MoEJobs": str(summary["jobs"])}
