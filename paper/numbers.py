"""Write paper/numbers.tex: every number the paper's text quotes, as LaTeX macros.

    python -m paper.numbers [--results results] [--out paper/numbers.tex]

Each value comes from a results file or is computed by the library here (the Taylor
coefficients by sympy, the Jordan band by the certified interval propagation); none is typed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import sympy
import torch

from experiments.compare_optimizers import best_single_run
from msign import get_schedule
from msign.design import taylor_ns
from msign.results import write_text
from msign.scalar import band

from .figures import RESULTS, iterate_values

SCHEDULE_ROWS = ["cubic", "quintic", "jordan", "you", "you-5", "su-5", "polar-express",
                 "polar-express-bf16", "pe-5x5-l0.001", "pe-6x5-l0.001", "pe-8x5-l0.001",
                 "pe-5x7-l0.001"]


def sci(v: float, digits: int = 2) -> str:
    """``3.2\\times10^{-3}`` for math mode; plain decimals between 0.01 and 1000."""
    if v == 0 or not math.isfinite(v):
        return {0: "0", math.inf: "\\infty"}.get(v, "\\mathrm{nan}")
    if 1e-2 <= abs(v) < 1e3:
        return f"{v:.{digits + 1}g}"
    mant, exp = f"{v:.{digits - 1}e}".split("e")
    return f"{mant}\\times10^{{{int(exp)}}}"


def tex(text: str) -> str:
    """Escape the characters of device names and file names that TeX treats specially."""
    return text.replace("_", "\\_").replace("#", "\\#").replace("%", "\\%")


def schedule_numbers(table: dict) -> dict[str, str]:
    rows = {r["schedule"]: r for r in table["rows"]}
    out = {}
    lines = []
    for name in SCHEDULE_ROWS:
        r = rows[name]
        lo, hi = r["rounding_band_bf16"]
        dev = max(1 - lo, hi - 1)
        model = f"${sci(dev)}$" if dev < 1 else "fails"
        label = (f"designed ${r['steps']}\\times{r['degree']}$" if name.startswith("pe-")
                 else f"\\texttt{{{name}}}")
        lines.append(f"{label} & {r['steps']} & {r['degree']} & {r['matmuls']} & "
                     f"{r['safety']:g} & ${sci(r['worst_case_error'])}$ & {model} & "
                     f"${sci(r['bf16_max_sigma_err'])}$ \\\\")
    out["ScheduleRows"] = "\n".join(lines)
    for key, name in (("Cubic", "cubic"), ("Quintic", "quintic"), ("Jordan", "jordan"),
                      ("You", "you"), ("PE", "polar-express"), ("PEbf", "polar-express-bf16"),
                      ("DesignFive", "pe-5x5-l0.001"), ("DesignSix", "pe-6x5-l0.001")):
        out[f"Wce{key}"] = sci(rows[name]["worst_case_error"])
        out[f"Bf{key}"] = sci(rows[name]["bf16_max_sigma_err"])
        lo, hi = rows[name]["rounding_band_bf16"]
        out[f"Model{key}"] = sci(max(1 - lo, hi - 1), 1)
    out["ScheduleDevice"] = tex(table["device"])
    return out


def derivation_numbers() -> dict[str, str]:
    out = {f"Taylor{n}": sympy.latex(taylor_ns(k, as_expr=True), order="rev-lex")
           for k, n in ((1, "Cubic"), (2, "Quintic"), (3, "Septic"))}
    jordan = get_schedule("jordan")
    a, b, c = jordan.step_coeffs(1)[0]
    out.update(JordanA=f"{a:g}", JordanB=f"{b:g}", JordanC=f"{c:g}")
    lo, hi = band(jordan, lower=1e-2)
    out.update(JordanBandLo=f"{lo:.3f}", JordanBandHi=f"{hi:.3f}")
    out["JordanAtMilli"] = f"{float(jordan.scalar_map(1e-3)):.3f}"
    pe = get_schedule("polar-express")
    out["PESteps"] = str(pe.resolve_steps(None))
    out["PESafety"] = f"{pe.safety:g}"
    out["MatmulsJordan"] = str(jordan.matmuls())
    return out


def timing_numbers(cpu: dict, gpu: dict) -> dict[str, str]:
    out = {"GpuName": tex(gpu["device"]), "GpuTorch": tex(gpu["torch"]), "GpuDate": gpu["date"],
           "CpuName": tex(cpu["device"]), "GpuMatmulRate": f"{gpu['matmul_rate_tflops']:.0f}"}

    def row(res: dict, shape: tuple, method: str = "jordan") -> dict:
        return next(r for r in res["rows"] if tuple(r["shape"]) == shape and r["method"] == method)

    for key, shape in (("Big", (8192, 8192)), ("Four", (4096, 4096)), ("Small", (1024, 1024)),
                       ("Rect", (1024, 4096)), ("Wide", (1024, 8192)),
                       ("Batch", (16, 1024, 1024))):
        r = row(gpu, shape)
        out[f"GpuNs{key}"] = f"{r['ratio_torch_ns']:.2f}"
        out[f"GpuFloor{key}"] = f"{100 * r['floor_fraction']:.0f}"
    sched = [r for r in cpu["rows"] if r.get("ratio_torch_ns") is not None
             and r["method"] in ("jordan", "you", "polar-express", "quintic")]
    out["CpuNsMin"] = f"{min(r['ratio_torch_ns'] for r in sched):.2f}"
    out["CpuNsMax"] = f"{max(r['ratio_torch_ns'] for r in sched):.2f}"
    out["CpuFloorMin"] = f"{100 * min(r['floor_fraction'] for r in sched):.0f}"
    out["CpuFloorMax"] = f"{100 * max(r['floor_fraction'] for r in sched):.0f}"
    return out


def optimizer_numbers(cpu: dict, gpu: dict) -> dict[str, str]:
    out = {"OptLayers": str(gpu["layers"]), "OptWidth": str(gpu["d_model"]),
           "OptMatrices": str(gpu["n_matrices"])}
    for dev, res in (("Gpu", gpu), ("Cpu", cpu)):
        r = res["ratio_to_torch_muon"]
        out[f"Opt{dev}Jordan"] = f"{r['msign Muon jordan']:.2f}"
        out[f"Opt{dev}PE"] = f"{r['msign Muon polar-express']:.2f}"
    return out


def gradient_numbers(npz: np.lib.npyio.NpzFile) -> dict[str, str]:
    """Share of a captured gradient's singular values below 1e-3 of its Frobenius norm."""
    fracs = []
    for key in npz.files:
        if key.endswith("/grad") and "step10" in key:
            G = npz[key].astype(np.float64)
            s = np.linalg.svd(G, compute_uv=False)
            fracs.append(float(np.mean(s < 1e-3 * np.linalg.norm(G))))
    return {"GradTinyMin": f"{100 * min(fracs):.0f}", "GradTinyMax": f"{100 * max(fracs):.0f}"}


