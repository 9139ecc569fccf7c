"""Time per call of every msign method vs torch.optim.Muon's Newton-Schulz and the matmul rate.

    python -m experiments.bench.timing [--device cuda] [--dtype bf16] \
        [--out results/timing/NAME.json]

The full shape list of the study (square, 1:4, 1:8, batched stacks); the measurement and
its ratios are :func:`msign.bench.run` (also ``python -m msign bench`` for a quick look).
"""

from __future__ import annotations

import argparse

from tqdm import tqdm

from msign.api import as_dtype
from msign.bench import format_rows, run
from msign.results import write_json

from ..common.cli import add_device, add_gemm, add_out

SHAPES = {"cpu": [(512, 512), (256, 1024), (256, 2048), (8, 256, 256), (1024, 4096)],
          "cuda": [(1024, 1024), (4096, 4096), (1024, 4096), (1024, 8192), (16, 1024, 1024),
                   (8192, 8192)]}
METHODS_TIMED = ["jordan", "you", "polar-express", "cubic", "quintic", "newton", "qdwh", "svd"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_device(ap)
    ap.add_argument("--dtype", default=None, help="default: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--repeat", type=int, default=5)
    add_gemm(ap)
    add_out(ap, None)
    args = ap.parse_args()
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    dname = args.dtype or ("bf16" if kind == "cuda" else "fp32")
    dtype = as_dtype(dname, "--dtype")
    res = run(SHAPES[kind], dtype, args.device, METHODS_TIMED, args.repeat, gemm=args.gemm,
              progress=lambda xs: tqdm(xs, desc="shapes"))
    write_json(args.out or f"results/timing/{kind}_{dname}.json", res)
    print(format_rows(res))


if __name__ == "__main__":
    main()
