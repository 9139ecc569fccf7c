"""Section 6: the LM comparison, QK-clip, the AdamW stall, entropy, mismatch."""

from __future__ import annotations

from .format import _arm_label, _frac, of, span, tex


def qk_clip_sentence(sel: dict, summary: dict) -> str:
    """What QK-clip did in the sweep: the largest logits and how often the clip fired, at
    MuonClip's chosen rate and at the rates where it fired (run records' qk_max, qk_clips;
    the screen's runs and the selection's)."""
    best = next(t["best_lr"] for t in sel["table"] if t["arm"] == "muonclip-jordan")
    runs = list({(r["arm"], r["lr"], r["seed"]): r
                 for r in sel["runs"] + summary["runs"]}.values())
    clip = [r for r in runs if r["arm"] == "muonclip-jordan" and "qk_max" in r]
    muon = {(r["lr"], r["seed"]): r for r in runs if r["arm"] == "muon-jordan"}
    at_best = [r for r in clip if r["lr"] == best]
    peak = max(r["qk_max"] for r in at_best)
    if any(r["qk_clips"] for r in at_best):
        sent = (f"At MuonClip's chosen rate ({best:g}) the clip fired "
                f"{sum(r['qk_clips'] for r in at_best)} times (heads $\\times$ steps) over "
                f"{len(at_best)} runs.")
    else:
        same = all(r["val"] == muon[r["lr"], r["seed"]]["val"] for r in at_best
                   if (r["lr"], r["seed"]) in muon)
        sent = (f"At MuonClip's chosen rate ({best:g}) the largest attention logit of its "
                f"{len(at_best)} runs is ${peak:.0f} < \\tau$: the clip never fires, and "
                + ("the runs equal Muon's, validation curves bit for bit." if same else
                   "the runs differ from Muon's only by rounding."))
    for r in sorted((r for r in clip if r["qk_clips"] and r["lr"] != best),
                    key=lambda r: r["lr"]):
        m = muon.get((r["lr"], r["seed"]))
        if m is None or "qk_max" not in m:
            continue
        sent += (f" At {r['lr']:g} Muon's largest logit reaches ${m['qk_max']:.0f}$; MuonClip "
                 f"clips {r['qk_clips']} times (heads $\\times$ steps) and ends at "
                 f"${r['val'][-1][1]:.3f}$ against Muon's ${m['val'][-1][1]:.3f}$.")
    return sent


def _paired(d: dict) -> str:
    """A paired difference with its 95% interval, in math mode."""
    lo, hi = d["ci95"]
    return f"${d['mean']:+.4f}$ [${lo:+.4f}$, ${hi:+.4f}$]"