def convergence_numbers(res: dict, npz: np.lib.npyio.NpzFile) -> dict[str, str]:
    """Final errors of the precision study and the rounding gap of the iterate figure."""
    runs = {(r["dtype"], r["family"], r["method"]): r["steps"] for r in res["runs"]}
    out = {}
    for dt, key in (("fp64", "Double"), ("fp32", "Single"), ("bf16", "Bf")):
        out[f"ConvPE{key}"] = sci(runs[dt, "gaussian", "polar-express"][-1]
                                              ["max_sigma_err"], 1)
    bf = [runs["bf16", "gaussian", m][-1]["max_sigma_err"]
          for m in ("cubic", "quintic", "you", "polar-express", "polar-express-bf16")]
    out.update(ConvBfMin=sci(min(bf), 1), ConvBfMax=sci(max(bf), 1),
               ConvJordanBf=sci(runs["bf16", "gaussian", "jordan"][-1]["max_sigma_err"]))
    grad = "blocks.3.fc.weight:step300:grad"
    out["ConvGradPE"] = sci(runs["fp64", grad, "polar-express"][-1]["dist_svd"], 1)
    out["ConvGradNewton"] = sci(runs["fp64", grad, "newton"][-1]["dist_svd"], 1)
    out["ConvSize"] = "\\times".join(map(str, res["size"]))
    G = npz[grad.replace(":", "/")]
    for dtype, key in ((torch.float64, "Fp"), (torch.bfloat16, "Bf")):
        x, vals = iterate_values(G, "polar-express", dtype, 8)
        gap = np.abs(vals[-1] - get_schedule("polar-express").scalar_map(x, 8))
        out[f"IterGap{key}"] = sci(float(gap.max()), 1)
    return out


