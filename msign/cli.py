"""Command line: ``python -m msign {compare,bench,design,certify,export,schedules,methods}``.

- ``compare``: every method's error and time on one Gaussian matrix, a row as each finishes;
- ``bench``: time per call against torch's Newton-Schulz, fp32, the SVD and the matmul rate;
- ``design``: design a schedule (Polar Express or Jordan-style) and write it as JSON;
- ``certify``: certified band and worst-case error of a schedule (name or JSON file);
- ``export``: a schedule in the form torch.optim.Muon, optax, dion or Emerging-Optimizers
  accept (:mod:`msign.export`);
- ``schedules`` / ``methods``: list the named schedules / the registered methods.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import numpy as np
import torch

from . import __version__, metrics
from .api import apply_method, as_dtype
from .bench import median_time
from .exact import svd_msign
from .gemm import GEMM_MODES, resolve_gemm
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


class Progress:
    """One line per finished item on ``stream`` (stderr): count, elapsed, estimate left.

    The estimate weights the items still to run by ``weights`` (e.g. expected FLOPs) when
    given, else counts them, and scales by the time per weight seen so far.
    """

    def __init__(self, total: int, stream: TextIO | None = None,
                 weights: Sequence[float] | None = None) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self.weights = list(weights) if weights is not None else [1.0] * total
        self.t0 = time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.t0
        done_w = sum(self.weights[: self.done])
        left_w = sum(self.weights[self.done:])
        left = elapsed / done_w * left_w if done_w > 0 else float("nan")
        tail = f", about {left:.0f} s left" if self.done < self.total else ""
        print(f"[{self.done}/{self.total}] {label}: {elapsed:.1f} s elapsed{tail}",
              file=self.stream or sys.stderr, flush=True)


def _fmt(v: object, spec: str) -> str:
    return format("-" if v is None else v, spec)


COMPARE_HEAD = (f"{'method':<19} {'compute':<9} {'gemm':<8} {'steps':>5} {'matmuls':>7} "
                f"{'max|s-1|':>9} {'|XtX-I|_F':>9} {'dist_svd':>9} {'time_ms':>9} {'x matmul':>8}")


def compare_title(res: dict) -> str:
    return (f"G: Gaussian {'x'.join(map(str, res['shape']))}, {res['dtype']}, {res['device']}, "
            f"torch {res['torch']}; errors in float64 against the SVD polar factor; time = "
            f"median of {res['repeat']}, 'x matmul' = time / one "
            f"({min(res['shape'][-2:])}x{max(res['shape'][-2:])} Gram product, "
            f"{res['gemm']}) in the same run")


def compare_row(r: dict) -> str:
    return (f"{r['method']:<19} {r['compute_dtype']:<9} {r['gemm']:<8} "
            f"{_fmt(r['steps'], '>5')} {_fmt(r['matmuls'], '>7')} {r['max_sigma_err']:>9.2e} "
            f"{r['orth_err']:>9.2e} {r['dist_svd']:>9.2e} {1e3 * r['time_s']:>9.2f} "
            f"{r['time_over_matmul']:>8.1f}")


def format_compare(res: dict) -> str:
    rows = [compare_row(r) for r in res["rows"]]
    return "\n".join([compare_title(res), COMPARE_HEAD, "-" * len(COMPARE_HEAD), *rows])


def compare(shape: Sequence[int], dtype: str, methods: Sequence[str], device: str = "cpu",
            seed: int = 0, repeat: int = 1, gemm: str = "auto",
            on_row: Callable[[dict, dict], Any] | None = None) -> dict:
    """Run every method on one Gaussian matrix; errors are measured in float64 vs the SVD.

    ``on_row(res, row)`` is called as each method finishes (the CLI prints it there).
    """
    dev = torch.device(device)
    cd = as_dtype(dtype, "dtype")
    gen = torch.Generator().manual_seed(seed)
    G64 = torch.randn(*shape, generator=gen, dtype=torch.float64)
    G = G64.to(device=dev, dtype=cd)
    m, n = shape[-2:]
    W = G if m <= n else G.mT  # the Gram product on the small side, as the engine does
    path = resolve_gemm(gemm, cd, dev)
    matmul_s = median_time(lambda: path.mm(W, W.mT), dev, repeat)
    res = {**provenance(dev), "shape": list(shape), "dtype": str(cd).replace("torch.", ""),
           "gemm": path.path, "seed": seed, "repeat": repeat, "matmul_s": matmul_s, "rows": []}
    ref = svd_msign(G.to("cpu", torch.float64))  # of the input as given; once, not per method
    for name in methods:
        method = METHODS[name]
        info: dict = {}
        X = apply_method(G, method, info=info, gemm=gemm)
        t = median_time(lambda: apply_method(G, method, gemm=gemm), dev, repeat)  # noqa: B023
        Xc = X.to("cpu")
        row = {
            "method": name,
            "compute_dtype": str(info["compute_dtype"]).replace("torch.", ""),
            "gemm": info["gemm"],
            "steps": info.get("iterations"),
            "matmuls": info.get("matmuls"),
            "flops": info.get("flops"),
            "max_sigma_err": float(np.max(metrics.max_sigma_error(Xc))),
            "orth_err": float(np.max(metrics.orthogonality_error(Xc))),
            "dist_svd": float(np.max(metrics.relative_distance(Xc, ref))),
            "time_s": t,
            "time_over_matmul": t / matmul_s,
        }
        res["rows"].append(row)
        if on_row is not None:
            on_row(res, row)
    return res


def _methods_arg(p: argparse.ArgumentParser, text: str) -> list[str]:
    names = list(METHODS) if text == "all" else text.split(",")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; known: {sorted(METHODS)}")
    return names


def _dtype_arg(p: argparse.ArgumentParser, text: str) -> torch.dtype:
    try:
        return as_dtype(text, "--dtype")
    except (TypeError, ValueError) as e:
        p.error(str(e))


def _expected_cost(names: Sequence[str], shape: Sequence[int]) -> list[float]:
    """Relative cost of each method for the progress estimate: FLOPs where the schedule
    says, else the median of the others (factorization methods are comparable here)."""
    from .iterate import cost

    m, n = sorted(shape[-2:])
    known = {nm: cost(METHODS[nm].schedule, m, n)[1] for nm in names
             if METHODS[nm].schedule is not None}
    fill = float(np.median(list(known.values()))) if known else 1.0
    return [known.get(nm, fill) for nm in names]


def cmd_compare(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    names = _methods_arg(p, args.methods)
    _dtype_arg(p, args.dtype)
    progress = Progress(len(names), weights=_expected_cost(names, args.shape))
    print(f"running {len(names)} methods on a {'x'.join(map(str, args.shape))} matrix "
          f"({args.dtype}, {args.repeat} timed runs each)...", file=sys.stderr, flush=True)

    def on_row(res: dict, row: dict) -> None:
        if len(res["rows"]) == 1:
            print(compare_title(res), COMPARE_HEAD, "-" * len(COMPARE_HEAD), sep="\n")
        print(compare_row(row), flush=True)
        progress.step(row["method"])

    res = compare(args.shape, args.dtype, names, args.device, args.seed, args.repeat,
                  args.gemm, on_row)
    if args.json:
        write_json(args.json, res)


def cmd_bench(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from . import bench

    try:
        shapes = [_shape(t) for t in args.shapes.split(",")]
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    dtype = _dtype_arg(p, args.dtype)
    names = _methods_arg(p, args.methods)
    progress = Progress(len(shapes))

    def each(xs):
        for x in xs:
            yield x
            progress.step("x".join(map(str, x)))

    res = bench.run(shapes, dtype, args.device, names, args.repeat, gemm=args.gemm,
                    progress=each)
    print(bench.format_rows(res))
    if args.json:
        write_json(args.json, res)


def cmd_design(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
    print(sched.to_json(args.json))


def cmd_certify(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from . import scalar

    sched = _schedule_arg(p, args.schedule)
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


def _schedule_arg(p: argparse.ArgumentParser, name: str) -> Schedule:
    if name in SCHEDULES:
        return SCHEDULES[name]
    if os.path.exists(name):
        return Schedule.from_json(name)
    p.error(f"{name!r} is neither a schedule name {sorted(SCHEDULES)} nor a file")


def cmd_export(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .export import export

    try:
        print(export(_schedule_arg(p, args.schedule), args.format))
    except ValueError as e:
        p.error(str(e))


def cmd_schedules(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for s in SCHEDULES.values():
        print(f"{s.name:<19} steps={s.resolve_steps(None):<3} degree={s.degree} "
              f"matmuls={s.matmuls():<3} safety={s.safety:g}\n    {s.source}")


def cmd_methods(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name, m in METHODS.items():
        print(f"{name:<19} {m.description}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m msign", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"msign {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    gemm_help = ("bf16/fp16 products: native torch GEMMs, fp32-accumulated emulation, or auto "
                 "(emulate where the CPU's native half-precision GEMM is slow)")
    c = sub.add_parser("compare", help="error and time of every method on one Gaussian matrix")
    c.add_argument("--shape", type=_shape, default=(1024, 4096), help="e.g. 1024x4096 or 8x256x256")
    c.add_argument("--dtype", default="bf16", help="compute dtype: bf16, fp16, fp32, fp64")
    c.add_argument("--methods", default="all", help="comma-separated names, or 'all'")
    c.add_argument("--device", default="cpu")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--repeat", type=int, default=1,
                   help="timed runs per method after one untimed run (default 1: the README's "
                        "command then answers in about 40 s on a 2-core CPU of either kind)")
    c.add_argument("--gemm", choices=GEMM_MODES, default="auto", help=gemm_help)
    c.add_argument("--json", help="also write the results to this JSON file")
    c.set_defaults(fn=cmd_compare)
    b = sub.add_parser("bench", help="time per call vs torch's Newton-Schulz, fp32, SVD, matmul")
    b.add_argument("--shapes", default="1024x1024,1024x4096,8x512x512",
                   help="comma-separated shapes")
    b.add_argument("--dtype", default="bf16")
    b.add_argument("--device", default="cpu")
    b.add_argument("--methods", default="jordan,you,polar-express,qdwh,svd")
    b.add_argument("--repeat", type=int, default=5)
    b.add_argument("--gemm", choices=GEMM_MODES, default="auto", help=gemm_help)
    b.add_argument("--json", help="also write the results to this JSON file")
    b.set_defaults(fn=cmd_bench)
    d = sub.add_parser("design", help="design a schedule and write it as JSON")
    d.add_argument("kind", choices=["polar-express", "jordan-style"])
    d.add_argument("--lower", type=float, help="default: 1e-3 (polar-express), 1e-2 (jordan)")
    d.add_argument("--steps", type=int, help="default: 8 (polar-express), 5 (jordan-style)")
    d.add_argument("--degree", type=int, default=5, help="polar-express only")
    d.add_argument("--safety", type=float, default=1.01, help="polar-express only")
    d.add_argument("--rel", type=float, default=0.0,
                   help="polar-express only: rounding-aware design (bf16: 2**-8)")
    d.add_argument("--json", help="write the schedule to this file")
    d.set_defaults(fn=cmd_design)
    cf = sub.add_parser("certify", help="certified band and worst-case error of a schedule")
    cf.add_argument("schedule", help="a schedule name or a JSON file written by 'design'")
    cf.add_argument("--lower", type=float, default=1e-3)
    cf.add_argument("--steps", type=int)
    cf.add_argument("--rel", type=float, default=2.0**-8,
                    help="relative perturbation per step for the rounding band (default bf16)")
    cf.set_defaults(fn=cmd_certify)
    ex = sub.add_parser("export", help="a schedule in another Muon project's form")
    ex.add_argument("schedule", help="a schedule name or a JSON file written by 'design'")
    ex.add_argument("--format", required=True,
                    help="torch, optax, dion, emerging or json (msign.export.FORMATS)")
    ex.set_defaults(fn=cmd_export)
    sub.add_parser("schedules", help="list the named schedules with their provenance"
                   ).set_defaults(fn=cmd_schedules)
    sub.add_parser("methods", help="list the registered methods").set_defaults(fn=cmd_methods)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    args.fn(p, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