def lm_family_numbers(sel: dict, summary: dict, stall: dict, bench: dict) -> dict[str, str]:
    """Section 6: the comparison at rates chosen on seed means (experiments/lm/family.py part
    select, after part lm's seed-0 screen), the stalled AdamW seed (part stall) and the
    interleaved step-time benchmark (experiments/bench/lm_step.py)."""
    table = {t["arm"]: t for t in sel["table"]}
    adamw = table["adamw"]
    run = summary["runs"][0]
    steps = run["val"][-1][0]
    rows = []
    for t in sel["table"]:
        per_seed = ", ".join(f"{v:.3f}" for v in t["final_val_per_seed"])
        edge = "$^\\dagger$" if t["best_lr_at_grid_edge"] else ""
        moved = "" if t["best_lr"] == t["lr_seed0_choice"] else f" ({t['lr_seed0_choice']:g})"
        lo, hi = t["ci95"]
        # the step cost from the interleaved benchmark, not the sweep's shared-core clocks
        cost = bench["ratio_to_adamw"].get(t["arm"])
        rows.append(f"{_arm_label(t['arm'])} & {t['best_lr']:g}{edge}{moved} & "
                    f"{t['final_val_mean']:.4f} [{lo:.4f}, {hi:.4f}] & {per_seed} & "
                    f"{_frac(t.get('fraction_of_adamw_steps'))} & {_frac(cost)} \\\\")
    muon = [t for t in sel["table"] if t["optimizer"] == "muon"]
    vs = sel["vs_adamw"]
    below = [t for t in muon if vs[t["arm"]]["ci95"][1] < 0]
    fracs = [t["fraction_of_adamw_steps"] for t in muon if t.get("fraction_of_adamw_steps")]
    best = min(muon, key=lambda t: t["final_val_mean"])
    diffs = [vs[t["arm"]]["mean"] for t in muon]
    sent = (f"Paired by seed, {of(len(below), len(muon))} Muon arms end below AdamW with the "
            f"whole 95\\% interval of the difference below zero (differences "
            f"${min(diffs):+.3f}$ to ${max(diffs):+.3f}$); the best, "
            f"\\texttt{{{best['arm']}}}, ends at ${best['final_val_mean']:.3f}$. ")
    if fracs:
        sent += f"Those that reach AdamW's final loss do so in {span(fracs)} of its steps. "
    # MuonClip's runs are Muon's wherever the clip never fires: no difference to report
    others = {a: d for a, d in sel["vs_muon_jordan"].items() if any(d["per_seed"])}
    apart = [a for a, d in others.items() if d["ci95"][0] > 0 or d["ci95"][1] < 0]
    sent += ("Against Muon with Jordan's quintic, paired by seed: "
             + "; ".join(f"\\texttt{{{a}}} {_paired(d)}" for a, d in others.items()) + ". "
             + ("No interval excludes zero: on three seeds the Muon variants are not told "
                "apart, and nothing here says they are equivalent either."
                if not apart else
                "Only " + " and ".join(f"\\texttt{{{a}}}" for a in apart)
                + (" differs" if len(apart) == 1 else " differ")
                + " from it with the interval excluding zero."))
    edges = [t["arm"] for t in sel["table"] if t["best_lr_at_grid_edge"]]
    if edges:
        who = ("Every arm's chosen rate is" if len(edges) == len(sel["table"]) else
               "The chosen rate of " + ", ".join(_arm_label(a) for a in edges) + " is")
        sent += (f" {who} at an edge of its $\\sqrt2$ grid (marked $^\\dagger$); past it only "
                 "the seed-0 screen looked.")
    moved = [t for t in sel["table"] if t["best_lr"] != t["lr_seed0_choice"]]
    select = (f"Choosing on seed means moved the rate of {of(len(moved), len(sel['table']))} "
              "arms from the screen's choice"
              + (" (" + ", ".join(f"{_arm_label(t['arm'])} ${t['lr_seed0_choice']:g} \\to "
                                  f"{t['best_lr']:g}$" for t in moved) + ")" if moved else "")
              + ".")
    tuning = sorted(sel["adamw_tuning"], key=lambda t: (t["beta2"], t["warmup"]))
    tune = ("; ".join(f"$\\beta_2 = {t['beta2']:g}$, warm-up {t['warmup']}: "
                      f"${t['final_val_mean']:.4f}$ [${t['ci95'][0]:.4f}$, ${t['ci95'][1]:.4f}$]"
                      for t in tuning))
    nm, pe = table["normuon-polar-express"], table["muon-polar-express"]
    d = sel["vs_polar_express"]["normuon-polar-express"]
    apart_nm = d["ci95"][1] < 0 or d["ci95"][0] > 0
    verdict = ("ours is of the same sign, with the interval excluding zero" if apart_nm
               and d["mean"] < 0 else
               "ours has the same sign on every seed, but its 95\\% interval includes zero"
               if all(x < 0 for x in d["per_seed"]) else
               "ours does not resolve a difference")
    nm_sent = (f"At their chosen rates NorMuon ends at ${nm['final_val_mean']:.4f}$ against "
               f"${pe['final_val_mean']:.4f}$ for Muon with the same Polar Express "
               f"orthogonalizer, a paired difference of {_paired(d)}"
               + ("; every NorMuon seed ends below the same seed of Muon"
                  if all(x < 0 for x in d["per_seed"]) else "")
               + "; it reaches "
               f"AdamW's final loss in {_frac(nm.get('fraction_of_adamw_steps'))} of AdamW's "
               f"steps against {_frac(pe.get('fraction_of_adamw_steps'))}.")
    wall = {k: v for k, v in bench["ratio_to_adamw"].items()}
    old, new = (stall["runs"][k] for k in ("first sweep (no clip, no decay)",
                                           "this sweep (clip 1, decay 0.1)"))
    recorded = stall["runs"].get("first sweep, as recorded")
    if recorded and abs(recorded["final_val"] - old["final_val"]) < 1e-3:
        stall_sent = ("The rerun reproduces the recorded run's final loss "
                      f"(${recorded['final_val']:.3f}$). ")
    elif recorded:
        stall_sent = (f"The recorded run ended at ${recorded['final_val']:.3f}$; the training "
                      "code has changed since (warm-up, evaluation), so the rerun is not the "
                      "same run, but it is as slow. ")
    else:
        stall_sent = ""
    ol, nl = old["train_loss_by_100"], new["train_loss_by_100"]
    stall_sent += (f"With clipping the largest gradient norm is ${new['grad_norm_max']:.1f}$ "
                   f"(step {new['grad_norm_argmax']}), and clipping acts on "
                   f"{new['steps_clipped']} of the {steps} steps. Without it, the mean training "
                   f"loss over the first 100 steps is ${ol[0]:.2f}$ against ${nl[0]:.2f}$ and "
                   f"the gap stays (${ol[-1]:.2f}$ against ${nl[-1]:.2f}$ over the last 100): "
                   "an early gradient spike at this rate, not a plateau late in training.")
    return {
        "LMParams": f"{summary['n_params'] / 1e6:.2f}", "LMLayers": str(summary["model"]["layers"]),
        "LMWidth": str(summary["model"]["d_model"]), "LMBlock": str(summary["model"]["block"]),
        "LMSteps": str(steps), "LMTokens": f"{run['tokens_per_step'] * steps / 1e6:.1f}",
        "LMDevice": tex(summary["device"]), "LMJobs": str(summary["jobs"]),
        "LMWarmup": str(summary["warmup"]), "LMClip": f"{summary['grad_clip']:g}",
        "LMEvalEvery": str(run["val"][1][0] - run["val"][0][0]),
        "WdAdamW": f"{summary['adamw_weight_decay']:g}",
        "WdMuon": f"{summary['muon_weight_decay']:g}",
        "NorMuonBeta": f"{summary['normuon_beta2']:g}", "QKTau": f"{summary['qk_clip_tau']:g}",
        "LMValWorks": ", ".join(w.replace("_", " ") for w in summary["val_works"]),
        "LMAdamWLr": f"{adamw['best_lr']:g}", "LMAdamW": f"{adamw['final_val_mean']:.3f}",
        "LMAdamWCI": "[{:.3f}, {:.3f}]".format(*adamw["ci95"]),
        "LMAdamWBeta": f"{adamw['beta2']:g}", "LMAdamWWarmup": str(adamw["warmup"]),
        "LMAdamWTuning": tune, "LMSelectSentence": select, "NorMuonVerdict": verdict,
        "LMMuonAdamWLr": f"{sel['muon_adamw_lr']:g}",
        "LMRows": "\n".join(rows), "LMSummarySentence": sent, "NorMuonSentence": nm_sent,
        "QKClipSentence": qk_clip_sentence(sel, summary),
        "StepJordan": f"{wall['muon-jordan']:.2f}", "StepPE": f"{wall['muon-polar-express']:.2f}",
        "StepNorMuon": f"{wall['normuon-polar-express']:.2f}",
        "LMMuonPairedMax": f"{max(abs(x) for d in others.values() for x in d['ci95']):.3f}",
        "StepDevice": tex(bench["device"]),
        "StallOld": f"{old['final_val']:.3f}", "StallNew": f"{new['final_val']:.3f}",
        "StallOldGnMax": f"{old['grad_norm_max']:.1f}",
        "StallOldGnStep": str(old["grad_norm_argmax"]),
        "StallOldGnMedian": f"{old['grad_norm_median']:.2f}", "StallSentence": stall_sent,
    }


