"""bf16 on the CPU: native GEMMs, the fp32-accumulated emulation, fp32, and torch's Newton-Schulz.

    python -m experiments.bench.bf16 [--shape 512x2048] [--out results/timing/cpu_bf16_paths.json]

Times, in one process, ``msign.msign(G, "jordan")`` in fp32, in bf16 on the native and the
emulated GEMM path, and in bf16 as ``auto`` chooses, beside torch.optim.Muon's Newton-Schulz
(our transcription, :func:`msign.bench.torch_newton_schulz`, native bf16), and the two
product shapes of a step (``A @ X`` and ``X @ X^T``) in native bf16.  It does so twice:

- ``onednn``: torch as installed.  On CPUs with AVX512-BF16 or AMX, oneDNN runs bf16 GEMMs
  natively; on AVX2-only CPUs it has no bf16 kernel and this is already the slow case.
- ``fallback``: with ``torch.backends.mkldnn.enabled = False``, torch's generic bf16 GEMM,
  the path an AVX2-only CPU takes.  On a machine with native bf16 this reproduces the slow
  case in the same run, so every ratio of the issue is measured on one machine.

Every ratio is taken within one configuration of this run.
"""

from __future__ import annotations

import argparse

import torch
from tqdm import tqdm

import msign
from msign.bench import median_time, torch_newton_schulz
from msign.gemm import native_half_is_slow
from msign.results import provenance, write_json

from ..common.cli import add_out


def measure(G: torch.Tensor, repeat: int) -> dict:
    dev = torch.device("cpu")
    Gb = G.bfloat16()
    m, n = G.shape
    A = torch.randn(m, m, generator=torch.Generator().manual_seed(1)).bfloat16()
    t = {}
    jobs = {
        "msign_fp32": lambda: msign.msign(G, "jordan"),
        "msign_bf16_native": lambda: msign.msign(Gb, "jordan", gemm="native"),
        "msign_bf16_emulated": lambda: msign.msign(Gb, "jordan", gemm="emulated"),
        "torch_ns_bf16": lambda: torch_newton_schulz(Gb),
        "gemm_AX_bf16": lambda: A @ Gb,
        "gemm_XXt_bf16": lambda: Gb @ Gb.mT,
    }
    for name, fn in tqdm(jobs.items(), leave=False):
        t[name] = median_time(fn, dev, repeat)
    slow = native_half_is_slow.__wrapped__(torch.bfloat16)  # this configuration, uncached
    t["msign_bf16_auto"] = t["msign_bf16_emulated" if slow else "msign_bf16_native"]
    return {"time_s": t, "auto_path": "emulated" if slow else "native", "ratios": {
        "native_bf16_over_fp32": t["msign_bf16_native"] / t["msign_fp32"],
        "auto_bf16_over_fp32": t["msign_bf16_auto"] / t["msign_fp32"],
        "auto_bf16_over_torch_ns": t["msign_bf16_auto"] / t["torch_ns_bf16"],
        "native_over_emulated": t["msign_bf16_native"] / t["msign_bf16_emulated"],
        # A @ X has m^2 n multiply-adds, X X^T m^2 n too: same FLOPs.
        "gemm_AX_over_XXt": t["gemm_AX_bf16"] / t["gemm_XXt_bf16"],
    }}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="512x2048")
    ap.add_argument("--repeat", type=int, default=3)
    add_out(ap, "results/timing/cpu_bf16_paths.json")
    args = ap.parse_args(argv)
    m, n = (int(v) for v in args.shape.split("x"))
    G = torch.randn(m, n, generator=torch.Generator().manual_seed(0))
    res = {**provenance(), "shape": [m, n], "method": "jordan (5 steps)", "configs": {}}
    for cfg, enabled in (("onednn", True), ("fallback", False)):
        with torch.backends.mkldnn.flags(enabled=enabled):
            res["configs"][cfg] = measure(G, args.repeat)
    write_json(args.out, res)
    for cfg, r in res["configs"].items():
        t, q = r["time_s"], r["ratios"]
        print(f"{cfg:<9} fp32 {t['msign_fp32']:.3f} s | bf16 native {t['msign_bf16_native']:.3f} s"
              f" emulated {t['msign_bf16_emulated']:.3f} s (auto: {r['auto_path']}) | torch NS "
              f"{t['torch_ns_bf16']:.3f} s")
        print(f"{'':<9} bf16/fp32: native {q['native_bf16_over_fp32']:.2f}, auto "
              f"{q['auto_bf16_over_fp32']:.2f}; auto/torch NS {q['auto_bf16_over_torch_ns']:.2f};"
              f" native/emulated {q['native_over_emulated']:.2f}; A@X / XX^T "
              f"{q['gemm_AX_over_XXt']:.2f}")
    return res


if __name__ == "__main__":
    main()
