"""Gram-side iteration for wide matrices: accuracy per restart interval, FLOPs and time.

    python -m experiments.matrix.gram [--device cpu] [--out results/gram/cpu.json]

For each schedule and restart interval (``None`` = never re-form X) this runs the Gram-side
iteration (msign.iterate.iterate_gram) beside the standard one on the same normalized input:
in float64 the two must agree to rounding; in fp32 and bf16 it records both errors (max
|sigma - 1| and relative distance to the SVD polar factor) on Gaussian, prescribed-spectrum
and real captured gradient matrices (all 1:4), and whether the iterate stayed finite.  Then
it times both on wide shapes in bf16 and fp32 and reports time and FLOP ratios.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from msign import get_schedule
from msign.bench import interleaved_ratios
from msign.iterate import gram_flops, iterate, iterate_gram, normalize, schedule_flops
from msign.results import provenance, write_json

from ..common.cli import add_device, add_out
from ..common.matrices import blew_up, captured, families, finite_errors

STUDIED = ["jordan", "polar-express", "polar-express-bf16"]
RESTARTS = [None, 2, 3, 4]
DTYPES = {"fp64": torch.float64, "fp32": torch.float32, "bf16": torch.bfloat16}


def accuracy(mats: dict[str, torch.Tensor], device: torch.device) -> list[dict]:
    rows = []
    for fam, G in tqdm(mats.items(), desc="accuracy"):
        if G.shape[0] > G.shape[1]:
            G = G.mT.contiguous()
        U, _, Vh = torch.linalg.svd(G, full_matrices=False)
        ref = (U @ Vh).to(device)
        for name in STUDIED:
            s = get_schedule(name)
            coeffs = s.step_coeffs()
            for dname, dtype in DTYPES.items():
                X0 = normalize(G.to(device, dtype), s.safety)
                std = iterate(X0, coeffs)
                row = {"family": fam, "shape": list(G.shape), "schedule": name,
                       "dtype": dname, "standard": finite_errors(std, ref, G)}
                for r in RESTARTS:
                    Xg = iterate_gram(X0, coeffs, r)
                    row[f"restart_{r}"] = finite_errors(Xg, ref, G)
                    if dname == "fp64":
                        row[f"restart_{r}"]["max_diff_to_standard"] = float(
                            (Xg - std).abs().max())
                rows.append(row)
    return rows


def timing(shapes: list[tuple[int, ...]], device: torch.device, repeat: int) -> list[dict]:
    rows = []
    for shape in tqdm(shapes, desc="timing"):
        m, n = shape[-2:]
        for dname in ("bf16", "fp32"):
            G = torch.randn(*shape, device=device, dtype=DTYPES[dname])
            for name in STUDIED[:2]:
                s = get_schedule(name)
                coeffs = s.step_coeffs()
                X0 = normalize(G, s.safety)
                fns = [lambda: iterate(X0, coeffs)]  # noqa: B023
                fns += [lambda r=r: iterate_gram(X0, coeffs, r) for r in (2, 3)]  # noqa: B023
                (t_std, *ts), (_, *ratios) = interleaved_ratios(fns, device, repeat)
                for r, t, ratio in zip((2, 3), ts, ratios, strict=True):
                    rows.append({"shape": list(shape), "dtype": dname, "schedule": name,
                                 "restart": r, "time_ratio": ratio,
                                 "flop_ratio": gram_flops(m, n, coeffs, r)
                                 / schedule_flops(m, n, coeffs),
                                 "standard_s": t_std, "gram_s": t})
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    add_device(ap)
    ap.add_argument("--gradients", default="results/gradients/cpu.npz",
                    help="captured matrices to add ('' for none)")
    ap.add_argument("--size", default="256x1024")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--big", type=int, help="n of the timed shapes (default 1024 CPU, 4096 GPU)")
    add_out(ap)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    m, n = (int(v) for v in args.size.split("x"))
    fams = families(m, n)
    mats = {k: fams[k] for k in ("gaussian", "kappa1e4", "lowrank_noise", "power_law")}
    if args.gradients:
        mats.update({k: v for k, v in captured(args.gradients).items() if k.endswith("grad")})
    big = args.big or (4096 if dev.type == "cuda" else 1024)
    shapes = [(big // 4, big), (big // 8, big), (big // 4, 2 * big), (8, big // 8, big // 2)]
    res = {**provenance(dev), "restarts": RESTARTS,
           "accuracy": accuracy(mats, dev), "timing": timing(shapes, dev, args.repeat)}
    out = Path(args.out or f"results/gram/{dev.type}.json")
    write_json(out, res)
    print(summary(res))
    return res


def summary(res: dict) -> str:
    lines = ["accuracy (max|s-1| / dist to SVD polar; 'inf' = non-finite):",
             f"{'family':<36}{'schedule':<20}{'dtype':<6}{'standard':>18}"
             + "".join(f"{'restart ' + str(r):>18}" for r in res["restarts"])]

    def cell(e: dict) -> str:
        return "inf" if not e["finite"] else f"{e['max_sigma_err']:.2g}/{e['dist_svd']:.2g}"

    for r in res["accuracy"]:
        if r["dtype"] == "fp64":
            continue
        lines.append(f"{r['family']:<36}{r['schedule']:<20}{r['dtype']:<6}"
                     f"{cell(r['standard']):>18}"
                     + "".join(f"{cell(r[f'restart_{k}']):>18}" for k in res["restarts"]))
    bf = [r for r in res["accuracy"] if r["dtype"] == "bf16"]
    counts = ", ".join(f"{k}: {sum(blew_up(r[k]) for r in bf)}/{len(bf)}"
                       for k in ["standard", *(f"restart_{x}" for x in res["restarts"])])
    lines.append(f"bf16 blow-ups (non-finite or a singular value above 2): {counts}")
    fp64 = max(r[f"restart_{k}"]["max_diff_to_standard"] for r in res["accuracy"]
               if r["dtype"] == "fp64" for k in res["restarts"])
    lines.append(f"fp64: max |gram - standard| over all = {fp64:.2g}")
    lines.append("time (gram / standard, same run) and FLOPs (gram / standard):")
    for t in res["timing"]:
        lines.append(f"{'x'.join(map(str, t['shape'])):<14}{t['dtype']:<6}{t['schedule']:<16}"
                     f"restart {t['restart']}  time {t['time_ratio']:.2f}  "
                     f"flops {t['flop_ratio']:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