def entropy_numbers(res: dict) -> dict[str, str]:
    """Singular-value entropy (experiments/lm/family.py part entropy)."""
    frac = res["fraction_above_adamw"]
    last = max(res["steps"])
    by_group = {t["group"]: t["fraction_above_adamw"] for t in res["table"]
                if t["arm"] == "muon-jordan" and t["step"] == last}
    lo_group = min(by_group, key=by_group.get)
    verdict = ("confirming Moonlight's finding on this model" if min(frac.values()) > 0.9
               else "so Moonlight's $>90\\%$ holds here only for some arms" if max(frac.values())
               > 0.9 else "so Moonlight's $>90\\%$ is not reproduced on this model")
    steps = [str(s) for s in res["steps"]]
    return {"EntropySteps": ", ".join(steps[:-1]) + " and " + steps[-1],
            "EntropyJordan": f"{100 * frac['muon-jordan']:.0f}",
            "EntropyPE": f"{100 * frac['muon-polar-express']:.0f}",
            "EntropyNorMuon": f"{100 * frac['normuon-polar-express']:.0f}",
            "EntropySentence": _entropy_sentence(res, frac, verdict, lo_group,
                                                 by_group[lo_group], last)}


def _entropy_sentence(res: dict, frac: dict, verdict: str, lo_group: str, lo: float,
                      last: int) -> str:
    lo_all, hi_all = 100 * min(frac.values()), 100 * max(frac.values())
    span = f"{lo_all:.0f}\\%" if lo_all == hi_all else f"{lo_all:.0f}--{hi_all:.0f}\\%"
    adamw = [t["mean_entropy"] for t in res["table"] if t["arm"] == "adamw" and t["step"] == last]
    muon = [t["mean_entropy"] for t in res["table"]
            if t["arm"] != "adamw" and t["step"] == last]
    sent = f"Over all Muon arms the fraction is {span}, {verdict}"
    if lo == 1:
        sent += ", in every group and at every checkpoint"
    else:
        sent += (f". At step {last} the lowest group for Jordan's quintic is {lo_group} "
                 f"({100 * lo:.0f}\\%)")
    return (sent + f". At step {last} the group means are {min(muon):.2f}--{max(muon):.2f} "
            f"for Muon and {min(adamw):.2f}--{max(adamw):.2f} for AdamW.")


