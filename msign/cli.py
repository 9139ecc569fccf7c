"""Command line: ``python -m msign {compare,schedules,methods} ...``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np
import torch

from . import metrics
from .api import apply_method, as_dtype
from .bench import median_time
from .exact import svd_msign
from .registry import METHODS
from .results import provenance, write_json
from .schedules import SCHEDULES, Schedule


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 1024x4096; got {text!r}") from None
    if len(dims) < 2 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"shape needs >= 2 positive dimensions; got {text!r}")
    return dims


def compare(shape: Sequence[int], dtype: str, methods: Sequence[str], device: str = "cpu",
            seed: int = 0, repeat: int = 3) -> dict:
    """Run every method on one Gaussian matrix; errors are measured in float64 vs the SVD."""
    dev = torch.device(device)
    cd = as_dtype(dtype, "dtype")
    gen = torch.Generator().manual_seed(seed)
    G64 = torch.randn(*shape, generator=gen, dtype=torch.float64)
    G = G64.to(device=dev, dtype=cd)
    m, n = shape[-2:]
    W = G if m <= n else G.mT  # the Gram product on the small side, as the engine does
    matmul_s = median_time(lambda: W @ W.mT, dev, repeat)
    ref = svd_msign(G.to("cpu", torch.float64))  # once, not per method
    rows = []
    for name in methods:
        method = METHODS[name]
        info: dict = {}
        X = apply_method(G, method, info=info)
        t = median_time(lambda: apply_method(G, method), dev, repeat)  # noqa: B023
        Xc = X.to("cpu")
        rows.append({
            "method": name,
            "compute_dtype": str(info["compute_dtype"]).replace("torch.", ""),
            "steps": info.get("iterations"),
            "matmuls": info.get("matmuls"),
            "max_sigma_err": float(np.max(metrics.max_sigma_error(Xc))),
            "orth_err": float(np.max(metrics.orthogonality_error(Xc))),
            "dist_svd": float(np.max(metrics.relative_distance(Xc, ref))),
            "time_s": t,
            "time_over_matmul": t / matmul_s,
        })
    return {
        **provenance(dev), "shape": list(shape), "dtype": str(cd).replace("torch.", ""),
        "seed": seed, "matmul_s": matmul_s, "rows": rows,
    }


def _fmt(v: object, spec: str) -> str:
    return format("-" if v is None else v, spec)


def format_compare(res: dict) -> str:
    head = (f"{'method':<19} {'compute':<9} {'steps':>5} {'matmuls':>7} {'max|s-1|':>9} "
            f"{'|XtX-I|_F':>9} {'dist_svd':>9} {'time_ms':>9} {'x matmul':>8}")
    lines = [
        f"G: Gaussian {'x'.join(map(str, res['shape']))}, {res['dtype']}, {res['device']}, "
        f"torch {res['torch']}; errors in float64 against the SVD polar factor; time = median, "
        f"'x matmul' = time / one ({min(res['shape'][-2:])}x{max(res['shape'][-2:])} Gram product) "
        "in the same run",
        head, "-" * len(head),
    ]
    for r in res["rows"]:
        lines.append(
            f"{r['method']:<19} {r['compute_dtype']:<9} {_fmt(r['steps'], '>5')} "
            f"{_fmt(r['matmuls'], '>7')} {r['max_sigma_err']:>9.2e} {r['orth_err']:>9.2e} "
            f"{r['dist_svd']:>9.2e} {1e3 * r['time_s']:>9.2f} {r['time_over_matmul']:>8.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msign", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="error and time of every method on one Gaussian matrix")
    c.add_argument("--shape", type=_shape, default=(1024, 4096), help="e.g. 1024x4096 or 8x256x256")
    c.add_argument("--dtype", default="bf16", help="compute dtype: bf16, fp16, fp32, fp64")
    c.add_argument("--methods", default="all", help="comma-separated names, or 'all'")
    c.add_argument("--device", default="cpu")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--repeat", type=int, default=3)
    c.add_argument("--json", help="also write the results to this JSON file")
    d = sub.add_parser("design", help="design a schedule and write it as JSON")
    d.add_argument("kind", choices=["polar-express", "jordan-style"])
    d.add_argument("--lower", type=float, help="default: 1e-3 (polar-express), 1e-2 (jordan)")
    d.add_argument("--steps", type=int, help="default: 8 (polar-express), 5 (jordan-style)")
    d.add_argument("--degree", type=int, default=5, help="polar-express only")
    d.add_argument("--safety", type=float, default=1.01, help="polar-express only")
    d.add_argument("--rel", type=float, default=0.0,
                   help="polar-express only: rounding-aware design (bf16: 2**-8)")
    d.add_argument("--json", help="write the schedule to this file")
    cf = sub.add_parser("certify", help="certified band and worst-case error of a schedule")
    cf.add_argument("schedule", help="a schedule name or a JSON file written by 'design'")
    cf.add_argument("--lower", type=float, default=1e-3)
    cf.add_argument("--steps", type=int)
    cf.add_argument("--rel", type=float, default=2.0**-8,
                    help="relative perturbation per step for the rounding band (default bf16)")
    b = sub.add_parser("bench", help="time per call vs torch's Newton-Schulz, SVD, matmul rate")
    b.add_argument("--shapes", default="1024x1024,1024x4096,8x512x512",
                   help="comma-separated shapes")
    b.add_argument("--dtype", default="bf16")
    b.add_argument("--device", default="cpu")
    b.add_argument("--methods", default="jordan,you,polar-express,qdwh,svd")
    b.add_argument("--repeat", type=int, default=5)
    b.add_argument("--json", help="also write the results to this JSON file")
    sub.add_parser("schedules", help="list the named schedules with their provenance")
    sub.add_parser("methods", help="list the registered methods")
    args = p.parse_args(argv)

    if args.cmd == "compare":
        names = list(METHODS) if args.methods == "all" else args.methods.split(",")
        unknown = [n for n in names if n not in METHODS]
        if unknown:
            p.error(f"unknown methods {unknown}; known: {sorted(METHODS)}")
        try:
            as_dtype(args.dtype, "--dtype")
        except (TypeError, ValueError) as e:
            p.error(str(e))
        res = compare(args.shape, args.dtype, names, args.device, args.seed, args.repeat)
        print(format_compare(res))
        if args.json:
            write_json(args.json, res)
    elif args.cmd == "bench":
        from . import bench

        try:
            shapes = [_shape(t) for t in args.shapes.split(",")]
            dtype = as_dtype(args.dtype, "--dtype")
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            p.error(str(e))
        names = args.methods.split(",")
        unknown = [n for n in names if n not in METHODS]
        if unknown:
            p.error(f"unknown methods {unknown}; known: {sorted(METHODS)}")
        res = bench.run(shapes, dtype, args.device, names, args.repeat)
        print(bench.format_rows(res))
        if args.json:
            write_json(args.json, res)
    elif args.cmd == "design":
        from . import design

        given = {k: v for k, v in (("lower", args.lower), ("steps", args.steps)) if v is not None}
        try:
            if args.kind == "polar-express":
                sched = design.polar_express(degree=args.degree, safety=args.safety,
                                             rel=args.rel, **given)
            else:
                sched = design.jordan_style(**given)
        except (ValueError, RuntimeError) as e:
            p.error(str(e))
        text = sched.to_json(args.json)
        print(text)
    elif args.cmd == "certify":
        from . import scalar

        name = args.schedule
        sched = SCHEDULES[name] if name in SCHEDULES else None
        if sched is None:
            if not os.path.exists(name):
                p.error(f"{name!r} is neither a schedule name {sorted(SCHEDULES)} nor a file")
            sched = Schedule.from_json(name)
        try:
            lo, hi = scalar.band(sched, args.lower, args.steps)
            rlo, rhi = scalar.rounding_band(sched, args.lower, args.rel, args.steps)
        except ValueError as e:
            p.error(str(e))
        k = sched.resolve_steps(args.steps)
        print(f"{sched.name}: {k} steps, degree {sched.degree}, {sched.matmuls(k)} matmuls, "
              f"safety {sched.safety:g}\n"
              f"  certified band on [{args.lower:g}, 1]: [{lo:.10g}, {hi:.10g}]\n"
              f"  certified worst-case |f - 1|: {max(1 - lo, hi - 1):.6e}\n"
              f"  band with relative perturbation {args.rel:.3g} per step: [{rlo:.6g}, {rhi:.6g}]")
    elif args.cmd == "schedules":
        for s in SCHEDULES.values():
            print(f"{s.name:<14} steps={s.resolve_steps(None):<3} degree={s.degree} "
                  f"matmuls={s.matmuls():<3} safety={s.safety:g}\n    {s.source}")
    elif args.cmd == "methods":
        for name, m in METHODS.items():
            print(f"{name:<14} {m.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