def precision_numbers(res: dict) -> dict[str, str]:
    """Blow-up counts per normalization and the Schatten-4 gain, from experiments.precision."""
    rows = res["rows"]

    def blowups(sched: str, norm: str) -> str:
        sel = [r for r in rows if (r["schedule"], r["normalization"]) == (sched, norm)]
        return f"{sum(r['verdict'] == 'blow-up' for r in sel)}/{len(sel)}"

    def median_err(sched: str, norm: str) -> float:
        e = sorted(r["max_sigma_err"] for r in rows if r["dtype"] == "bf16"
                   and (r["schedule"], r["normalization"]) == (sched, norm))
        return e[len(e) // 2]

    return {"BlowPETwo": blowups("polar-express", "power-2"),
            "BlowPEEight": blowups("polar-express", "power-8"),
            "BlowPEbfEight": blowups("polar-express-bf16", "power-8"),
            "BlowJordanTwo": blowups("jordan", "power-2"),
            "BlowPEFro": blowups("polar-express", "fro"),
            "PrecPEFro": sci(median_err("polar-express", "fro"), 1),
            "PrecPESchatten": sci(median_err("polar-express", "schatten4"), 1)}


def gram_numbers(res: dict) -> dict[str, str]:
    """Gram-side iteration: blow-ups per restart interval in bf16, time and FLOP ratios."""
    bf = [r for r in res["accuracy"] if r["dtype"] == "bf16"]
    out = {}
    for key, r in (("Two", 2), ("Three", 3), ("Never", None)):
        out[f"GramBlow{key}"] = f"{sum(not x[f'restart_{r}']['finite'] for x in bf)}/{len(bf)}"
    t2 = [t for t in res["timing"] if t["restart"] == 2 and t["dtype"] == "bf16"]
    out.update(GramTimeMin=f"{min(t['time_ratio'] for t in t2):.2f}",
               GramTimeMax=f"{max(t['time_ratio'] for t in t2):.2f}",
               GramFlopMin=f"{min(t['flop_ratio'] for t in t2):.2f}",
               GramFlopMax=f"{max(t['flop_ratio'] for t in t2):.2f}",
               GramFpDiff=sci(max(x[f"restart_{k}"]["max_diff_to_standard"]
                                  for x in res["accuracy"] if x["dtype"] == "fp64"
                                  for k in (2, 3)), 1))
    return out


def lm_setup(summary: dict, prefix: str) -> dict[str, str]:
    """Model size, steps, tokens and Muon/AdamW wall-time ratio of an LM summary."""
    run, model = summary["runs"][0], summary["model"]
    steps = run["val"][-1][0]
    wall = {o: np.mean([r["wall_s"] for r in summary["runs"] if r["optimizer"] == o])
            for o in ("adamw", "muon")}
    return {f"{prefix}{k}": v for k, v in {
        "Params": f"{summary['n_params'] / 1e6:.2f}", "Layers": str(model["layers"]),
        "Width": str(model["d_model"]), "Steps": str(steps),
        "Tokens": f"{run['tokens_per_step'] * steps / 1e6:.1f}",
        "WallRatio": f"{wall['muon'] / wall['adamw']:.2f}"}.items()}


def lm_numbers(summary: dict) -> dict[str, str]:
    table = summary["table"]
    adamw = next(t for t in table if t["optimizer"] == "adamw")
    muon = [t for t in table if t["optimizer"] == "muon"]
    best = min(muon, key=lambda t: t["final_val_mean"])
    fracs = [t["fraction_of_adamw_steps"] for t in muon if t["fraction_of_adamw_steps"]]
    hard = [t["fraction_to_best_adamw_run"] for t in muon if t["fraction_to_best_adamw_run"]]
    best_run = best_single_run(summary["runs"])["val"][-1][1]
    rows = []
    for t in table:
        name = "AdamW" if t["optimizer"] == "adamw" else f"Muon \\texttt{{{t['msign']}}}"
        frac = t.get("fraction_of_adamw_steps")
        hard_t = t.get("fraction_to_best_adamw_run")
        rows.append(f"{name} & {t['best_lr']:g} & {t['final_val_mean']:.4f} & "
                    f"{t['final_val_spread']:.4f} & {t['seeds']} & "
                    f"{'--' if frac is None else f'{frac:.2f}'} & "
                    f"{'--' if hard_t is None else f'{hard_t:.2f}'} \\\\")
    lrs = {o: len({r["lr"] for r in summary["runs"] if r["optimizer"] == o})
           for o in ("adamw", "muon")}
    return {
        **lm_setup(summary, "LM"), "LMRows": "\n".join(rows),
        "LMBlock": str(summary["model"]["block"]),
        "LMRuns": str(len(summary["runs"])), "LMDevice": tex(summary["device"]),
        "LMAdamW": f"{adamw['final_val_mean']:.3f}", "LMAdamWLr": f"{adamw['best_lr']:g}",
        "LMBestMethod": best["msign"], "LMBest": f"{best['final_val_mean']:.3f}",
        "LMBestFraction": f"{min(fracs):.2f}" if fracs else "--",
        "LMAdamWLrs": str(lrs["adamw"]), "LMMuonLrs": str(lrs["muon"]),
        "LMWorstFraction": f"{max(fracs):.2f}" if fracs else "--",
        "LMHardMin": f"{min(hard):.2f}" if hard else "--",
        "LMHardMax": f"{max(hard):.2f}" if hard else "--",
        "LMBestAdamWRun": f"{best_run:.3f}", "LMAdamWSpread": f"{adamw['final_val_spread']:.3f}",
        "LMValWorks": ", ".join(w.replace("_", " ") for w in summary["val_works"]),
    }


def macros(values: dict[str, str]) -> str:
    lines = ["% generated by python -m paper.numbers; do not edit"]
    for k, v in sorted(values.items()):
        if not k.isalpha():
            raise ValueError(f"macro name {k!r} must be letters only")
        lines.append(f"\\newcommand{{\\{k}}}{{{v}}}")
    return "\n".join(lines) + "\n"


def lm_long_numbers(summary: dict) -> dict[str, str]:
    """The scale check: one seed each, AdamW at two learning rates, one Muon method."""
    adamw = next(t for t in summary["table"] if t["optimizer"] == "adamw")
    muon = next(t for t in summary["table"] if t["optimizer"] == "muon")
    frac = muon["fraction_of_adamw_steps"]
    return {
        **lm_setup(summary, "Long"),
        "LongAdamWLrs": ", ".join(sorted({f"{r['lr']:g}" for r in summary["runs"]
                                          if r["optimizer"] == "adamw"}, key=float)),
        "LongAdamWLr": f"{adamw['best_lr']:g}", "LongAdamW": f"{adamw['final_val_mean']:.3f}",
        "LongMethod": muon["msign"], "LongMuonLr": f"{muon['best_lr']:g}",
        "LongMuon": f"{muon['final_val_mean']:.3f}",
        "LongFraction": "--" if frac is None else f"{frac:.2f}",
        "LongJobs": str(summary["jobs"]),
    }


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "numbers.tex"))
    args = ap.parse_args(argv)
    res = Path(args.results)

    def load(rel: str) -> dict:
        return json.loads((res / rel).read_text())

    values = {**derivation_numbers(), **schedule_numbers(load("schedules/table.json")),
              **timing_numbers(load("timing/cpu_bf16.json"), load("timing/cuda_bf16.json")),
              **optimizer_numbers(load("optimizer/step_time_cpu.json"),
                                  load("optimizer/step_time_cuda.json")),
              **gradient_numbers(np.load(res / "gradients" / "cpu.npz")),
              **convergence_numbers(load("convergence/cpu_fp64-fp32-bf16.json"),
                                    np.load(res / "gradients" / "cpu.npz")),
              **precision_numbers(load("precision/cpu_fp64-fp32-fp16-bf16.json")),
              **gram_numbers(load("gram/cpu.json")),
              **lm_numbers(load("lm/summary.json")),
              **lm_long_numbers(load("lm_long/summary.json"))}
    write_text(args.out, macros(values))
    return Path(args.out)


if __name__ == "__main__":
    print(main())