def mismatch_numbers(res: dict) -> dict[str, str]:
    """Pretrain -> fine-tune optimizer mismatch (experiments/lm/family.py part mismatch)."""
    cell = {(t["pretrain"], t["finetune"]): t for t in res["table"]}
    name = {"adamw": "AdamW", "muon": "Muon"}
    rows = []
    for p in ("adamw", "muon"):
        cells = []
        for f in ("adamw", "muon"):
            seeds = ", ".join(f"{v:.4f}" for v in cell[p, f]["final_per_seed"])
            cells.append(f"{cell[p, f]['final_mean']:.4f} ({seeds})")
        rows.append(f"{name[p]} & " + " & ".join(cells) + " \\\\")
    parts, hurt = [], []
    for p in ("adamw", "muon"):
        same, other = cell[p, p], cell[p, "muon" if p == "adamw" else "adamw"]
        d = other["final_mean"] - same["final_mean"]
        noise = max(same["spread"], other["spread"])
        if d > noise:
            hurt.append(name[p])
        parts.append(f"after {name[p]} pretraining, fine-tuning with {name[other['finetune']]} "
                     f"instead of {name[p]} changes the held-out loss by ${d:+.4f}$ "
                     + ("(within the seed spread)" if abs(d) <= noise else
                        f"(seed spread ${noise:.4f}$)"))
    joined = "; ".join(parts)
    sent = joined[0].upper() + joined[1:] + ". "
    if hurt:
        sent += ("As in Moonlight's Table 6, switching optimizers hurts after "
                 + " and after ".join(hurt) + " pretraining. ")
    else:
        sent += ("Unlike Moonlight's Table 6, where the matched pairs score best, switching "
                 "optimizers hurts in neither direction here. ")
    gain = [cell["adamw", f]["final_mean"] - cell["muon", f]["final_mean"]
            for f in ("adamw", "muon")]
    if min(gain) > 0:
        sent += (f"The pretraining optimizer matters more: Muon-pretrained checkpoints end "
                 f"{min(gain):.3f}--{max(gain):.3f} below AdamW-pretrained ones whichever "
                 "optimizer fine-tunes. ")
    best, second = sorted(res["table"], key=lambda t: t["final_mean"])[:2]

    def pair(t: dict) -> str:
        return f"{name[t['pretrain']]} $\\rightarrow$ {name[t['finetune']]}"

    if second["final_mean"] - best["final_mean"] <= max(best["spread"], second["spread"]):
        sent += f"The best pair, {pair(best)}, is within the seed spread of {pair(second)}."
    else:
        sent += f"The best pair is {pair(best)}."
    edge = [t for t in res["table"] if t.get("best_lr_at_grid_edge")]
    if edge:
        sent += (f" {len(edge)} of the four fine-tuning rates {'sits' if len(edge) == 1 else 'sit'}"
                 " at an edge of the extended grid.")
    return {"MismatchPre": str(res["pretrain_steps"]), "MismatchFt": str(res["finetune_steps"]),
            "MismatchHeldOut": ", ".join(w.replace("_", " ") for w in res["held_out"]),
            "MismatchRows": "\n".join(rows), "MismatchSentence": sent}
